"""Render the frames of a short clip and save them: run under different device counts / processes.

usage: frames_on_devices.py SONG OUT.npz STYLE BATCH
"""

import sys

import jax
import numpy as np

from lsd_jax.engine.pipeline import prepare

song, out, style, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
prep = prepare(song, style, fps=8.0, resolution=32, duration=3.0, batch_size=batch, progress=False)
frames = prep.frames(np.arange(prep.n_frames))
np.savez(out, frames=frames, devices=jax.local_device_count(), batch=prep.step.batch)
