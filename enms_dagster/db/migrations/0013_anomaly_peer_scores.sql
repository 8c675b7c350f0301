-- Residual scores are judged against the machine's peers (enms_dagster/analytics/anomalies.py):
-- the part of a z-score, a daily drift or a base-load rise that most machines of the same type
-- share at the same time (a night colder than the baseline knows) is taken off each of them,
-- and hours where the baseline extrapolates get no z-score.
COMMENT ON COLUMN marts.anomalies.score IS
    'What the method measured: robust z of the residual, CUSUM of daily residuals (both after '
    'taking off what most machines of the type share at that time), Isolation Forest anomaly '
    'score, or for rules excess divided by the tolerated margin.';
