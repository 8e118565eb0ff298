"""Decoding, resizing and encoding images.

Every input becomes 8-bit RGB: grayscale, palette, CMYK, alpha (composited on
white) and 16-bit images are converted, and EXIF orientation is applied.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pipeline.errors import BadInput, DecodeError, InputNotFound, MissingInput
from pipeline.io.atomic import atomic_write_bytes


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm", ".pgm")


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode as 8-bit RGB (16-bit and float scaled, palettes expanded, alpha on white)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.clip(arr * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def decode_image(data: bytes, name: str = "<bytes>") -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
        img = ImageOps.exif_transpose(img)
        return to_rgb(img)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DecodeError(f"cannot decode image {name!r}: {exc}".splitlines()[0])


def read_input(path: str | os.PathLike) -> bytes:
    """The bytes of an input: a file, or a tar member reference (`pipeline.io.inputs.member_ref`),
    read by offset. Raises OSError (FileNotFoundError when it is missing)."""
    from pipeline.io.locations import parse_member_ref, read_range

    ref = parse_member_ref(str(path))
    if ref is not None:
        return read_range(*ref)
    with open(path, "rb") as f:
        return f.read()


def load_image(path: str | os.PathLike) -> Image.Image:
    """Read and decode an image file (or tar member) to RGB, or raise DecodeError naming the path."""
    from pipeline.io.locations import parse_member_ref

    if parse_member_ref(str(path)) is not None:
        try:
            return decode_image(read_input(path), str(path))
        except OSError as exc:
            raise DecodeError(f"cannot read image {str(path)!r}: {exc}") from None
    p = Path(path)
    if not p.exists():
        raise InputNotFound(f"image not found: {str(p)!r}")
    if p.is_dir():
        raise MissingInput(f"expected an image file, got a directory: {str(p)!r}")
    try:
        data = p.read_bytes()
    except FileNotFoundError:  # deleted between the two calls
        raise InputNotFound(f"image not found: {str(p)!r}")
    except OSError as exc:
        raise MissingInput(f"cannot read image {str(p)!r}: {exc.strerror}")
    return decode_image(data, str(p))


def image_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """(width, height) as `load_image` will return it (EXIF rotation applied), read from the
    header without decoding the pixels; None when the file cannot be read as an image."""
    try:
        from pipeline.io.locations import parse_member_ref

        if parse_member_ref(str(path)) is not None:
            path = io.BytesIO(read_input(path))
        with Image.open(path) as img:
            w, h = img.size
            # EXIF as far as the header holds it: img.getexif() would decode a whole PNG
            exif = img.getexif() if img.format == "TIFF" else Image.Exif()
            if img.format != "TIFF" and img.info.get("exif"):
                exif.load(img.info["exif"])
            orientation = exif.get(0x0112, 1)
    except Exception:  # noqa: BLE001 - the decode itself will report the problem
        return None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def encode_image(img: Image.Image, fmt: str = "png") -> bytes:
    buf = io.BytesIO()
    if fmt == "png":
        img.save(buf, format="PNG")
    elif fmt == "jpg":
        img.save(buf, format="JPEG", quality=95)
    elif fmt == "webp":
        img.save(buf, format="WEBP", quality=95)
    else:
        raise BadInput(f"unknown output format {fmt!r}")
    return buf.getvalue()


def save_image(img: Image.Image, path: str | os.PathLike) -> None:
    """Encode by the path's extension and write atomically."""
    p = Path(path)
    ext = p.suffix.lower().lstrip(".")
    fmt = {"jpeg": "jpg"}.get(ext, ext)
    if fmt not in ("png", "jpg", "webp"):
        raise BadInput(f"output must end in .png, .jpg or .webp, got {str(p)!r}")
    atomic_write_bytes(p, encode_image(img, fmt))
