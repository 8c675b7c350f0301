-- An hour of the shift: the hour's local start lies inside [shift_start, shift_end) on a working
-- day (core.is_working_day, judged by the hour's own local date). An end at or before the start
-- crosses midnight: 22:00-06:00 is the night shift, and equal times are a shift of 24 hours.
CREATE OR REPLACE FUNCTION core.is_working_hour(
    local_start timestamp,
    is_holiday boolean,
    shift_weekdays smallint[],
    shift_start time,
    shift_end time
) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN core.is_working_day(local_start::date, is_holiday, shift_weekdays)
    AND CASE WHEN shift_start < shift_end
             THEN local_start::time >= shift_start AND local_start::time < shift_end
             ELSE local_start::time >= shift_start OR local_start::time < shift_end
        END;

COMMENT ON FUNCTION core.is_working_hour(timestamp, boolean, smallint[], time, time) IS
    'An hour starting inside the shift of a working day (the is_shift column of the calendars).';
