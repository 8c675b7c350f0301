"""What the anomaly detectors agree on: the columns of their input frames and of a flag, the
kinds of anomaly and the method raising each, the severity ladder, and every threshold.

``SEVERITIES`` is the ladder the code uses (order = rank). The database repeats it where it
cannot import Python: the CHECK constraints on ``severity`` in the immutable migrations 0009
(``marts.anomalies``, ``marts.anomaly_events``) and 0016 (``core.alert_outbox``); a new level
needs a migration there too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# Columns of the residual frame: actual and baseline-expected kWh per machine and hour (with
# is_shift where known: residuals are then scaled per shift status; with extrapolated where
# known: hours whose drivers lie outside the baseline's range get no hourly z-score).
RESIDUAL_COLUMNS = ("machine_id", "hour_start", "local_date", "actual_kwh", "expected_kwh")

# Columns of the raw-reading frames (anomalies/sql/*.sql): counter readings that stepped back,
# runs of identical power readings, and the hourly noise of gauge metrics.
COUNTER_STEP_COLUMNS = ("machine_id", "metric", "ts", "prev_ts", "prev_value", "value")
FROZEN_RUN_COLUMNS = (
    "machine_id",
    "power_kw",  # the repeated value
    "first_ts",  # its first and last reading
    "last_ts",
    "samples",
    "running_samples",  # readings with the machine reporting running, idle, off
    "idle_samples",
    "off_samples",
)
SIGNAL_NOISE_COLUMNS = ("machine_id", "metric", "hour_start", "samples", "mean_value", "noise")
PRESSURE_METRIC = "pressure_bar"
RESET_METRICS = ("energy_kwh_total",)  # counters whose unrecorded resets are reported
NOISE_METRICS = (PRESSURE_METRIC,)  # gauges whose hourly noise is kept

FLAG_COLUMNS = (
    "machine_id",
    "hour_start",
    "kind",
    "method",
    "severity",
    "score",  # what the method measured (z, CUSUM, forest score, or excess / margin)
    "threshold",  # the score at which the method flags
    "expected_kwh",
    "actual_kwh",
    "excess_kwh",  # actual - expected (negative: less than expected)
    "observed",  # the quantity a rule compared, in the unit KINDS gives
    "normal",  # its normal level
)

SEVERITIES = ("low", "medium", "high")

# kind -> (method, unit of observed / normal)
KINDS = {
    "above_baseline": ("residual_zscore", "kWh"),
    "baseline_drift": ("residual_cusum", "kWh/h"),
    "unusual_load": ("isolation_forest", "kWh"),
    "out_of_hours": ("rule", "kWh"),
    "idle_power_high": ("rule", "kW"),
    "base_load_creep": ("rule", "kW"),
    "power_while_off": ("rule", "kWh"),
    "stuck_signal": ("rule", "kW"),
    "meter_reset": ("rule", "kWh"),  # observed: the counter after the step, normal: before
    "unsteady_pressure": ("rule", "bar"),  # step between consecutive readings (75th percentile)
}

MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution × this = its standard deviation


@dataclass(frozen=True)
class Thresholds:
    """Every threshold the detectors use, in one place (the defaults are the documented ones).

    Severity: a flag's ``ratio`` is how far past its threshold it is (1 = just flagged); ratios
    from ``medium_at`` are medium, from ``high_at`` high.
    """

    medium_at: float = 2.0
    high_at: float = 4.0
    min_completeness: float = 0.5  # hours with fewer samples are neither scored nor learnt from
    min_reference_hours: int = 24
    min_profile_hours: int = 5  # reference hours needed for a per-local-hour normal level
    mad_k: float = 3.0  # robust standard deviations above normal that a rule tolerates
    # residuals against the baseline; hourly residuals are autocorrelated and a weather effect
    # the baseline misses moves every machine of a type at once (on the reference plant, cold
    # nights put all four AHUs at z 4-5.5 while every injected fault reached z 18 and more)
    z_threshold: float = 6.0
    # a deviation most machines of a type share in the same hour (a night colder than the
    # baseline knows, a plant-wide schedule) is taken off each of them: residuals and base
    # loads are judged against their peers' shared part, where a type has this many machines
    peer_min_machines: int = 3
    min_sigma_kwh: float = 0.1  # floor of the residual scale (a machine that is always off)
    min_sigma_share: float = 0.02  # ... and 2 % of the mean expected kWh
    cusum_k: float = 0.5  # allowance, in daily standard deviations
    cusum_h: float = 5.0  # decision interval
    min_reference_days: int = 7
    min_day_hours: int = 12
    # isolation forest
    forest_trees: int = 100
    forest_quantile: float = 0.998  # flag scores above this quantile of the reference scores
    forest_min_deviation: float = 0.10  # ... and kWh above usual by 10 % of the rated kW
    min_training_hours: int = 168
    random_state: int = 0
    # rules
    out_of_hours_share: float = 0.10  # of the machine's median in-shift kWh
    out_of_hours_min_kwh: float = 0.5
    idle_min_h: float = 0.25
    idle_rise: float = 0.10  # idle power more than 10 % above normal
    base_load_quantile: float = 0.05
    base_load_rise: float = 0.25
    min_kw: float = 0.2  # smallest kW difference idle or base-load rules report
    off_min_h: float = 0.95  # "off" means off for at least this share of the hour
    off_min_kwh: float = 0.2
    off_share: float = 0.02  # of rated power (or the reference p95 hourly kWh)
    flat_tolerance: float = 0.002  # max_kw and peak_15min_kw within 0.2 % of avg_kw
    flat_share_normal: float = 0.2  # a machine "varies" when under 20 % of its on-hours are flat
    mismatch_share: float = 0.10  # integrated power vs counter kWh
    mismatch_min_kwh: float = 0.5
    mismatch_completeness: float = 0.9
    # raw readings
    frozen_min_minutes: float = 15.0  # identical power readings for at least this long ...
    frozen_min_samples: int = 3  # ... and this many readings
    noise_ratio: float = 2.0  # pressure steps more than twice their usual size, ...
    noise_floor_share: float = 0.01  # ... and above 1 % of the machine's usual (p95) pressure
    noise_min_samples: int = 4  # readings an hour needs to measure its noise
    noise_min_reference_hours: int = 12  # reference hours of the same state and shift status


DEFAULT_THRESHOLDS = Thresholds()


def severity_for(ratio, th: Thresholds = DEFAULT_THRESHOLDS) -> np.ndarray:
    """low / medium / high from how far past its threshold a flag is (1 = at the threshold)."""
    import numpy as np  # here, not at module level: the code location imports Thresholds

    r = np.asarray(ratio, dtype=float)
    low, medium, high = SEVERITIES
    return np.where(r >= th.high_at, high, np.where(r >= th.medium_at, medium, low))


def severity_rank(severity: str | None) -> int:
    """0 for none, then 1..3 for low, medium, high."""
    return SEVERITIES.index(severity) + 1 if severity in SEVERITIES else 0
