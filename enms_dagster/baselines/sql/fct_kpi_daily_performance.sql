-- Copy EnPI, expected energy, savings and their CUSUM from marts.energy_performance_daily into
-- the machine and site rows of marts.fct_kpi_daily for one scope (%(scope_id)s).
UPDATE marts.fct_kpi_daily f
SET enpi = p.enpi,
    expected_kwh = p.expected_kwh,
    savings_kwh = p.savings_kwh,
    cusum_savings_kwh = p.cusum_savings_kwh,
    baseline_version = 'v' || m.version || ' (model ' || m.model_id || ')'
FROM marts.energy_performance_daily p
JOIN marts.baseline_models m USING (model_id)
WHERE p.scope_id = %(scope_id)s
  AND f.level IN ('machine', 'site')
  AND f.level_id = p.scope_id
  AND f.local_date = p.local_date
