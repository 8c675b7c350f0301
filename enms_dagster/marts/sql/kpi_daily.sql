-- Daily KPIs per machine for the local days in [%(first_date)s, %(last_date)s].
INSERT INTO marts.kpi_daily (
    machine_id, site_id, machine_type, local_date, energy_kwh, avg_kw,
    peak_15min_kw, max_kw, load_factor, hours
)
SELECT h.machine_id,
       m.site_id,
       m.machine_type,
       h.local_date,
       sum(h.energy_kwh),
       sum(h.energy_kwh) / count(*),
       max(h.peak_15min_kw),
       max(h.max_kw),
       (sum(h.energy_kwh) / count(*)) / NULLIF(max(h.peak_15min_kw), 0),
       count(*)
FROM core.hourly_energy h
JOIN core.machines m USING (machine_id)
WHERE h.local_date BETWEEN %(first_date)s AND %(last_date)s
GROUP BY h.machine_id, m.site_id, m.machine_type, h.local_date
