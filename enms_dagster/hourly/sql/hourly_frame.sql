-- The hourly frame (enms_dagster.hourly.frame.HOURLY_COLUMNS): hourly energy of every machine in
-- the window [start, end) with its type, rated power, local hour and weekday, and its site's drivers.
SELECT e.machine_id, m.machine_type, m.rated_power_kw, m.site_id, e.hour_start, e.local_date,
       extract(hour FROM e.hour_start AT TIME ZONE s.timezone)::int AS local_hour,
       extract(isodow FROM e.hour_start AT TIME ZONE s.timezone)::int AS iso_weekday,
       d.is_shift, d.is_holiday, d.outdoor_temperature_c, d.parts AS site_parts,
       e.energy_kwh, e.avg_kw, e.max_kw, e.peak_15min_kw, e.power_kwh,
       e.running_h, e.idle_h, e.off_h, e.idle_kwh, e.parts, e.completeness
FROM core.hourly_energy e
JOIN core.machines m USING (machine_id)
JOIN core.sites s ON s.site_id = m.site_id
LEFT JOIN core.hourly_drivers d ON d.site_id = m.site_id AND d.hour_start = e.hour_start
WHERE e.hour_start >= %s AND e.hour_start < %s
ORDER BY e.machine_id, e.hour_start
