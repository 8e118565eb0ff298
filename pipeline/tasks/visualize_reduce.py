"""`nst visualize`'s reduce step, after every map shard is committed (map: tasks/visualize.py).

A partial top-k per shard, cached in DIR/visualize/partials keyed by the shard's sha256,
merged into DIR/visualize/topk.json; then deconvnet projections, one grid image and one
JSON index per layer. The merge orders by value then global index, so the result does not
depend on the worker count; redrawing (`--set grid_filters=...`) reuses topk.json and the partials.
"""

from __future__ import annotations

import json
import tarfile
from collections import OrderedDict
from pathlib import Path

import torch

from pipeline.errors import NSTError
from pipeline.io.atomic import atomic_write_bytes, atomic_write_text
from pipeline.io.images import encode_image
from pipeline.pixels import to_tensor
from pipeline.io.shards import commit_holds
from pipeline.methods.deconv import forward_with_switches, project_down
from pipeline.methods.visualize import TopK, VisualizeConfig, draw_grid, merge_topk, patch_pair, projection_image
from pipeline.run.folder.plan import RunPlan, load_run
from pipeline.tasks.base import MethodTask

MAXIMA = "maxima.json"  # the map step's member: {layer: {value, y, x}} of one image


def shard_partial(plan: RunPlan, shard: dict, layers: list[str], k: int) -> dict:
    """{layer: TopK} of one committed shard, cached under visualize/partials by the tar's sha256."""
    paths = plan.shard_paths(shard)
    rec, problem = commit_holds(paths)
    if problem is not None:
        raise NSTError(f"shard {shard['name']} is not committed ({problem}); finish the run first")
    cache = plan.root / "visualize" / "partials" / f"{shard['name']}.json"
    want = {"tar_sha256": rec["tar"]["sha256"], "layers": layers, "k": k}
    if cache.exists():
        data = json.loads(cache.read_text())
        if {n: data.get(n) for n in want} == want:
            return {layer: TopK.from_json(t) for layer, t in data["topk"].items()}
    index_of = {s.key: s.index for s in plan.shard_samples(shard)}
    entries: dict[str, list] = {layer: [] for layer in layers}
    with tarfile.open(paths.tar, "r:") as tf:
        for m in tf:
            key, _, ext = m.name.partition(".")
            if ext != MAXIMA:
                continue
            maxima = json.loads(tf.extractfile(m).read())
            for layer in layers:
                entries[layer].append((index_of[key], maxima[layer]))
    topk = {}
    for layer in layers:
        if entries[layer]:
            topk[layer] = merge_topk([TopK.of_samples(entries[layer])], k)
    atomic_write_text(cache, json.dumps({**want, "topk": {l: t.to_json() for l, t in topk.items()}}))
    return topk


def reduce_topk(plan: RunPlan, cfg: VisualizeConfig, progress=None) -> dict:
    """Merge every shard's partial into visualize/topk.json; returns its content."""
    merged: dict[str, TopK] = {}
    for shard in plan.shards:
        for layer, part in shard_partial(plan, shard, cfg.vis_layers, cfg.top_k).items():
            merged[layer] = merge_topk([merged[layer], part], cfg.top_k) if layer in merged else part
        if progress is not None:
            progress.update(1)
    used = sorted({int(i) for t in merged.values() for i in t.index.flatten()})
    wanted = set(used)
    samples = {s.index: s for s in plan.iter_samples() if s.index in wanted}  # streamed: one shard at a time
    data = {
        "layers": {layer: t.to_json() for layer, t in merged.items()},
        "samples": {str(i): {"key": samples[i].key, "source": samples[i].source} for i in used},
        "top_k": cfg.top_k,
        "size": cfg.size,
    }
    atomic_write_text(plan.root / "visualize" / "topk.json", json.dumps(data, sort_keys=True))
    return data


def draw_layers(root: Path, cfg: VisualizeConfig, backbone, topk: dict, progress=None) -> list[Path]:
    """Per layer: deconvnet projections of the drawn filters' top-k, grid image and JSON index."""
    sizer = MethodTask(cfg)  # the same decoding and resizing as the map step
    net, pre, dev = backbone.net, backbone.pre, backbone.device
    images: OrderedDict = OrderedDict()
    forwards: OrderedDict = OrderedDict()

    def image(i: int):
        if i not in images:
            images[i] = sizer.sized(topk["samples"][str(i)]["source"])
            if len(images) > 64:
                images.popitem(last=False)
        return images[i]

    def forward(i: int, layer: str):
        if (i, layer) not in forwards:
            x = pre.to_net(to_tensor(image(i)).to(dev))
            forwards[(i, layer)] = forward_with_switches(net, x, layer)
            if len(forwards) > 16:
                forwards.popitem(last=False)
        return forwards[(i, layer)]

    zero = pre.to_pixels(torch.zeros(1, 3, 1, 1, device=dev))
    written = []
    for layer in cfg.vis_layers:
        if layer not in topk["layers"]:
            continue
        t = TopK.from_json(topk["layers"][layer])
        n = t.value.shape[0] if cfg.grid_filters == 0 else min(cfg.grid_filters, t.value.shape[0])
        rows, index = [], []
        for f in range(n):
            pairs = []
            for r in range(t.value.shape[1]):
                i, y, x, v = int(t.index[f, r]), int(t.y[f, r]), int(t.x[f, r]), float(t.value[f, r])
                sample = topk["samples"][str(i)]
                index.append({"filter": f, "rank": r + 1, "value": v, "index": i, "key": sample["key"],
                              "source": sample["source"], "y": y, "x": x})
                if v <= 0:  # a filter that never fired has nothing to project
                    pairs.append(None)
                    continue
                act, switches, sizes = forward(i, layer)
                one = torch.zeros_like(act)
                one[0, f, y, x] = act[0, f, y, x]
                delta = pre.to_pixels(project_down(net, layer, one, switches, sizes)) - zero
                pairs.append(patch_pair(net, layer, image(i), projection_image(delta[0]), y, x, cfg.cell))
            rows.append((f, pairs))
            if progress is not None:
                progress.update(1)
        title = f"{layer}: top-{cfg.top_k} deconvnet projections | image patches (receptive field)"
        grid = draw_grid(rows, t.value.shape[1], cfg.cell, title)
        out = root / "visualize" / f"{layer}.png"
        atomic_write_bytes(out, encode_image(grid, "png"))
        atomic_write_text(out.with_suffix(".json"), json.dumps(
            {"layer": layer, "filters_drawn": n, "filters": int(t.value.shape[0]), "top_k": cfg.top_k,
             "entries": index}, indent=1))
        written.append(out)
    return written


def reduce_and_draw(root: Path, cfg: VisualizeConfig, device: str, show_progress: bool = True) -> list[Path]:
    """The reduce step of `nst visualize`: merge partial top-k, then draw every layer."""
    from pipeline.models.vgg import Backbone
    from pipeline.progress import bar

    plan = load_run(root)
    progress = bar(len(plan.shards), desc="visualize: merge top-k", unit="shard", disable=not show_progress)
    topk = reduce_topk(plan, cfg, progress)
    progress.close()
    backbone = Backbone(cfg.network, "max", cfg.weights, device)
    total = sum(len(t["value"]) if cfg.grid_filters == 0 else min(cfg.grid_filters, len(t["value"]))
                for t in topk["layers"].values())
    progress = bar(total, desc="visualize: deconvnet projections", unit="filter", disable=not show_progress)
    with torch.no_grad():
        written = draw_layers(root, cfg, backbone, topk, progress)
    progress.close()
    return written
