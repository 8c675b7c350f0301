-- The hourly frame a machine baseline is fitted on: energy and activity of the machine, the
-- site's weather, production and calendar, for the local days [%(first_date)s, %(last_date)s].
SELECT h.machine_id AS scope_id,
       h.hour_start,
       h.local_date,
       d.local_hour,
       core.is_working_day(d.local_date, d.is_holiday, s.shift_weekdays) AS is_working_day,
       d.is_shift,
       h.energy_kwh,
       d.outdoor_temperature_c,
       h.parts,
       d.parts AS site_parts,
       h.running_h,
       h.idle_h
FROM core.hourly_energy h
JOIN core.machines m USING (machine_id)
JOIN core.sites s ON s.site_id = m.site_id
JOIN core.hourly_drivers d ON d.site_id = m.site_id AND d.hour_start = h.hour_start
WHERE h.machine_id = ANY (%(scope_ids)s)
  AND h.local_date BETWEEN %(first_date)s AND %(last_date)s
ORDER BY h.machine_id, h.hour_start
