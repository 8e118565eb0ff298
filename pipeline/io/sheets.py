"""Contact sheets: labelled images in a grid, the one drawing every method's overview uses.

invert puts the original beside its reconstructions on one row; imagine lays a
run's classes or channels out as a grid. Cells keep their own size when they
agree, otherwise they are fitted into the largest cell, centred on white.
"""

from __future__ import annotations

import math

from PIL import Image, ImageDraw

LABEL_H = 14


def contact_sheet(cells: list[tuple[str, Image.Image]], columns: int | None = None, cell: int | None = None,
                  label_h: int = LABEL_H, gap: int = 0, title: str = "") -> Image.Image:
    """A grid of labelled images, row by row. cell: the longest side of each thumbnail
    (None keeps the images' own size); columns: cells per row (None: about square)."""
    if not cells:
        raise ValueError("a contact sheet needs at least one image")
    thumbs = []
    for label, img in cells:
        img = img.convert("RGB")
        if cell is not None and max(img.size) != cell:
            s = cell / max(img.size)
            img = img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.LANCZOS)
        thumbs.append((label, img))
    cw = max(t.width for _, t in thumbs)
    ch = max(t.height for _, t in thumbs)
    cols = columns or math.ceil(math.sqrt(len(thumbs)))
    rows = math.ceil(len(thumbs) / cols)
    top = label_h if title else 0
    sheet = Image.new("RGB", (cols * cw + (cols - 1) * gap, top + rows * (ch + label_h + gap) - gap),
                      (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((2, 1), title, fill=(0, 0, 0))
    for i, (label, img) in enumerate(thumbs):
        x = (i % cols) * (cw + gap)
        y = top + (i // cols) * (ch + label_h + gap)
        sheet.paste(img, (x + (cw - img.width) // 2, y + label_h + (ch - img.height) // 2))
        draw.text((x + 2, y + 1), label, fill=(0, 0, 0))
    return sheet
