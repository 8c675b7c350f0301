"""The working-day and shift rule has one definition in SQL (core.is_working_day and
core.is_working_hour, used by every calendar transform) and its Python twin in
enms_dagster.plant; these tests hold the two to the same answers, night shifts included."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import re

import pytest

from enms_dagster.plant import Shift, is_production_time, is_working_day, load_plant
from enms_dagster.settings import DEFAULT_PLANT_FILE

SHIFTS = [
    Shift((0, 1, 2, 3, 4), dt.time(6), dt.time(22)),  # the reference plant's
    Shift((0, 1, 2, 3, 4, 5), dt.time(22), dt.time(6)),  # a night shift across midnight
    Shift((2, 6), dt.time(0), dt.time(0)),  # round the clock on two days
    Shift((), dt.time(8, 30), dt.time(17, 15)),  # no working day at all
]
HOLIDAY = dt.date(2026, 3, 11)  # a Wednesday


@pytest.mark.integration
def test_python_and_sql_agree_on_every_hour_of_two_weeks(warehouse):
    site = load_plant(DEFAULT_PLANT_FILE).sites["plant-a"]
    hours = [
        dt.datetime(2026, 3, 9) + dt.timedelta(minutes=30 * i) for i in range(14 * 48)
    ]  # Monday 2026-03-09 on, every half hour, local wall time
    cases = list(itertools.product(SHIFTS, hours))
    sql_days, sql_hours = [], []
    for shift, local in cases:
        holiday = local.date() == HOLIDAY
        day, hour = warehouse.execute(
            "SELECT core.is_working_day(%(day)s, %(holiday)s, %(weekdays)s::smallint[]), "
            "core.is_working_hour(%(local)s, %(holiday)s, %(weekdays)s::smallint[], "
            "%(start)s, %(end)s)",
            {
                "day": local.date(),
                "local": local,
                "holiday": holiday,
                "weekdays": list(shift.weekdays),
                "start": shift.start,
                "end": shift.end,
            },
        ).fetchone()
        sql_days.append(day)
        sql_hours.append(hour)
    py_days, py_hours = [], []
    for shift, local in cases:
        here = dataclasses.replace(site, shift=shift, holidays=frozenset({HOLIDAY}))
        py_days.append(is_working_day(here, local.date()))
        py_hours.append(is_production_time(here, local.replace(tzinfo=site.zone)))
    assert py_days == sql_days
    assert py_hours == sql_hours
    night = [h for (shift, local), h in zip(cases, py_hours, strict=True) if shift is SHIFTS[1]]
    assert any(night) and not all(night)  # the night shift really is judged, both ways


def test_the_calendar_transforms_use_the_rule_rather_than_restate_it():
    from importlib.resources import files

    for package, name in [
        ("enms_dagster.hourly", "hourly_drivers"),
        ("enms_dagster.baselines", "machine_hours"),
        ("enms_dagster.baselines", "site_hours"),
        ("enms_dagster.forecasts", "calendar_hours"),
    ]:
        text = (files(package) / "sql" / f"{name}.sql").read_text()
        assert "core.is_working_" in text, name
        assert not re.search(r"ANY \(\w+\.shift_weekdays\)", text), f"{name} restates it"
