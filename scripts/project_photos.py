"""How closely projection reaches real photos (not in a generator's range): PSNR and time, W and W+.

    .venv/bin/python scripts/project_photos.py [--res 64 256] [--steps 500] [--wide] [IMAGE ...]

Without IMAGE it uses the photographs Gradio ships (``gradio/media_assets/images``: cheetah.jpg, lion.jpg,
tower.jpg), so the numbers can be rerun on any install. Each resolution gets a RANDOM StyleGAN2 network
(``lsd_jax.testing``, mapping depth 8, the test networks' small widths: w_dim 32, at most 32 channels; with
``--wide`` NVIDIA's paper256 widths: z = w = 512, channel_base 16384, channel_max 512): no trained network can be
downloaded here, so a photo's PSNR shows what the loss and optimiser reach with such a network, not what a trained
model would give. For comparison each table also has an image the network made from a known z (reachable exactly)
and the mean-w image the optimisation starts from. The network is compiled first; times are per projection after
that (``Projection.seconds``: W statistics, optimisation, final render), uncached. Times vary with the machine's load.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

DEFAULT_PHOTOS = ("cheetah.jpg", "lion.jpg", "tower.jpg")


def gradio_photos() -> list[Path]:
    import gradio

    d = Path(gradio.__file__).parent / "media_assets" / "images"
    found = [d / n for n in DEFAULT_PHOTOS if (d / n).is_file()]
    if not found:
        raise SystemExit(f"no photos in {d}: pass image paths")
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="*", type=Path)
    ap.add_argument("--res", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--steps", type=int, default=500, help="projection_steps (the most L-BFGS iterations)")
    ap.add_argument("--wide", action="store_true", help="NVIDIA's paper256 widths instead of the test networks'")
    args = ap.parse_args()

    import jax.numpy as jnp

    from lsd_jax.styles import projection as P
    from lsd_jax.styles.generator import Generator
    from lsd_jax.testing import random_sg2_state, sg2_config

    images = args.images or gradio_photos()
    for res in args.res:
        wide = {"z_dim": 512, "w_dim": 512, "channel_base": 16384, "channel_max": 512} if args.wide else {}
        cfg = sg2_config(img_resolution=res, num_layers=8, **wide)
        g = Generator.from_state(cfg, random_sg2_state(cfg, 1700 + res))
        z = np.random.default_rng(res).standard_normal((1, cfg["z_dim"])).astype(np.float32)
        made = P.to_uint8(np.asarray(g(z))[0])
        P.project(g, made, steps=2, w_plus=True, progress=False, cache=False)  # compile once
        mean_w = jnp.broadcast_to(jnp.asarray(P.w_stats(g).mean), (1, g.num_ws, g.w_dim))
        start = P.to_uint8(np.asarray(g.synthesis(mean_w, noise_mode="const"))[0])
        print(f"\n{res} px random StyleGAN2 (w_dim {g.w_dim}, {g.num_ws} ws), steps <= {args.steps}")
        print(f"{'image':<16} {'mean w':>8} {'W dB':>7} {'steps':>5} {'s':>6} {'W+ dB':>7} {'steps':>5} {'s':>6}")
        for name, image in [("network-made", made)] + [(p.name, p) for p in images]:
            u8 = P.load_image(image, res)
            one = P.project(g, u8, steps=args.steps, w_plus=False, progress=False, cache=False)
            plus = P.project(g, u8, steps=args.steps, w_plus=True, progress=False, cache=False)
            print(
                f"{name:<16} {P.psnr(start, u8):8.1f} {one.psnr:7.1f} {len(one.loss_history):5d} {one.seconds:6.1f}"
                f" {plus.psnr:7.1f} {len(plus.loss_history):5d} {plus.seconds:6.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
