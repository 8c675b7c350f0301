-- The working-day rule of the plant: a local day is a working day when its weekday is one of
-- the site's shift weekdays (0 = Monday) and it is not one of the site's holidays. The calendar
-- transforms (hourly drivers, baseline frames, forecast calendars) call this and
-- core.is_working_hour; enms_dagster.plant.is_production_time is the Python side, held to the
-- same answers by tests/test_working_day.py.
CREATE OR REPLACE FUNCTION core.is_working_day(
    local_day date,
    is_holiday boolean,
    shift_weekdays smallint[]
) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN NOT is_holiday AND (extract(isodow FROM local_day)::integer - 1) = ANY (shift_weekdays);

COMMENT ON FUNCTION core.is_working_day(date, boolean, smallint[]) IS
    'A shift weekday (0 = Monday) that is not a holiday.';
