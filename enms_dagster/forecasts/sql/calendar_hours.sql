-- The calendar of the local days [%(first_date)s, %(last_date)s] for machines (scope 'machine')
-- or sites ('site'): every hour with its local date and hour, working day and shift, computed
-- from core.sites and core.site_holidays by the rule core.hourly_drivers uses. Known in advance,
-- so a forecast may use it for the hours it forecasts (which have no drivers row yet).
WITH scopes AS (
    SELECT m.machine_id AS scope_id, s.site_id, s.timezone, s.shift_weekdays, s.shift_start,
           s.shift_end
    FROM core.machines m
    JOIN core.sites s USING (site_id)
    WHERE %(scope)s = 'machine' AND m.machine_id = ANY (%(scope_ids)s)
    UNION ALL
    SELECT s.site_id, s.site_id, s.timezone, s.shift_weekdays, s.shift_start, s.shift_end
    FROM core.sites s
    WHERE %(scope)s = 'site' AND s.site_id = ANY (%(scope_ids)s)
),
hours AS (
    SELECT sc.*, h AS hour_start, h AT TIME ZONE sc.timezone AS local_start
    FROM scopes sc
    CROSS JOIN LATERAL generate_series(
        %(first_date)s::date::timestamp AT TIME ZONE sc.timezone,
        (%(last_date)s::date + 1)::timestamp AT TIME ZONE sc.timezone - interval '1 hour',
        interval '1 hour'
    ) AS h
)
SELECT h.scope_id,
       h.hour_start,
       h.local_start::date AS local_date,
       extract(hour FROM h.local_start)::integer AS local_hour,
       core.is_working_day(h.local_start::date, hol.holiday IS NOT NULL, h.shift_weekdays)
           AS is_working_day,
       core.is_working_hour(h.local_start, hol.holiday IS NOT NULL, h.shift_weekdays,
                            h.shift_start, h.shift_end) AS is_shift
FROM hours h
LEFT JOIN core.site_holidays hol ON hol.site_id = h.site_id AND hol.holiday = h.local_start::date
ORDER BY h.scope_id, h.hour_start
