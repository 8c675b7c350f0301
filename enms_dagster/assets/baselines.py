"""Energy baselines and the energy performance measured against them."""

import datetime as dt
from typing import TYPE_CHECKING

import dagster as dg

from enms_dagster.assets.metadata import native_table, plottable
from enms_dagster.charts import actual_vs_expected_markdown, cusum_markdown
from enms_dagster.resources import PlantResource, WarehouseResource

if TYPE_CHECKING:
    from enms_dagster.baselines.registry import RegisteredModel

# The baseline registry (pandas, scikit-learn) is imported in the asset bodies: every run's step
# process imports this module.


class BaselineConfig(dg.Config):
    """What to (re-)fit. Empty ``scope_ids`` means every machine with energy and every site;
    an empty period bound takes the plant file's (or the default: the first year)."""

    resolutions: list[str] = ["daily", "hourly"]
    scope_ids: list[str] = []
    reason: str = "fitted from the UI"
    period_start: str = ""  # first local day of the baseline period, YYYY-MM-DD
    period_end: str = ""  # last local day, YYYY-MM-DD

    def period(self) -> tuple[dt.date | None, dt.date | None]:
        try:
            return tuple(  # type: ignore[return-value]
                dt.date.fromisoformat(d) if d else None
                for d in (self.period_start, self.period_end)
            )
        except ValueError as exc:
            raise dg.Failure(f"baseline period: {exc} (expected YYYY-MM-DD)") from exc


@dg.asset(
    group_name="analytics",
    deps=["hourly_energy", "hourly_drivers"],
    kinds={"python", "scikitlearn", "postgres"},
)
def energy_baselines(
    context: dg.AssetExecutionContext,
    config: BaselineConfig,
    warehouse: WarehouseResource,
    plant: PlantResource,
) -> dg.MaterializeResult:
    """marts.baseline_models: a regression baseline (ISO 50006) per machine and site, daily and
    hourly, with ASHRAE 14 / DOE SEP statistics. Each fit is a new version; a valid one becomes
    active, an invalid one is stored and flagged, never used."""
    from enms_dagster.baselines.registry import active_models, fit_and_register

    def progress(done: int, total: int, what: str) -> None:
        context.log.info(f"fitting {done + 1}/{total}: {what}")

    with warehouse.connect() as conn:
        models = fit_and_register(
            conn,
            plant.load(),
            config.resolutions,
            config.scope_ids or None,
            reason=config.reason,
            progress=progress,
            period=config.period(),
        )
        site_daily = [m for _, scope, m in active_models(conn, "daily") if scope == "site"]
        fitted = []
        if site_daily:
            fitted = conn.execute(
                "SELECT f.period, f.actual_kwh, f.expected_kwh FROM marts.baseline_fitted f "
                "JOIN marts.baseline_models m USING (model_id) "
                "WHERE m.status = 'active' AND m.resolution = 'daily' AND m.scope = 'site' "
                "AND m.scope_id = %s ORDER BY f.period",
                (site_daily[0].scope_id,),
            ).fetchall()
    fitted_models = [m for m in models if m.model is not None]
    failed = [m for m in fitted_models if m.status == "invalid"]
    not_fitted = [m for m in models if m.model is None]
    for m in failed:
        context.log.warning(
            f"{m.model.scope_id} {m.model.resolution} v{m.version} is not valid: "
            + "; ".join(m.model.failures)
        )
    for m in not_fitted:
        context.log.warning(f"not fitted: {m.error}")
    metadata: dict[str, object] = {
        "models_fitted": len(fitted_models),
        "models_valid": len(fitted_models) - len(failed),
        "models_invalid": len(failed),
        "requests_not_fitted": len(not_fitted),
        "reason": config.reason,
        "models": _model_table(fitted_models),
    }
    if not_fitted:
        metadata["not_fitted"] = dg.MetadataValue.md("\n".join(f"- {m.error}" for m in not_fitted))
    if fitted:
        metadata["site_actual_vs_expected"] = dg.MetadataValue.md(
            actual_vs_expected_markdown(
                [p.date() for p, _, _ in fitted],
                [a for _, a, _ in fitted],
                [e for _, _, e in fitted],
                f"{site_daily[0].scope_id}: daily energy in the baseline period",
            )
        )
    return dg.MaterializeResult(metadata=metadata)


def _model_table(models: "list[RegisteredModel]") -> dg.TableMetadataValue:
    """One row per fitted model: scope, version, drivers and its fit statistics."""
    rows = []
    for r in sorted(models, key=lambda r: (r.model.resolution, r.scope, r.model.scope_id)):
        m, s = r.model, r.model.statistics
        rows.append(
            (
                m.scope_id,
                m.resolution,
                f"v{r.version}",
                r.status,
                ", ".join(
                    f"{d} ({m.balance_points_c[d]:g} °C)" if d in m.balance_points_c else d
                    for d in m.drivers
                )
                or "—",
                int(s.n),
                round(float(s.r2), 4),
                round(100 * float(s.cv_rmse), 2),
                round(100 * float(s.nmbe), 3),
                float(f"{s.f_pvalue:.3g}"),
                "pass" if m.valid else "FAIL: " + "; ".join(m.failures),
            )
        )
    return native_table(
        ["scope", "resolution", "version", "status", "drivers", "n", "R²", "CV(RMSE) %",
         "NMBE %", "F-test p", "ASHRAE 14 / SEP / CalTRACK"],
        rows,
    )  # fmt: skip


@dg.asset(
    group_name="analytics",
    deps=["energy_baselines", "hourly_energy", "hourly_drivers"],
    kinds={"python", "postgres"},
)
def energy_performance(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """marts.energy_performance_daily: actual vs baseline-expected energy per day, normalized
    EnPI, savings and their CUSUM since the baseline period with ASHRAE 14 uncertainty, and the
    days whose drivers lie outside the baseline's range."""
    from enms_dagster.baselines.registry import rebuild_energy_performance

    with warehouse.connect() as conn:
        rows = rebuild_energy_performance(conn)
        summary = conn.execute(
            """
            SELECT p.scope_id, m.version, count(*) FILTER (WHERE NOT p.in_baseline_period),
                   round(avg(p.enpi) FILTER (WHERE NOT p.in_baseline_period)::numeric, 3),
                   (array_agg(p.cusum_savings_kwh ORDER BY p.local_date DESC)
                        FILTER (WHERE NOT p.in_baseline_period))[1],
                   (array_agg(p.uncertainty_68_kwh ORDER BY p.local_date DESC)
                        FILTER (WHERE NOT p.in_baseline_period))[1],
                   count(*) FILTER (WHERE cardinality(p.extrapolated_drivers) > 0)
            FROM marts.energy_performance_daily p
            JOIN marts.baseline_models m USING (model_id)
            GROUP BY p.scope_id, m.version ORDER BY p.scope_id
            """
        ).fetchall()
        site = conn.execute(
            "SELECT local_date, cusum_savings_kwh, uncertainty_68_kwh "
            "FROM marts.energy_performance_daily "
            "WHERE scope = 'site' AND NOT in_baseline_period ORDER BY scope_id, local_date"
        ).fetchall()
    table = [
        (scope_id, f"v{version}", days, enpi, cusum, u, extrapolated)
        for scope_id, version, days, enpi, cusum, u, extrapolated in summary
    ]
    latest = site[-1] if site else None
    metadata: dict[str, object] = {
        "dagster/row_count": rows,
        "rows": rows,
        "scopes": len(summary),
        # the site's running savings, one point per materialization on the Plots tab
        "site_cusum_savings_kwh": plottable(latest[1], 1) if latest else None,
        "site_uncertainty_68_kwh": plottable(latest[2], 1) if latest else None,
        "performance": native_table(
            [
                "scope",
                "model",
                "days after baseline",
                "mean EnPI",
                "CUSUM kWh",
                "± kWh (68 %)",
                "days extrapolated",
            ],
            table,
        ),
    }
    if site:
        metadata["site_cusum"] = dg.MetadataValue.md(
            cusum_markdown(
                [d for d, _, _ in site],
                [c for _, c, _ in site],
                [u for _, _, u in site],
                "Site: CUSUM of savings since the baseline period",
            )
        )
    else:
        context.log.info("no day after a baseline period yet: nothing to accumulate")
    return dg.MaterializeResult(metadata=metadata)
