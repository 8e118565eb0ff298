"""`nst bench --look`: the look of a preset at several sizes on the bundled pairs, on the ruler of `nst look`.

For each size and each (content, style) pair, one render with the preset (the pipeline's own
stylize_batch, one image, the preset's stages and budget), then structure and style match
(pipeline/methods/look.py) and the seconds it took (wall and this process's CPU time: the
CPU time is the figure to compare on a shared machine). `--budgets` adds the
evaluations-to-look measurement: the same render at each budget, and the smallest budget
whose two numbers are within 0.01 of the largest budget's. Peer rows (another tool's outputs,
made beside this one for measurement only) are scored with the same ruler from
`--peer CONTENT:STYLE:SIZE=FILE:SECONDS`.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

from pipeline.errors import BadInput

ROOT = Path(__file__).resolve().parent.parent.parent
PAIRS = ("astronaut:great_wave_of_kanagawa", "coffee:starry_night", "rocket:the_scream")
SETTLED = 0.01  # both numbers within this of the largest budget's: the look has settled


def _image(kind: str, name: str) -> Path:
    path = ROOT / "examples" / kind / f"{name}.jpg"
    if not path.is_file():
        raise BadInput(f"no bundled {kind} image {name!r} (expected {path})")
    return path


def parse_pairs(raw: str) -> list[tuple[str, str]]:
    pairs = []
    for item in str(raw).split(","):
        content, sep, style = item.strip().partition(":")
        if not sep or not content or not style:
            raise BadInput(f"--pairs expects CONTENT:STYLE[,CONTENT:STYLE...] (bundled names), got {raw!r}")
        _image("content", content), _image("style", style)
        pairs.append((content, style))
    return pairs


def parse_peer(raw: str) -> dict:
    """CONTENT:STYLE:SIZE=FILE:SECONDS[:CPU_SECONDS] -> a peer row to score."""
    try:
        key, _, rest = raw.partition("=")
        content, style, size = key.split(":")
        parts = rest.split(":")
        cpu = None
        if len(parts) >= 3:
            try:
                cpu = float(parts[-1])
                parts = parts[:-1]
            except ValueError:
                pass
        file, seconds = ":".join(parts[:-1]), float(parts[-1])
        row = dict(content=content, style=style, size=int(size), file=file, seconds=seconds, cpu_seconds=cpu)
    except (ValueError, IndexError):
        raise BadInput(f"--peer expects CONTENT:STYLE:SIZE=FILE:SECONDS[:CPU_SECONDS], got {raw!r}") from None
    if not Path(row["file"]).is_file():
        raise BadInput(f"--peer output not found: {row['file']!r}")
    return row


def render_look(backbone, ruler, cfg, content_name: str, style_name: str) -> dict:
    """One render of a pair with `cfg`; its look, evaluations and seconds."""
    from pipeline.io.images import load_image
    from pipeline.pixels import to_pil
    from pipeline.methods.stylize import StyleTargets, StylizeJob, stylize_batch

    content = load_image(_image("content", content_name))
    style = load_image(_image("style", style_name))
    wall, cpu = time.perf_counter(), time.process_time()
    pixels, result = stylize_batch(backbone, cfg, StyleTargets(backbone, cfg),
                                   StylizeJob([content], [(style_name, style)], [cfg.seed]))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    look = ruler.score_one(content, style, to_pil(pixels[0]))
    return dict(content=content_name, style=style_name, size=cfg.size, evaluations=result.evaluations,
                structure=look.structure, style_match=look.style_match, seconds=round(wall, 2),
                cpu_seconds=round(cpu, 2), output=to_pil(pixels[0]))


def run_look(opts: argparse.Namespace, progress=print) -> dict:
    import torch

    from pipeline.config import build_config
    from pipeline.methods.look import LookRuler
    from pipeline.models.vgg import Backbone

    if opts.threads:
        torch.set_num_threads(opts.threads)
    base = build_config(preset=opts.preset, sets=opts.sets)
    backbone = Backbone(base.network, base.pooling, base.weights, "cpu")
    ruler = LookRuler()
    record = dict(kind="look", preset=opts.preset, sets=opts.sets, command=opts.command,
                  date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                  torch=torch.__version__, threads=torch.get_num_threads(), host_cpus=os.cpu_count(),
                  load_average=[round(os.getloadavg()[0], 2)], rows=[], budgets=[], peers=[])
    images = Path(opts.images) if opts.images else None

    def cfg_at(size: int, iterations: int | None):
        # upscale: a size above the content's (1024 px from a 512 px photo) is rendered at that size, not capped
        return build_config(preset=opts.preset, overrides=dict(size=size, iterations=iterations, upscale=True),
                            sets=opts.sets)

    for size in opts.sizes:
        for content, style in opts.pairs:
            row = render_look(backbone, ruler, cfg_at(size, opts.iterations), content, style)
            out = row.pop("output")
            _keep(out, images, f"look-{content}-{style}-{size}.png")
            record["rows"].append(row)
            progress(f"look {size}px {content}+{style}: structure {row['structure']:.3f}, style match "
                     f"{row['style_match']:.3f}, {row['seconds']:.0f} s ({row['cpu_seconds']:.0f} s CPU)")
            _checkpoint(record, opts)
    for size in opts.budget_sizes:
        content, style = opts.pairs[0]
        for n in opts.budgets:
            row = render_look(backbone, ruler, cfg_at(size, n), content, style)
            out = row.pop("output")
            # the budgets side by side: does the picture change after the look has settled?
            _keep(out, images, f"budget-{content}-{style}-{size}-{n}.png")
            record["budgets"].append(row)
            progress(f"budget {n} at {size}px: structure {row['structure']:.3f}, style match {row['style_match']:.3f}")
            _checkpoint(record, opts)
    for peer in opts.peers:
        from pipeline.io.images import load_image

        look = ruler.score_one(load_image(_image("content", peer["content"])), load_image(_image("style", peer["style"])),
                               load_image(peer["file"]))
        record["peers"].append(dict(peer, tool=opts.peer_name, file=Path(peer["file"]).name,
                                    structure=look.structure, style_match=look.style_match))
    record["load_average"].append(round(os.getloadavg()[0], 2))
    _checkpoint(record, opts)
    return record


def _keep(out, images: Path | None, name: str) -> None:
    """Save a render for the sheets (README, docs/look.md) when --images asks for them."""
    if images:
        images.mkdir(parents=True, exist_ok=True)
        out.save(images / name)


def _checkpoint(record: dict, opts) -> None:
    if opts.save:
        from pipeline.bench.report import save_result

        save_result(record, opts.save)


def parser(prog: str) -> argparse.ArgumentParser:
    from pipeline.bench.args import OneLineParser

    p = OneLineParser(prog=f"{prog} --look", description="The look of a preset at several sizes on the bundled pairs "
                                                    "(structure, style match, seconds), with peer rows.")
    p.add_argument("--look", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--preset", "--config", default="default")
    p.add_argument("--set", action="append", default=[], dest="sets", metavar="KEY=VALUE")
    p.add_argument("--sizes", default="224,256", help="Output sizes (comma list; none: score --peer outputs only)")
    p.add_argument("--pairs", default=",".join(PAIRS), help="CONTENT:STYLE bundled names (comma list)")
    p.add_argument("--iterations", type=int, default=None, help="Evaluations per render (default: the preset's)")
    p.add_argument("--budgets", default=None, help="Also render the first pair at these budgets (comma list) "
                                                   "for the evaluations-to-look measurement")
    p.add_argument("--budget-sizes", default="256", help="Sizes of the budget renders (comma list)")
    p.add_argument("--peer", action="append", default=[], metavar="CONTENT:STYLE:SIZE=FILE:SECONDS[:CPU_SECONDS]",
                   help="Score another tool's output (made beside this run) with the same ruler")
    p.add_argument("--peer-name", default="neural-style-pt (500 iterations, -init image)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--images", default=None, help="Write each render here")
    p.add_argument("--save", default=None, help="JSON record (e.g. benchmarks/results/look/cpu.json)")
    p.add_argument("--markdown", default=None, help="Then re-render this file (BENCHMARKS.md)")
    return p


def main(argv: list[str], prog: str) -> int:
    from pipeline.bench.args import int_list
    from pipeline.bench.look_report import text_table
    from pipeline.errors import NSTError

    try:
        a = parser(prog).parse_args(argv)
        a.sizes = int_list("sizes", a.sizes) if a.sizes != "none" else []  # none: peer rows only
        a.pairs = parse_pairs(a.pairs)
        a.budgets = int_list("budgets", a.budgets) if a.budgets else []
        a.budget_sizes = int_list("budget-sizes", a.budget_sizes) if a.budgets else []
        a.peers = [parse_peer(p) for p in a.peer]
        if a.iterations is not None and a.iterations <= 0:
            raise BadInput(f"iterations must be a positive integer, got {a.iterations}")
        a.command = " ".join([prog, *argv])
        from pipeline.config import build_config

        build_config(preset=a.preset, sets=a.sets)  # a bad preset or --set: one line before any work
        record = run_look(a, progress=lambda m: print(m, file=sys.stderr, flush=True))
        print(text_table(record), flush=True)
        if a.save and a.markdown:
            from pipeline.bench.report import render_benchmarks

            render_benchmarks(Path(a.save).parent.parent if Path(a.save).parent.name == "look" else
                              Path(a.save).parent, a.markdown)
    except NSTError as exc:
        print(f"nst: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0
