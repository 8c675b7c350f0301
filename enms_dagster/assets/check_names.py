"""The names of the asset checks, each defined once. They are public: Dagster keys check history
by them, ``core.check_results`` stores them per day, retention asks for them by name and the
raw_readings sensor reports ``ingestor_alive`` under its name."""

# on raw_readings
INGESTOR_ALIVE = "ingestor_alive"
RAW_READINGS_IN_PHYSICAL_RANGE = "raw_readings_in_physical_range"
RAW_READINGS_NOT_IN_FUTURE = "raw_readings_not_in_future"
RAW_READINGS_COUNTERS_MONOTONIC = "raw_readings_counters_monotonic"

# on hourly_energy
HOURLY_ENERGY_NOT_NEGATIVE = "hourly_energy_not_negative"
HOURLY_ENERGY_COUNTER_MATCHES_POWER = "hourly_energy_counter_matches_power"
HOURLY_ENERGY_COMPLETE = "hourly_energy_complete"
