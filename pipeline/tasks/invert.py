"""The dataset Task for `nst invert`: one reconstruction per layer plus a comparison sheet."""

from __future__ import annotations

import functools

from PIL import Image

from pipeline.io.images import encode_image
from pipeline.io.sheets import contact_sheet
from pipeline.methods.invert import psnr, reconstruct
from pipeline.pixels import to_pil, to_tensor
from pipeline.run.task import Sample
from pipeline.tasks.base import PerImageTask, check_pixels


class InvertTask(PerImageTask):
    """Members: {layer}.{fmt} per layer, sheet.{fmt} (original then shallow → deep), json."""

    name = "invert"
    shard_prefix = "inverted"

    def produce_image(self, original, sample: Sample, fmt: str):
        pixels = to_tensor(original)
        members, recons, losses, scores = {}, [], {}, {}
        evaluations = 0
        for layer in self.cfg.invert_layers:
            out, result = reconstruct(self.backbone, self.cfg, pixels, layer, sample.seed)
            check_pixels(out)
            img = to_pil(out)
            members[f"{layer}.{fmt}"] = functools.partial(encode_image, img, fmt)  # in the writer thread
            recons.append((layer, img))
            losses[layer] = result.losses[0]
            scores[layer] = round(psnr(out.cpu(), pixels), 3)
            evaluations += result.evaluations
        members[f"sheet.{fmt}"] = lambda: encode_image(comparison_sheet(original, recons), fmt)
        meta = {"losses": losses, "psnr": scores, "iterations": evaluations, "size": list(original.size)}
        return members, meta


def comparison_sheet(original: Image.Image, recons: list[tuple[str, Image.Image]]) -> Image.Image:
    """Original then reconstructions from shallow to deep, side by side, each labelled."""
    return contact_sheet([("original", original)] + recons, columns=1 + len(recons))
