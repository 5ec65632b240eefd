"""How fast this server renders: the estimate shown before a job, its time left during it, and the wait for the
jobs ahead.

The model lives one layer down (:class:`lsd_jax.store.speeds.SpeedBook`, shared with the CLI): per *speed key*
(style, output size, number format and what changes the compiled step) the frames/s of the render loop and the
first batch's extra time (compiling), measured by a calibration (:meth:`lsd_jax.web.jobs.Jobs.calibrate`), a
preview or a render and updated after each; the preparation fitted to the latest jobs' lengths. The app keeps one
book per app instance (no module state). :func:`estimate_text` writes the line above the buttons: the total and
its parts (they add up), and the queue wait (:meth:`lsd_jax.web.jobs.Jobs.queue_wait`) when the server is busy.
"""

from __future__ import annotations

from ..store.speeds import Estimate, SpeedBook, Throughput, queue_wait, round_time, speed_key
from .config import duration_text

__all__ = [
    "Estimate",
    "SpeedBook",
    "Throughput",
    "estimate_text",
    "queue_wait",
    "speed_key",
    "time_left",
    "wait_text",
]


def wait_text(wait_s: float, ahead: int) -> str:
    """The queue's part of the estimate line ('' when no job is ahead)."""
    if ahead <= 0:
        return ""
    jobs = "1 job" if ahead == 1 else f"{ahead} jobs"
    when = f"in about {duration_text(round_time(wait_s))}" if wait_s >= 2.5 else "in a moment"
    return f" The server is busy ({jobs} ahead): yours would start {when}."


def estimate_text(
    e: Estimate, audio_seconds: float, fps: float, style_note: str = "", wait_s: float = 0.0, ahead: int = 0
) -> str:
    """The estimate as one line of Markdown: the total, then its parts (rounded alike, so they add up)."""
    music = f"{duration_text(round(audio_seconds, 1))} of music at {fps:g} fps"
    queue = wait_text(wait_s, ahead)
    if e.seconds is None:
        return (
            f"Render time: not measured yet for this style and size on this server; the first preview or "
            f"render measures it. {e.n_frames} frames ({music}).{queue}{style_note}"
        )
    return (
        f"Estimated render time: **about {duration_text(round_time(e.seconds))}** for {music}: "
        f"{e.parts(duration_text)}, as this server measured for this style and size.{queue}{style_note}"
    )


def time_left(done: int, total: int, elapsed: float) -> float | None:
    """Seconds left at the rate so far (None before any frame)."""
    if done <= 0 or elapsed <= 0 or total <= done:
        return None if done <= 0 else 0.0
    return (total - done) * elapsed / done
