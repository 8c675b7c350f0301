"""Backfill simulated history straight into the warehouse through the one landing path
(``land_batch``), as fast as it takes it: no broker, the same staging, de-duplication and batch
log as the MQTT ingestor, so the raw_readings sensor sees the backfill like any other batch."""

from __future__ import annotations

import datetime as dt
import queue
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from itertools import repeat

import psycopg

from enms_dagster.db import libpq_url
from enms_dagster.ingest.landing import BatchResult, land_batch
from enms_dagster.ingest.payload import Reading
from enms_dagster.plant import Plant
from enms_dagster.progress import ProgressCallback
from enms_dagster.simulator import MachineSeries, SimulationTruth, simulate
from enms_dagster.simulator.faults import EfficiencyMeasure, FaultLabel, plan_faults
from enms_dagster.simulator.labels import save_ground_truth

UTC = dt.UTC
SOURCE = "simulator"


@dataclass
class BackfillResult:
    readings: int = 0
    inserted: int = 0
    batches: int = 0
    seconds: float = 0.0
    truth: SimulationTruth = field(default_factory=SimulationTruth)
    faults: list[FaultLabel] = field(default_factory=list)

    @property
    def readings_per_s(self) -> float:
        return self.readings / self.seconds if self.seconds else 0.0


def readings_of(series: MachineSeries) -> list[Reading]:
    """The series as landing tuples (machine_id, metric, ts, value); one datetime per instant,
    shared by the metrics of that instant."""
    machine_id = series.machine.machine_id
    stamps = [dt.datetime.fromtimestamp(t, UTC) for t in series.ts.tolist()]
    columns = list(series.metrics.items())
    if series.state is not None:
        columns.append(("state", series.state.astype(float)))
    rows: list[Reading] = []
    for metric, values in columns:
        rows.extend(zip(repeat(machine_id), repeat(metric), stamps, values.tolist()))
    return rows


def _batches(
    series: Iterator[MachineSeries], batch_readings: int
) -> Iterator[tuple[list[Reading], int, int]]:
    """Readings grouped into batches of about ``batch_readings``: (rows, series, last ts)."""
    rows: list[Reading] = []
    count = 0
    last = 0
    for s in series:
        rows.extend(readings_of(s))
        count += 1
        last = max(last, int(s.ts[-1]))
        if len(rows) >= batch_readings:
            yield rows, count, last
            rows, count = [], 0
    if rows:
        yield rows, count, last


def backfill_direct(
    plant: Plant,
    start: dt.datetime,
    end: dt.datetime,
    database_url: str,
    *,
    seed: int = 42,
    fault_rate: float = 0.0,
    faults: Sequence[FaultLabel] | None = None,
    measures: Sequence[EfficiencyMeasure] = (),
    batch_readings: int = 500_000,
    workers: int = 2,
    progress: ProgressCallback | None = None,
    counters: dict[str, dict[str, float]] | None = None,
) -> BackfillResult:
    """Simulate [start, end) and land every reading with ``land_batch``; write the fault labels
    (planned from ``fault_rate`` unless ``faults`` is given) and measures first. Simulation
    overlaps with landing: ``workers`` connections land batches while the next is simulated,
    with at most ``workers`` batches in flight (bounded memory). ``counters`` carries the energy
    and parts counters into a later simulation (see ``simulate``)."""
    result = BackfillResult()
    result.faults = list(
        plan_faults(plant, start, end, seed, fault_rate) if faults is None else faults
    )
    began = time.monotonic()
    span = (end - start).total_seconds()
    pool_conns: queue.Queue[psycopg.Connection] = queue.Queue()
    opened: list[psycopg.Connection] = []
    try:
        for _ in range(workers):
            conn = psycopg.connect(libpq_url(database_url), autocommit=True)
            # room to sort a batch's staging rows in memory rather than on disk
            conn.execute("SET work_mem = '256MB'")
            conn.execute("SET temp_buffers = '256MB'")
            opened.append(conn)
            pool_conns.put(conn)
        save_ground_truth(opened[0], result.faults, measures, seed=seed)
        # Concurrent land_batch calls race to create the same day partition (CREATE TABLE IF
        # NOT EXISTS is not safe against a concurrent creator): create the window's first.
        opened[0].execute("SELECT raw.ensure_reading_partitions(%s, %s)", (start, end))

        def land(rows: list[Reading], messages: int) -> BatchResult:
            conn = pool_conns.get()
            try:
                return land_batch(conn, rows, source=SOURCE, messages=messages)
            finally:
                pool_conns.put(conn)

        def collect(done: set[Future]) -> None:
            for future in done:
                batch = future.result()
                result.inserted += batch.inserted
                result.batches += 1

        stream = simulate(
            plant, start, end, seed=seed, truth=result.truth, faults=result.faults,
            measures=measures, counters=counters,
        )  # fmt: skip
        pending: set[Future] = set()
        with ThreadPoolExecutor(max_workers=workers) as executor:
            for rows, messages, last in _batches(stream, batch_readings):
                while len(pending) >= workers:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    collect(done)
                result.readings += len(rows)
                pending.add(executor.submit(land, rows, messages))
                if progress:
                    reached = dt.datetime.fromtimestamp(last, UTC)
                    progress(
                        min((last - start.timestamp()) / span, 1.0),
                        result.readings,
                        f"simulated up to {reached:%Y-%m-%d %H:%M} UTC",
                    )
            done, _ = wait(pending)
            collect(done)
    finally:
        for conn in opened:
            conn.close()
    result.seconds = time.monotonic() - began
    return result
