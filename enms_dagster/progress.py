"""Progress of a long command (``enms simulate``, ``enms import``): a bar on a terminal, and a
plain line every ``every_s`` seconds when the output goes to a file, a pipe or a CI log; both
with the rate and, where the end is known, the time left.

A long-running function takes a ``progress(fraction, count, note)`` callback: ``fraction`` of
the work done (``None`` when there is no end, e.g. publishing in real time), ``count`` units
done so far, ``note`` where it is (e.g. the simulated time reached). ``Progress`` is such a
callback."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from typing import TextIO

ProgressCallback = Callable[[float | None, int, str], None]


def progress_line(
    what: str,
    fraction: float | None,
    count: int,
    unit: str,
    elapsed_s: float | None,
    note: str = "",
) -> str:
    """``import meter.csv: 35 %, 450,000 lines, 62,000 lines/s, 0:00:14 left (note)``; without
    a fraction no percentage and no time left, without elapsed time no rate."""
    parts = [f"{fraction:.0%}"] if fraction is not None else []
    parts.append(f"{count:,} {unit}")
    if elapsed_s:
        parts.append(f"{count / elapsed_s:,.0f} {unit}/s")
        if fraction:
            parts.append(f"{_duration(elapsed_s * (1 - fraction) / fraction)} left")
    line = f"{what}: " + ", ".join(parts) if what else ", ".join(parts)
    return f"{line} ({note})" if note else line


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """A ``ProgressCallback`` that shows progress on ``stream`` (stderr): a tqdm bar on a
    terminal, else a ``progress_line`` at most every ``every_s`` seconds. Use it as a context
    manager, or call ``close``, to end the bar."""

    def __init__(
        self,
        what: str,
        unit: str,
        *,
        stream: TextIO | None = None,
        every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what, self.unit, self.every_s, self.clock = what, unit, every_s, clock
        self.stream = stream or sys.stderr
        self.terminal = self.stream.isatty()
        self.began = clock()
        self.last_line = self.began
        self._bar = None

    def __call__(self, fraction: float | None, count: int, note: str = "") -> None:
        if self.terminal:
            self._draw(fraction, count, note)
            return
        now = self.clock()
        if now - self.last_line >= self.every_s:
            self.last_line = now
            line = progress_line(self.what, fraction, count, self.unit, now - self.began, note)
            print(line, file=self.stream, flush=True)

    def _draw(self, fraction: float | None, count: int, note: str) -> None:
        from tqdm import tqdm

        if self._bar is None:
            known = fraction is not None
            # a terminal that reports no size (0 x 0, e.g. `script`, some containers) gets
            # 100 x 20: tqdm would hide a bar on a screen of 0 rows
            size = shutil.get_terminal_size((100, 20))
            self._bar = tqdm(
                desc=self.what,
                total=100 if known else None,
                unit="%" if known else f" {self.unit}",
                file=self.stream,
                bar_format="{desc}: {percentage:3.0f}%|{bar:20}| {elapsed}<{remaining}{postfix}"
                if known
                else None,
                ncols=size.columns,
                nrows=size.lines,
            )
        elapsed = self.clock() - self.began
        if fraction is None:
            self._bar.set_postfix_str(note, refresh=False)
            self._bar.update(count - self._bar.n)
        else:
            rate = f", {count / elapsed:,.0f} {self.unit}/s" if elapsed else ""
            about = f" ({note})" if note else ""
            self._bar.set_postfix_str(f"{count:,} {self.unit}{rate}{about}", refresh=False)
            self._bar.update(round(fraction * 100, 1) - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
