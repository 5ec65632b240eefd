"""How fast this server renders: measured speeds and the render-time estimate shown before a click.

The measurements live one layer down (:mod:`lsd_jax.store.speeds`, shared with the CLI). The app's
:class:`SpeedBook` belongs to one app instance (no module state). It keeps, per *speed key*
(style, output size, number format and what changes the compiled step: effects, w control, StyleGAN3
transforms), the frames/s of the render loop and the first batch's extra time (compiling), measured
by a short calibration (:meth:`lsd_jax.web.jobs.Jobs.calibrate`), a preview or a render; and the
seconds of preparation (style, audio analysis, latents) per second of music. :meth:`estimate` turns
them into the expected time of a job; :func:`estimate_text` into the line above the buttons.
"""

from __future__ import annotations

from ..store.speeds import Estimate, SpeedBook, Throughput, round_time, speed_key
from .config import duration_text

__all__ = ["Estimate", "SpeedBook", "Throughput", "estimate_text", "speed_key", "time_left"]


def estimate_text(e: Estimate, audio_seconds: float, fps: float, style_note: str = "") -> str:
    """The estimate as one line of Markdown."""
    what = f"{e.n_frames} frames ({duration_text(round(audio_seconds, 1))} at {fps:g} fps)"
    if e.seconds is None:
        return (
            f"Render time: not measured yet for this style and size on this server; the first preview or "
            f"render measures it. {what}.{style_note}"
        )
    return (
        f"Estimated render time: **about {duration_text(round_time(e.seconds))}** for {what}, at the "
        f"{e.frames_per_s:.1f} frames/s this server measured for this style and size.{style_note}"
    )


def time_left(done: int, total: int, elapsed: float) -> float | None:
    """Seconds left at the rate so far (None before any frame)."""
    if done <= 0 or elapsed <= 0 or total <= done:
        return None if done <= 0 else 0.0
    return (total - done) * elapsed / done
