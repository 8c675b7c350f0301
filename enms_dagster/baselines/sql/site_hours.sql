-- The hourly frame a site baseline is fitted on: the site's machines summed per hour, with the
-- site's weather, production and calendar, for the local days [%(first_date)s, %(last_date)s].
SELECT d.site_id AS scope_id,
       d.hour_start,
       d.local_date,
       d.local_hour,
       core.is_working_day(d.local_date, d.is_holiday, s.shift_weekdays) AS is_working_day,
       d.is_shift,
       d.energy_kwh,
       d.outdoor_temperature_c,
       d.parts,
       d.parts AS site_parts,
       d.running_h,
       d.operating_h - d.running_h AS idle_h
FROM core.hourly_drivers d
JOIN core.sites s ON s.site_id = d.site_id
WHERE d.site_id = ANY (%(scope_ids)s)
  AND d.local_date BETWEEN %(first_date)s AND %(last_date)s
  AND d.energy_kwh IS NOT NULL
ORDER BY d.site_id, d.hour_start
