-- Load forecasts and baseline drift (issue 8): day-ahead hourly forecasts of every model, their
-- accuracy as actuals land, the champion model per machine and site with the history of why,
-- and drift events of the energy baselines that request a re-fit.

CREATE TABLE marts.forecasts (
    scope          text NOT NULL CHECK (scope IN ('machine', 'site')),
    scope_id       text NOT NULL,
    model          text NOT NULL,
    hour_start     timestamptz NOT NULL,
    local_date     date NOT NULL,
    origin         timestamptz NOT NULL,
    horizon_h      smallint NOT NULL CHECK (horizon_h >= 1),
    forecast_kwh   double precision NOT NULL CHECK (forecast_kwh >= 0),
    lower_kwh      double precision NOT NULL,
    upper_kwh      double precision NOT NULL,
    interval_level double precision NOT NULL CHECK (interval_level > 0 AND interval_level < 1),
    temperature_c  double precision,
    issued_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope_id, model, hour_start),
    CHECK (lower_kwh <= forecast_kwh AND forecast_kwh <= upper_kwh),
    CHECK (origin <= hour_start)
);
CREATE INDEX forecasts_local_date_idx ON marts.forecasts (local_date);
COMMENT ON TABLE marts.forecasts IS
    'Day-ahead hourly energy forecasts per machine and site from every model (the champion and '
    'its challengers), with a prediction interval. Rebuilt a target day at a time by the Dagster '
    'asset load_forecasts; marts.champion_forecasts keeps the champion''s only.';
COMMENT ON COLUMN marts.forecasts.scope IS 'machine or site (the sum of the site''s machines).';
COMMENT ON COLUMN marts.forecasts.scope_id IS 'machine_id or site_id.';
COMMENT ON COLUMN marts.forecasts.model IS
    'seasonal_naive (same local hour a week earlier, the reference), prophet, arimax '
    '(regression with AR(2) errors and daily Fourier terms) or gbm (gradient boosting on lags '
    '24/48/168 h and the calendar).';
COMMENT ON COLUMN marts.forecasts.hour_start IS 'Start of the forecast hour (UTC instant).';
COMMENT ON COLUMN marts.forecasts.local_date IS 'Target day in the site''s time zone.';
COMMENT ON COLUMN marts.forecasts.origin IS
    'Local midnight that starts the target day: the forecast used only hours starting before it.';
COMMENT ON COLUMN marts.forecasts.horizon_h IS 'Hours from the origin to the end of the hour (1..25).';
COMMENT ON COLUMN marts.forecasts.forecast_kwh IS 'Forecast energy of the hour, kWh.';
COMMENT ON COLUMN marts.forecasts.lower_kwh IS 'Lower bound of the prediction interval, kWh.';
COMMENT ON COLUMN marts.forecasts.upper_kwh IS 'Upper bound of the prediction interval, kWh.';
COMMENT ON COLUMN marts.forecasts.interval_level IS
    'Coverage the interval aims at, e.g. 0.8: 80 % of actuals should fall inside.';
COMMENT ON COLUMN marts.forecasts.temperature_c IS
    'Outdoor temperature assumed for the hour, degC: the persistence forecast (the temperature '
    'observed 24 h earlier), not the later observation.';
COMMENT ON COLUMN marts.forecasts.issued_at IS 'When the forecast was computed.';

CREATE TABLE marts.forecast_accuracy (
    scope             text NOT NULL CHECK (scope IN ('machine', 'site')),
    scope_id          text NOT NULL,
    model             text NOT NULL,
    local_date        date NOT NULL,
    hours             integer NOT NULL,
    actual_kwh        double precision NOT NULL,
    forecast_kwh      double precision NOT NULL,
    mae_kwh           double precision NOT NULL,
    rmse_kwh          double precision NOT NULL,
    cv_rmse           double precision,
    bias_kwh          double precision NOT NULL,
    interval_coverage double precision NOT NULL,
    naive_mae_kwh     double precision,
    skill             double precision,
    scored_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope_id, model, local_date)
);
CREATE INDEX forecast_accuracy_local_date_idx ON marts.forecast_accuracy (local_date);
COMMENT ON TABLE marts.forecast_accuracy IS
    'Error of each model''s day-ahead forecast per machine (or site) and day, once every hour of '
    'the day has its actual energy. Rewritten by the Dagster asset forecast_accuracy.';
COMMENT ON COLUMN marts.forecast_accuracy.scope IS 'machine or site.';
COMMENT ON COLUMN marts.forecast_accuracy.scope_id IS 'machine_id or site_id.';
COMMENT ON COLUMN marts.forecast_accuracy.model IS 'Forecast model (marts.forecasts.model).';
COMMENT ON COLUMN marts.forecast_accuracy.local_date IS 'Target day in the site''s time zone.';
COMMENT ON COLUMN marts.forecast_accuracy.hours IS 'Hours scored (23, 24 or 25).';
COMMENT ON COLUMN marts.forecast_accuracy.actual_kwh IS 'Metered energy of the day, kWh.';
COMMENT ON COLUMN marts.forecast_accuracy.forecast_kwh IS 'Forecast energy of the day, kWh.';
COMMENT ON COLUMN marts.forecast_accuracy.mae_kwh IS 'Mean absolute error of the hours, kWh.';
COMMENT ON COLUMN marts.forecast_accuracy.rmse_kwh IS 'Root mean squared error of the hours, kWh.';
COMMENT ON COLUMN marts.forecast_accuracy.cv_rmse IS
    'RMSE / mean hourly actual (out of sample, so no parameters are subtracted); NULL when the '
    'machine drew nothing that day.';
COMMENT ON COLUMN marts.forecast_accuracy.bias_kwh IS 'Mean of forecast - actual, kWh per hour.';
COMMENT ON COLUMN marts.forecast_accuracy.interval_coverage IS
    'Share of hours whose actual lies inside the prediction interval.';
COMMENT ON COLUMN marts.forecast_accuracy.naive_mae_kwh IS
    'MAE of the seasonal naive forecast for the same hours, kWh.';
COMMENT ON COLUMN marts.forecast_accuracy.skill IS
    '1 - mae_kwh / naive_mae_kwh: above 0 the model beat seasonal naive that day.';
COMMENT ON COLUMN marts.forecast_accuracy.scored_at IS 'When the day was scored.';

CREATE TABLE marts.forecast_champions (
    scope              text NOT NULL CHECK (scope IN ('machine', 'site')),
    scope_id           text NOT NULL,
    valid_from         date NOT NULL,
    champion           text NOT NULL,
    previous_champion  text,
    changed            boolean NOT NULL,
    reason             text NOT NULL,
    window_start       date,
    window_end         date,
    days               integer NOT NULL,
    mae_kwh            double precision,
    cv_rmse            double precision,
    skill              double precision,
    comparison         jsonb NOT NULL,
    decided_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope_id, valid_from)
);
COMMENT ON TABLE marts.forecast_champions IS
    'Which model forecasts each machine and site, decided daily from the rolling-origin record of '
    'the last days (marts.forecast_accuracy): one row per decision, so the history shows which '
    'model was champion when, and why. A model that does not beat seasonal naive is never champion.';
COMMENT ON COLUMN marts.forecast_champions.scope IS 'machine or site.';
COMMENT ON COLUMN marts.forecast_champions.scope_id IS 'machine_id or site_id.';
COMMENT ON COLUMN marts.forecast_champions.valid_from IS
    'First target day the decision applies to (until the next decision).';
COMMENT ON COLUMN marts.forecast_champions.champion IS 'The model whose forecast is used.';
COMMENT ON COLUMN marts.forecast_champions.previous_champion IS 'Champion before this decision (NULL: none).';
COMMENT ON COLUMN marts.forecast_champions.changed IS 'The champion differs from the previous one.';
COMMENT ON COLUMN marts.forecast_champions.reason IS 'Why: skill, MAE and CV(RMSE) of the winner and its runner-up.';
COMMENT ON COLUMN marts.forecast_champions.window_start IS 'First day of the compared window.';
COMMENT ON COLUMN marts.forecast_champions.window_end IS 'Last day of the compared window.';
COMMENT ON COLUMN marts.forecast_champions.days IS 'Days of the window with scored forecasts.';
COMMENT ON COLUMN marts.forecast_champions.mae_kwh IS 'Champion''s hourly MAE over the window, kWh.';
COMMENT ON COLUMN marts.forecast_champions.cv_rmse IS 'Champion''s CV(RMSE) over the window.';
COMMENT ON COLUMN marts.forecast_champions.skill IS
    'Champion''s skill over seasonal naive over the window, 1 - MAE / naive MAE (0 for naive).';
COMMENT ON COLUMN marts.forecast_champions.comparison IS
    'Every model''s score over the window: days, hours, MAE, RMSE, CV(RMSE), bias, interval '
    'coverage and skill.';
COMMENT ON COLUMN marts.forecast_champions.decided_at IS 'When the decision was made.';

CREATE VIEW marts.champion_forecasts AS
SELECT f.scope, f.scope_id, f.model, f.hour_start, f.local_date, f.origin, f.horizon_h,
       f.forecast_kwh, f.lower_kwh, f.upper_kwh, f.interval_level, f.issued_at
FROM marts.forecasts f
LEFT JOIN LATERAL (
    SELECT c.champion
    FROM marts.forecast_champions c
    WHERE c.scope_id = f.scope_id AND c.valid_from <= f.local_date
    ORDER BY c.valid_from DESC
    LIMIT 1
) c ON true
WHERE f.model = COALESCE(c.champion, 'seasonal_naive');
COMMENT ON VIEW marts.champion_forecasts IS
    'The forecast to use: per machine (or site) and hour, the model that was champion for that '
    'day (seasonal naive before any decision).';
COMMENT ON COLUMN marts.champion_forecasts.scope IS 'machine or site.';
COMMENT ON COLUMN marts.champion_forecasts.scope_id IS 'machine_id or site_id.';
COMMENT ON COLUMN marts.champion_forecasts.model IS 'The champion model of the day.';
COMMENT ON COLUMN marts.champion_forecasts.hour_start IS 'Start of the forecast hour (UTC instant).';
COMMENT ON COLUMN marts.champion_forecasts.local_date IS 'Target day in the site''s time zone.';
COMMENT ON COLUMN marts.champion_forecasts.origin IS 'Local midnight the forecast was made from.';
COMMENT ON COLUMN marts.champion_forecasts.horizon_h IS 'Hours from the origin to the end of the hour.';
COMMENT ON COLUMN marts.champion_forecasts.forecast_kwh IS 'Forecast energy of the hour, kWh.';
COMMENT ON COLUMN marts.champion_forecasts.lower_kwh IS 'Lower bound of the prediction interval, kWh.';
COMMENT ON COLUMN marts.champion_forecasts.upper_kwh IS 'Upper bound of the prediction interval, kWh.';
COMMENT ON COLUMN marts.champion_forecasts.interval_level IS 'Coverage the interval aims at.';
COMMENT ON COLUMN marts.champion_forecasts.issued_at IS 'When the forecast was computed.';

CREATE TABLE marts.drift_events (
    event_id            text PRIMARY KEY,
    seq                 bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    machine_id          text NOT NULL,
    model_id            bigint NOT NULL REFERENCES marts.baseline_models,
    method              text NOT NULL,
    direction           text NOT NULL CHECK (direction IN ('up', 'down')),
    change_start        date NOT NULL,
    detected_on         date NOT NULL,
    delay_days          integer NOT NULL,
    statistic           double precision NOT NULL,
    threshold           double precision NOT NULL,
    allowance           double precision NOT NULL,
    sigma_kwh           double precision NOT NULL,
    mean_residual_kwh   double precision NOT NULL,
    mean_residual_share double precision,
    evidence            text NOT NULL,
    residuals           jsonb NOT NULL,
    detected_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (detected_on >= change_start)
);
CREATE INDEX drift_events_machine_idx ON marts.drift_events (machine_id, change_start);
COMMENT ON TABLE marts.drift_events IS
    'Drifts of a machine''s energy away from its active daily baseline after the baseline period: '
    'a two-sided CUSUM of daily residuals (actual - expected) crossing its threshold, with the '
    'evidence. Each event requests one baseline re-fit (sensor baseline_drift_sensor).';
COMMENT ON COLUMN marts.drift_events.event_id IS
    'Machine, direction and change start: the same drift found again keeps its id.';
COMMENT ON COLUMN marts.drift_events.seq IS 'Order in which events were stored (the sensor''s cursor).';
COMMENT ON COLUMN marts.drift_events.machine_id IS 'Machine (marts.dim_machine).';
COMMENT ON COLUMN marts.drift_events.model_id IS 'Daily baseline the residuals were taken against.';
COMMENT ON COLUMN marts.drift_events.method IS 'Detector: cusum (two-sided tabular CUSUM).';
COMMENT ON COLUMN marts.drift_events.direction IS 'up: more energy than expected; down: less.';
COMMENT ON COLUMN marts.drift_events.change_start IS
    'Estimated first day of the change: the day after the CUSUM last stood at zero.';
COMMENT ON COLUMN marts.drift_events.detected_on IS 'Day whose residual took the CUSUM over its threshold.';
COMMENT ON COLUMN marts.drift_events.delay_days IS 'detected_on - change_start, days.';
COMMENT ON COLUMN marts.drift_events.statistic IS 'CUSUM on detected_on, in standard deviations.';
COMMENT ON COLUMN marts.drift_events.threshold IS 'Decision threshold h, in standard deviations.';
COMMENT ON COLUMN marts.drift_events.allowance IS 'Allowance k subtracted each day, in standard deviations.';
COMMENT ON COLUMN marts.drift_events.sigma_kwh IS
    'Standard deviation of the baseline''s daily residuals, kWh: the unit of the CUSUM.';
COMMENT ON COLUMN marts.drift_events.mean_residual_kwh IS
    'Mean of actual - expected from change_start to detected_on, kWh per day.';
COMMENT ON COLUMN marts.drift_events.mean_residual_share IS
    'The same as a share of the expected energy of those days.';
COMMENT ON COLUMN marts.drift_events.evidence IS 'The finding in one sentence (also the re-fit reason).';
COMMENT ON COLUMN marts.drift_events.residuals IS
    'Per day from change_start to detected_on: actual, expected, residual kWh and the CUSUM.';
COMMENT ON COLUMN marts.drift_events.detected_at IS 'When the event was stored.';
