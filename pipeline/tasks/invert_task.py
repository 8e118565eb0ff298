"""The dataset Task for `nst invert`: one reconstruction per layer plus a comparison sheet."""

from __future__ import annotations

from pipeline.io.images import encode_image, to_pil, to_tensor
from pipeline.run.task import Planned, Sample
from pipeline.tasks.invert import InvertConfig, comparison_sheet, psnr, reconstruct
from pipeline.tasks.method_task import MethodTask, check_pixels


class InvertTask(MethodTask):
    """Members: {layer}.{fmt} per layer, sheet.{fmt} (original then shallow → deep), json."""

    name = "invert"
    shard_prefix = "inverted"

    def __init__(self, cfg: InvertConfig, rows):
        super().__init__(cfg)
        self.rows = rows

    def plan(self) -> list[Planned]:
        return [Planned(r.path, (), {"source_key": r.key} if r.key else {}) for r in self.rows]

    def produce(self, sample: Sample):
        fmt = self.cfg.output_format
        original = self.sized(sample.source)
        pixels = to_tensor(original)
        members, recons, losses, scores = {}, [], {}, {}
        evaluations = 0
        for layer in self.cfg.invert_layers:
            out, result = reconstruct(self.backbone, self.cfg, pixels, layer, sample.seed)
            check_pixels(out)
            img = to_pil(out)
            members[f"{layer}.{fmt}"] = encode_image(img, fmt)
            recons.append((layer, img))
            losses[layer] = result.losses[0]
            scores[layer] = round(psnr(out.cpu(), pixels), 3)
            evaluations += result.evaluations
        members[f"sheet.{fmt}"] = encode_image(comparison_sheet(original, recons), fmt)
        meta = {"losses": losses, "psnr": scores, "iterations": evaluations, "size": list(original.size)}
        return members, meta
