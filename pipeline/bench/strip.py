"""The strength strip: one pair rendered at strength 0.1 ... 1.0 with the default preset, side by side.

`python -m pipeline.bench.strip OUT.jpg [--size N (256)] [--iterations N] [--content NAME] [--style NAME]`
(bundled example names). Each tile is labelled with its strength and its look (structure /
style match, the ruler of `nst look`); the picture in the README is made by this.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

STRENGTHS = tuple(round(0.1 * i, 1) for i in range(1, 11))


def make_strip(out: Path, size: int, iterations: int | None, content_name: str, style_name: str,
               strengths=STRENGTHS, progress=print) -> list[dict]:
    from PIL import Image, ImageDraw

    from pipeline.bench.look import render_look
    from pipeline.config import build_config
    from pipeline.methods.look import LookRuler
    from pipeline.models.vgg import Backbone

    base = build_config(overrides=dict(size=size, iterations=iterations))
    backbone, ruler = Backbone(base.network, base.pooling, base.weights, "cpu"), LookRuler()
    tiles, rows = [], []
    for s in strengths:
        cfg = build_config(overrides=dict(size=size, iterations=iterations), sets=[f"strength={s}"])
        row = render_look(backbone, ruler, cfg, content_name, style_name)
        tiles.append(row.pop("output"))
        rows.append(dict(row, strength=s))
        progress(f"strength {s}: structure {row['structure']:.3f}, style match {row['style_match']:.3f}")
    w, h = tiles[0].size
    label = 16
    sheet = Image.new("RGB", (w * len(tiles), h + label), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (tile, row) in enumerate(zip(tiles, rows)):
        sheet.paste(tile, (i * w, label))
        draw.text((i * w + 3, 2), f"{row['strength']:.1f}: {row['structure']:.2f}/{row['style_match']:.2f}",
                  fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, quality=90)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.bench.strip", description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--iterations", type=int, default=None)
    p.add_argument("--content", default="astronaut")
    p.add_argument("--style", default="great_wave_of_kanagawa")
    a = p.parse_args(argv)
    make_strip(a.out, a.size, a.iterations, a.content, a.style, progress=lambda m: print(m, file=sys.stderr))
    return 0


if __name__ == "__main__":
    sys.exit(main())
