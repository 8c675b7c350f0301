-- Energy baselines (issue 6): the model registry, each model's fitted values, and daily energy
-- performance (EnPI, savings, CUSUM) against the active daily model.

CREATE TABLE marts.baseline_models (
    model_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope         text NOT NULL CHECK (scope IN ('machine', 'site')),
    scope_id      text NOT NULL,
    resolution    text NOT NULL CHECK (resolution IN ('daily', 'hourly')),
    version       integer NOT NULL,
    period_start  date NOT NULL,
    period_end    date NOT NULL,
    candidates    text[] NOT NULL,
    drivers       text[] NOT NULL,
    coefficients  jsonb NOT NULL,
    statistics    jsonb NOT NULL,
    n             integer NOT NULL,
    p             integer NOT NULL,
    r2            double precision,
    adj_r2        double precision,
    cv_rmse       double precision,
    nmbe          double precision,
    f_pvalue      double precision,
    valid         boolean NOT NULL,
    failures      text[] NOT NULL,
    status        text NOT NULL CHECK (status IN ('active', 'retired', 'invalid')),
    reason        text NOT NULL,
    model         jsonb NOT NULL,
    trained_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (scope_id, resolution, version),
    CHECK (status <> 'active' OR valid)
);
CREATE UNIQUE INDEX baseline_models_one_active
    ON marts.baseline_models (scope_id, resolution) WHERE status = 'active';
COMMENT ON TABLE marts.baseline_models IS
    'Energy baseline registry: every fitted model is a version; one valid model is active per machine (or site) and resolution.';
COMMENT ON COLUMN marts.baseline_models.model_id IS 'Identifier of this model version.';
COMMENT ON COLUMN marts.baseline_models.scope IS 'machine or site (the sum of the site''s machines).';
COMMENT ON COLUMN marts.baseline_models.scope_id IS 'machine_id or site_id.';
COMMENT ON COLUMN marts.baseline_models.resolution IS 'daily (per local day) or hourly.';
COMMENT ON COLUMN marts.baseline_models.version IS 'Version number per scope and resolution, from 1.';
COMMENT ON COLUMN marts.baseline_models.period_start IS 'First local day of the baseline period.';
COMMENT ON COLUMN marts.baseline_models.period_end IS 'Last local day of the baseline period.';
COMMENT ON COLUMN marts.baseline_models.candidates IS 'Candidate drivers named in the training request.';
COMMENT ON COLUMN marts.baseline_models.drivers IS 'Drivers kept: significant (p < 0.10) and physically signed.';
COMMENT ON COLUMN marts.baseline_models.coefficients IS 'Coefficient per term (kWh per driver unit).';
COMMENT ON COLUMN marts.baseline_models.statistics IS
    'n, p, R², adjusted R², CV(RMSE), NMBE, F-test, each coefficient with standard error, t and p.';
COMMENT ON COLUMN marts.baseline_models.n IS 'Observations (days or hours) in the fit.';
COMMENT ON COLUMN marts.baseline_models.p IS 'Model parameters, intercept included.';
COMMENT ON COLUMN marts.baseline_models.r2 IS 'Coefficient of determination.';
COMMENT ON COLUMN marts.baseline_models.adj_r2 IS 'R² adjusted for the number of parameters.';
COMMENT ON COLUMN marts.baseline_models.cv_rmse IS 'sqrt(SSE / (n - p)) / mean energy (ASHRAE 14).';
COMMENT ON COLUMN marts.baseline_models.nmbe IS 'sum(actual - predicted) / ((n - p) * mean energy) (ASHRAE 14).';
COMMENT ON COLUMN marts.baseline_models.f_pvalue IS 'p-value of the overall F-test.';
COMMENT ON COLUMN marts.baseline_models.valid IS 'Passes ASHRAE 14, DOE SEP and CalTRACK data sufficiency.';
COMMENT ON COLUMN marts.baseline_models.failures IS 'Why the model is not valid (empty when valid).';
COMMENT ON COLUMN marts.baseline_models.status IS
    'active (in use), retired (replaced by a newer valid version) or invalid (failed; never used).';
COMMENT ON COLUMN marts.baseline_models.reason IS 'Why this version was fitted (first fit, weekly re-fit, drift, ...).';
COMMENT ON COLUMN marts.baseline_models.model IS 'The serialized model; enms_dagster.baselines.load_model predicts from it.';
COMMENT ON COLUMN marts.baseline_models.trained_at IS 'When the model was fitted.';

CREATE TABLE marts.baseline_fitted (
    model_id      bigint NOT NULL REFERENCES marts.baseline_models ON DELETE CASCADE,
    period        timestamptz NOT NULL,
    actual_kwh    double precision NOT NULL,
    expected_kwh  double precision NOT NULL,
    PRIMARY KEY (model_id, period)
);
COMMENT ON TABLE marts.baseline_fitted IS
    'Actual and model-predicted energy over each model''s baseline period (what the model was fitted on).';
COMMENT ON COLUMN marts.baseline_fitted.model_id IS 'The model version.';
COMMENT ON COLUMN marts.baseline_fitted.period IS 'Start of the hour (hourly) or local midnight of the day (daily).';
COMMENT ON COLUMN marts.baseline_fitted.actual_kwh IS 'Metered energy, kWh.';
COMMENT ON COLUMN marts.baseline_fitted.expected_kwh IS 'Energy the model predicts from the drivers, kWh.';

CREATE TABLE marts.energy_performance_daily (
    scope                 text NOT NULL CHECK (scope IN ('machine', 'site')),
    scope_id              text NOT NULL,
    local_date            date NOT NULL,
    model_id              bigint NOT NULL REFERENCES marts.baseline_models,
    in_baseline_period    boolean NOT NULL,
    actual_kwh            double precision NOT NULL,
    expected_kwh          double precision NOT NULL,
    enpi                  double precision,
    savings_kwh           double precision NOT NULL,
    cusum_savings_kwh     double precision,
    uncertainty_68_kwh    double precision,
    uncertainty_95_kwh    double precision,
    extrapolated_drivers  text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (scope_id, local_date)
);
COMMENT ON TABLE marts.energy_performance_daily IS
    'Daily energy performance against the active daily baseline: EnPI, savings and their CUSUM since the baseline period.';
COMMENT ON COLUMN marts.energy_performance_daily.scope IS 'machine or site.';
COMMENT ON COLUMN marts.energy_performance_daily.scope_id IS 'machine_id or site_id.';
COMMENT ON COLUMN marts.energy_performance_daily.local_date IS 'Local day of the site.';
COMMENT ON COLUMN marts.energy_performance_daily.model_id IS 'Baseline model version used.';
COMMENT ON COLUMN marts.energy_performance_daily.in_baseline_period IS 'The day lies in the model''s baseline period.';
COMMENT ON COLUMN marts.energy_performance_daily.actual_kwh IS 'Metered energy, kWh.';
COMMENT ON COLUMN marts.energy_performance_daily.expected_kwh IS 'Baseline-expected energy for the day''s drivers, kWh.';
COMMENT ON COLUMN marts.energy_performance_daily.enpi IS 'Normalized EnPI: actual / expected (1.0 = as expected, below 1 = better).';
COMMENT ON COLUMN marts.energy_performance_daily.savings_kwh IS 'expected - actual, kWh (positive = saved).';
COMMENT ON COLUMN marts.energy_performance_daily.cusum_savings_kwh IS
    'Cumulative savings since the baseline period ended, kWh (NULL inside the period).';
COMMENT ON COLUMN marts.energy_performance_daily.uncertainty_68_kwh IS
    'ASHRAE 14 uncertainty of the CUSUM at 68 % confidence, kWh (autocorrelation accounted for).';
COMMENT ON COLUMN marts.energy_performance_daily.uncertainty_95_kwh IS 'The same at 95 % confidence, kWh.';
COMMENT ON COLUMN marts.energy_performance_daily.extrapolated_drivers IS
    'Drivers outside the range seen in the baseline period: the expectation is an extrapolation.';
