"""The page's one-click examples: the synthesised demo song (:mod:`lsd_jax.audio.demo_song`, so nothing is
downloaded) with parameter sets that each show one thing the music drives.

Small on purpose (256 px, 30 fps, 12 s) so that rendering all of them when the app starts stays
cheap on a Space's 2 vCPUs.
"""

from __future__ import annotations

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
