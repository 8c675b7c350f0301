"""The plant registry: the plant file loaded into ``core`` (sites, machines, metrics, tariffs)."""

import dagster as dg

from enms_dagster.assets.metadata import native_table
from enms_dagster.plant.store import save_plant
from enms_dagster.resources import PlantResource, WarehouseResource


@dg.asset(group_name="raw", kinds={"postgres"})
def plant_registry(
    context: dg.AssetExecutionContext, plant: PlantResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Sites, machine types, metrics, machines, tariffs and emission factors from the plant file.
    Refuses to change the sample interval of machines that have readings unless
    ``ENMS_PLANT_CHANGE_INTERVALS=1`` (``save_plant``)."""
    registry = plant.load()
    with warehouse.connect() as conn:
        counts = save_plant(
            conn,
            registry,
            source=f"plant file {plant.path()}",
            change_intervals=plant.may_change_intervals(),
        )
    context.log.info("registry from %s: %s", plant.path(), counts)
    machines = sorted(registry.machines.values(), key=lambda m: m.machine_id)
    return dg.MaterializeResult(
        metadata={
            "plant_file": plant.path(),
            **{f"{table}_count": n for table, n in counts.items()},
            "machines": native_table(
                ["machine", "type", "site", "line", "rated kW"],
                [
                    (m.machine_id, m.machine_type, m.site_id, m.line, m.rated_power_kw)
                    for m in machines
                ],
            ),
        }
    )
