"""A one-line progress bar for long runs: rows done, rows per second, time left.

The command line shows it on stderr when stderr is a terminal (see ``bpo-classify
label``); the library only reports numbers through a callback and never prints.

Example:
    >>> import io
    >>> ticks = iter([0.0, 2.0])
    >>> out = io.StringIO()
    >>> bar = ProgressBar(out, clock=lambda: next(ticks), width=100)
    >>> bar.update(50_000, 250, 1000)
    >>> out.getvalue()
    '\\r[##########                              ]  25% 50,000 rows 25,000 rows/s 0:00:06 left'
"""

from __future__ import annotations

import shutil
import time
from typing import IO, Callable


class ProgressBar:
    """Redraws one line of ``stream`` at most every ``interval`` seconds.

    ``update(rows, done, total)``: ``done`` and ``total`` measure the same thing (input
    bytes read and the input's size); with ``total`` unknown (``None``) there is no
    percentage and no time left.
    """

    def __init__(
        self, stream: IO[str], *, interval: float = 0.2, clock: Callable[[], float] = time.monotonic,
        width: int | None = None,
    ):
        self.stream = stream
        self.interval = interval
        self.clock = clock
        self.width = width if width is not None else shutil.get_terminal_size((80, 24)).columns
        self.start = clock()
        self.last_draw: float | None = None
        self.drawn = 0

    def update(self, rows: int, done: int = 0, total: int | None = None) -> None:
        now = self.clock()
        if self.last_draw is not None and now - self.last_draw < self.interval:
            return
        self.last_draw = now
        self._draw(self.line(rows, done, total, now - self.start))

    def line(self, rows: int, done: int, total: int | None, elapsed: float) -> str:
        """The text shown, e.g. ``[#####     ]  52% 1,040,000 rows 210,113 rows/s 0:00:04 left``."""
        rate = rows / elapsed if elapsed > 0 else 0.0
        parts = [f"{rows:,} rows", f"{rate:,.0f} rows/s"]
        if total and done:
            fraction = min(done / total, 1.0)
            left = elapsed * (1.0 - fraction) / fraction
            parts = [f"{fraction:4.0%}"] + parts + [f"{_clock(left)} left"]
        text = " ".join(parts)
        room = self.width - len(text) - 4
        if total and done and room >= 10:
            filled = int(min(room, 40) * min(done / total, 1.0))
            text = "[" + "#" * filled + " " * (min(room, 40) - filled) + "] " + text
        return text[: max(self.width - 1, 0)]

    def _draw(self, text: str) -> None:
        self.stream.write("\r" + text + " " * max(self.drawn - len(text), 0))
        self.stream.flush()
        self.drawn = len(text)

    def close(self) -> None:
        """Erase the bar, leaving the cursor at the start of an empty line."""
        if self.drawn:
            self.stream.write("\r" + " " * self.drawn + "\r")
            self.stream.flush()
            self.drawn = 0


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
