-- Drivers (relevant variables) per site and hour for the hours starting in [%(start)s, %(end)s):
-- the hourly mean outdoor temperature and degree-hours at the given bases, parts, running and
-- operating machine-hours and energy (from core.hourly_energy, which must be built first), and
-- the calendar: local date and hour, ISO weekday, holiday and shift from core.sites and
-- core.site_holidays. Every hour of the window gets a row, with NULLs where nothing was measured.
-- Weather readings follow the hourly convention: a reading at ts belongs to the hour of ts - 1 µs.
-- An hour is in the shift by core.is_working_hour (enms_dagster/db/functions).
WITH hours AS (
    SELECT s.site_id, s.timezone, s.shift_weekdays, s.shift_start, s.shift_end,
           h AS hour_start, h AT TIME ZONE s.timezone AS local_start
    FROM core.sites s
    CROSS JOIN generate_series(
        %(start)s::timestamptz, %(end)s::timestamptz - interval '1 hour', interval '1 hour'
    ) AS h
),
weather AS (
    SELECT m.site_id,
           date_bin('1 hour', r.ts - interval '1 microsecond', timestamptz '2000-01-01 00:00Z')
               AS hour_start,
           avg(r.value) AS temperature_c,
           count(*) AS samples
    FROM raw.readings r
    JOIN core.machines m USING (machine_id)
    WHERE r.metric = 'outdoor_temperature_c' AND r.ts > %(start)s AND r.ts <= %(end)s
    GROUP BY 1, 2
),
production AS (
    SELECT m.site_id, e.hour_start,
           sum(e.parts) AS parts,
           sum(e.running_h) AS running_h,
           sum(e.running_h + e.idle_h) AS operating_h,
           sum(e.energy_kwh) AS energy_kwh
    FROM core.hourly_energy e
    JOIN core.machines m USING (machine_id)
    WHERE e.hour_start >= %(start)s AND e.hour_start < %(end)s
    GROUP BY 1, 2
)
INSERT INTO core.hourly_drivers (
    site_id, hour_start, local_date, local_hour, iso_weekday, is_holiday, is_shift,
    outdoor_temperature_c, temperature_samples, hdh_base_c, hdh, cdh_base_c, cdh,
    parts, running_h, operating_h, energy_kwh
)
SELECT h.site_id,
       h.hour_start,
       h.local_start::date,
       extract(hour FROM h.local_start),
       extract(isodow FROM h.local_start),
       hol.holiday IS NOT NULL,
       core.is_working_hour(h.local_start, hol.holiday IS NOT NULL, h.shift_weekdays,
                            h.shift_start, h.shift_end),
       w.temperature_c,
       COALESCE(w.samples, 0),
       %(heating_base_c)s,
       -- greatest() skips NULLs, so an hour without weather would read 0 degree-hours
       CASE WHEN w.temperature_c IS NOT NULL
            THEN greatest(%(heating_base_c)s - w.temperature_c, 0) END,
       %(cooling_base_c)s,
       CASE WHEN w.temperature_c IS NOT NULL
            THEN greatest(w.temperature_c - %(cooling_base_c)s, 0) END,
       p.parts,
       p.running_h,
       p.operating_h,
       p.energy_kwh
FROM hours h
LEFT JOIN core.site_holidays hol
    ON hol.site_id = h.site_id AND hol.holiday = h.local_start::date
LEFT JOIN weather w ON w.site_id = h.site_id AND w.hour_start = h.hour_start
LEFT JOIN production p ON p.site_id = h.site_id AND p.hour_start = h.hour_start
