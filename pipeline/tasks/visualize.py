"""`nst visualize` as map-reduce over the dataset pipeline: this is the map step.

Map (the runner's Task, sharded, resumable): each sample's per-filter maxima
become a `{key}.maxima.json` member of its shard. The reduce step (top-9 per
filter, deconvnet projections, grids) runs once every shard is committed:
tasks/visualize_reduce.py.
"""

from __future__ import annotations

import json

from pipeline.pixels import to_tensor
from pipeline.methods.visualize import filter_maxima
from pipeline.run.task import Sample
from pipeline.tasks.visualize_reduce import MAXIMA, reduce_and_draw
from pipeline.tasks.base import PerImageTask



class VisualizeTask(PerImageTask):
    """Map step: members {key}.maxima.json ({layer: {value, y, x}}) and {key}.json."""

    name = "visualize"
    shard_prefix = "maxima"
    presentation_keys = ("grid_filters", "cell")

    def finish(self, root, device: str, show_progress: bool) -> list[str]:
        """The reduce step: merge the per-shard maxima into topk.json and draw the grids."""
        from pipeline.engine.device import resolve_device

        written = reduce_and_draw(root, self.cfg, resolve_device("cuda" if device.startswith("cuda") else device),
                                  show_progress=show_progress)
        return [f"nst visualize: {root / 'visualize' / 'topk.json'}, " + ", ".join(str(p) for p in written)]

    def produce(self, sample: Sample):
        img = self.sized(sample.source)
        x = self.backbone.pre.to_net(to_tensor(img).to(self.backbone.device))
        maxima = filter_maxima(self.backbone.net, x, self.cfg.vis_layers)
        meta = {"size": list(img.size), "layers": {l: len(m["value"]) for l, m in maxima.items()}}
        return {MAXIMA: json.dumps(maxima).encode()}, meta
