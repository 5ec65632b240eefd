"""One process of a multi-process render on the CPU: distributed_render.py PORT N_PROC PROC_ID SONG OUT."""

import sys

import jax

port, n_proc, proc_id, song, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.distributed.initialize(
    coordinator_address=f"127.0.0.1:{port}", num_processes=n_proc, process_id=proc_id, initialization_timeout=60
)
import lsd_jax  # noqa: E402

lsd_jax.render(song, output=out, fps=8.0, resolution=32, duration=4.0, progress=False)
print("process", jax.process_index(), "of", jax.process_count(), "done")
