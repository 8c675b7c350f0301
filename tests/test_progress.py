"""Long commands show progress without a terminal too: a plain line every ten seconds (a log
file or CI job shows them) with the rate and the time left."""

import io

from enms_dagster.progress import Progress, progress_line


def test_a_progress_line_says_share_count_rate_and_time_left():
    line = progress_line("import meter.csv", 0.25, 300_000, "lines", 10.0, "1,200,000 readings")
    assert line == (
        "import meter.csv: 25%, 300,000 lines, 30,000 lines/s, 0:00:30 left (1,200,000 readings)"
    )


def test_without_an_end_there_is_no_share_and_no_time_left():
    line = progress_line("publishing", None, 4_000, "messages", 8.0, "simulated time 12:00")
    assert line == "publishing: 4,000 messages, 500 messages/s (simulated time 12:00)"


def test_an_hour_left_is_written_in_hours():
    assert "1:02:03 left" in progress_line("x", 0.5, 10, "lines", 3723.0)


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_without_a_terminal_a_line_is_printed_every_ten_seconds_not_on_every_call():
    clock, out = FakeClock(), io.StringIO()
    progress = Progress("landing", "readings", stream=out, clock=clock)
    for second in range(1, 26):  # one call a second for 25 s
        clock.now = 100.0 + second
        progress(second / 50, second * 1000, f"second {second}")
    progress.close()
    assert out.getvalue().splitlines() == [
        "landing: 20%, 10,000 readings, 1,000 readings/s, 0:00:40 left (second 10)",
        "landing: 40%, 20,000 readings, 1,000 readings/s, 0:00:30 left (second 20)",
    ]
