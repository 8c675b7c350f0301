-- marts.fct_energy_hourly for the hours in [%(start)s, %(end)s): core.hourly_energy per machine
-- and hour, with the shift flag of core.hourly_drivers, the time-of-use price and cost of the
-- hour and its CO2e.
--
-- Tariffs (core.tariffs.definition, from the plant file):
--   {"periods": [{"name", "start": "HH:MM", "end": "HH:MM", "weekdays": ["mon", ...],
--                 "eur_per_kwh"}, ...], "demand_charge_eur_per_kw_month", "eur_per_kwh"}
-- * The tariff of an hour is the site's with the latest valid_from on or before the hour's
--   local date; the emission factor likewise.
-- * Periods are local clock intervals [start, end), on the listed weekdays (all days without a
--   list). An end at or before the start crosses midnight: 20:00-08:00 covers 20:00-24:00 of a
--   listed weekday and 00:00-08:00 of the day after it.
-- * A moment takes the first listed period that covers it; where none does (the reference
--   plant's weekend daytime), the cheapest period; a tariff without periods its flat eur_per_kwh.
-- * The hour's price is the mean of the prices at its four quarter-hour starts, each converted to
--   local time on its own, so daylight-saving days (23 or 25 hours) and boundaries at :15/:30/:45
--   are priced right; tariff_period is the period at the hour's start.
WITH hours AS (
    SELECT e.*, m.site_id, m.line, s.timezone,
           e.hour_start AT TIME ZONE s.timezone AS local_start
    FROM core.hourly_energy e
    JOIN core.machines m USING (machine_id)
    JOIN core.sites s USING (site_id)
    WHERE e.hour_start >= %(start)s AND e.hour_start < %(end)s
),
site_hours AS (
    SELECT DISTINCT site_id, timezone, hour_start, local_date FROM hours
),
priced_quarters AS (
    SELECT sh.site_id, sh.hour_start, q.quarter, t.name AS tariff_name, t.currency,
           COALESCE(p.price, (t.definition ->> 'eur_per_kwh')::double precision) AS price,
           p.period
    FROM site_hours sh
    LEFT JOIN LATERAL (
        SELECT t.name, t.currency, t.definition FROM core.tariffs t
        WHERE t.site_id = sh.site_id AND t.valid_from <= sh.local_date
        ORDER BY t.valid_from DESC LIMIT 1
    ) AS t ON true
    CROSS JOIN generate_series(0, 3) AS q(quarter)
    CROSS JOIN LATERAL (
        SELECT (sh.hour_start + q.quarter * interval '15 minutes') AT TIME ZONE sh.timezone AS ts
    ) AS l
    LEFT JOIN LATERAL (
        SELECT x.period ->> 'name' AS period,
               (x.period ->> 'eur_per_kwh')::double precision AS price
        FROM jsonb_array_elements(t.definition -> 'periods') WITH ORDINALITY AS x(period, ord)
        CROSS JOIN LATERAL (
            SELECT (x.period ->> 'start')::time AS starts,
                   (x.period ->> 'end')::time AS ends,
                   NULLIF(x.period -> 'weekdays', 'null'::jsonb) AS weekdays,
                   (ARRAY['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'])
                       [extract(isodow FROM l.ts)::integer] AS today,
                   (ARRAY['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'])
                       [extract(isodow FROM l.ts - interval '1 day')::integer] AS yesterday
        ) AS b
        CROSS JOIN LATERAL (
            SELECT CASE
                       WHEN b.starts < b.ends
                           THEN l.ts::time >= b.starts AND l.ts::time < b.ends
                                AND (b.weekdays IS NULL OR b.weekdays ? b.today)
                       ELSE (l.ts::time >= b.starts
                             AND (b.weekdays IS NULL OR b.weekdays ? b.today))
                            OR (l.ts::time < b.ends
                                AND (b.weekdays IS NULL OR b.weekdays ? b.yesterday))
                   END AS covers
        ) AS c
        ORDER BY c.covers DESC, CASE WHEN c.covers THEN x.ord END, price, x.ord
        LIMIT 1
    ) AS p ON true
),
hour_prices AS (
    SELECT site_id, hour_start,
           max(tariff_name) AS tariff_name,
           max(currency) AS currency,
           max(period) FILTER (WHERE quarter = 0) AS tariff_period,
           avg(price) AS price_per_kwh
    FROM priced_quarters
    GROUP BY site_id, hour_start
)
INSERT INTO marts.fct_energy_hourly (
    machine_id, site_id, line, hour_start, local_date, local_hour, is_shift,
    energy_kwh, energy_method, avg_kw, max_kw, peak_15min_kw, running_h, idle_h, off_h,
    idle_kwh, parts, completeness, tariff_name, tariff_period, price_per_kwh, energy_cost,
    currency, kg_co2e_per_kwh, co2e_kg
)
SELECT h.machine_id,
       h.site_id,
       h.line,
       h.hour_start,
       h.local_date,
       extract(hour FROM h.local_start),
       d.is_shift,
       h.energy_kwh,
       h.energy_method,
       h.avg_kw,
       h.max_kw,
       h.peak_15min_kw,
       h.running_h,
       h.idle_h,
       h.off_h,
       h.idle_kwh,
       h.parts,
       h.completeness,
       hp.tariff_name,
       hp.tariff_period,
       hp.price_per_kwh,
       h.energy_kwh * hp.price_per_kwh,
       hp.currency,
       f.kg_co2e_per_kwh,
       h.energy_kwh * f.kg_co2e_per_kwh
FROM hours h
LEFT JOIN core.hourly_drivers d ON d.site_id = h.site_id AND d.hour_start = h.hour_start
LEFT JOIN hour_prices hp ON hp.site_id = h.site_id AND hp.hour_start = h.hour_start
LEFT JOIN LATERAL (
    SELECT ef.kg_co2e_per_kwh FROM core.emission_factors ef
    WHERE ef.site_id = h.site_id AND ef.valid_from <= h.local_date
    ORDER BY ef.valid_from DESC LIMIT 1
) AS f ON true
