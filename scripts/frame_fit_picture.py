"""Draw docs/frame_fit.png: one frame of a random StyleGAN3-t network (NVIDIA's format, tests/sg3_state.py) as
the square, as today's 16:9 crop (frame_fit="crop") and as the native 16:9 frame (frame_fit="native").

    .venv/bin/python scripts/frame_fit_picture.py
"""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from sg3_state import random_sg3_state, sg3_config  # noqa: E402

from lsd_jax.engine.step import fit  # noqa: E402
from lsd_jax.styles.generator import Generator  # noqa: E402

R, H, W = 128, 216, 384  # the video: 16:9


def to_image(x: jax.Array) -> Image.Image:
    x = np.asarray(jnp.clip((x[0] + 1.0) * 127.5, 0, 255)).astype(np.uint8)
    return Image.fromarray(x)


def main() -> None:
    cfg = sg3_config(kind="t", img_resolution=R, num_layers=8)
    gen = Generator.from_state(cfg, random_sg3_state(cfg, 7))
    ws = gen.mapping(jax.random.normal(jax.random.key(5), (1, cfg["z_dim"])))
    square = gen.synthesis(ws)
    # a random network's colours are faint: stretch each channel by the square frame's statistics, for the eye
    mean, std = square.mean(axis=(0, 1, 2)), square.std(axis=(0, 1, 2))

    def look(x: jax.Array) -> jax.Array:
        return (x - mean) / (2.0 * std)

    crop = fit(look(square), (H, W))
    native = fit(look(gen.synthesis(ws, size=(R, round(R * W / H)))), (H, W))
    panels = [
        ("square (the model's frame)", to_image(fit(look(square), (H, H)))),
        ('16:9 crop (frame_fit="crop")', to_image(crop)),
        ('16:9 native (frame_fit="native")', to_image(native)),
    ]
    pad, label = 8, 18
    out = Image.new("RGB", (H + 2 * W + 4 * pad, H + label + 2 * pad), "white")
    draw = ImageDraw.Draw(out)
    x = pad
    for text, im in panels:
        draw.text((x, pad // 2), text, fill="black")
        out.paste(im, (x, label + pad))
        x += im.width + pad
    out.save(ROOT / "docs" / "frame_fit.png", optimize=True)


if __name__ == "__main__":
    main()
