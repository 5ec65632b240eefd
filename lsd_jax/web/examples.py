"""The page's one-click examples: the synthesised demo song (:mod:`lsd_jax.audio.demo_song`, so nothing is
downloaded) with parameter sets that each show one thing the music drives.

Small on purpose (256 px, 30 fps, 12 s) so that rendering all of them when the app starts stays
cheap on a Space's 2 vCPUs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

#: Seconds of demo song the examples use.
SECONDS = 12.0
#: What every example sets (the rest of the page keeps its values).
COMMON: dict[str, Any] = dict(style="default", fps=30, resolution=256, start=0, duration=SECONDS)
#: (label, values): pulse on the kick, motion with the music, colours with the chords.
EXAMPLES: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "Pulse: the kick drum punches",
        dict(
            pulse_react=1.5,
            motion_react=0.15,
            speed_fpm="6",
            class_pitch_react=0.2,
            contrast_strength=0.5,
            flash_strength=0.3,
            seed=3,
        ),
    ),
    (
        "Motion: the music drives the drift",
        dict(
            pulse_react=0.15,
            motion_react=2.0,
            speed_fpm="30",
            class_pitch_react=0.2,
            contrast_strength=0,
            flash_strength=0,
            seed=7,
        ),
    ),
    (
        "Classes: the chords change the colours",
        dict(
            pulse_react=0.3,
            motion_react=0.3,
            speed_fpm="bar",
            class_pitch_react=3.0,
            contrast_strength=0,
            flash_strength=0,
            seed=11,
        ),
    ),
)
#: The inputs an example sets, in order (the song first).
INPUTS: tuple[str, ...] = ("song", *COMMON, *dict.fromkeys(k for _, v in EXAMPLES for k in v))


def rows(song: str, max_seconds: float = SECONDS, max_resolution: int = 256) -> list[list[Any]]:
    """The examples as ``gr.Examples`` rows over :data:`INPUTS`, within a server's limits."""
    out = []
    for _, values in EXAMPLES:
        row = {"song": song, **COMMON, **values}
        row["duration"] = min(row["duration"], max_seconds)
        row["resolution"] = min(row["resolution"], max_resolution // 16 * 16)
        out.append([row[name] for name in INPUTS])
    return out


def labels() -> list[str]:
    return [label for label, _ in EXAMPLES]


#: The showcase video the page plays before the visitor's own (a few seconds of the first example, small).
SHOWCASE: dict[str, Any] = dict(EXAMPLES[0][1], start=0, duration=4.0, fps=24, resolution=256)


def showcase_values(max_seconds: float = SECONDS, max_resolution: int = 256) -> dict[str, Any]:
    """The showcase's values (all but the song and style), within a server's limits."""
    out = dict(SHOWCASE)
    out["duration"] = min(out["duration"], max_seconds)
    out["resolution"] = min(out["resolution"], max_resolution // 16 * 16)
    return out


def seeds() -> list[int]:
    """Each example's seed (its thumbnail is a frame of the default style at that seed)."""
    return [values["seed"] for _, values in EXAMPLES]


#: About how long the examples take to render at start-up on a Space's 2 vCPUs (measured: 28 s), before any is done.
GUESS_S = 30.0


class Preparing:
    """The examples' rendering at start-up, for the page's note while it lasts: how many are ready and about how
    long the rest take. ``ready``: counts the examples rendered so far; ``clock``: seconds, monotonic."""

    def __init__(
        self,
        n: int,
        ready: Callable[[], int],
        guess_s: float = GUESS_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.n = n
        self.guess_s = guess_s
        self._ready = ready
        self._clock = clock
        self._started: float | None = None
        self._done = threading.Event()

    def begin(self) -> None:
        self._started = self._clock()

    def finish(self) -> None:
        self._done.set()

    def note(self) -> str:
        """The note ('' once they are ready): "Preparing the examples (1 of 3 ready): about 20 s left …"."""
        if self._done.is_set():
            return ""
        elapsed = 0.0 if self._started is None else self._clock() - self._started
        done = min(self.n, max(0, self._ready()))
        left = elapsed / done * (self.n - done) if done else self.guess_s - elapsed  # their own pace once known
        left = max(5, 5 * round(left / 5))
        return (
            f"⏳ **Preparing the examples** ({done} of {self.n} ready): about {left:.0f} s left. The server renders "
            "them once when it starts; the showcase plays meanwhile, and a render of yours waits for them."
        )

    def lines(self, tick: float = 1.0) -> Iterator[str]:
        """The note each time it changes, every ``tick`` seconds at most, ending with '' once they are ready."""
        last = None
        while True:
            text = self.note()
            if text != last:
                yield text
                last = text
            if not text:
                return
            self._done.wait(tick)
