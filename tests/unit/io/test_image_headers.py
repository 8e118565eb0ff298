"""Image sizes read from headers alone (planning), with EXIF rotation."""

from __future__ import annotations




def test_image_size_reads_the_header_with_exif_rotation(tmp_path):
    from PIL import Image

    from pipeline.io.images import image_size, load_image

    img = Image.new("RGB", (40, 24), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° on display
    img.save(tmp_path / "r.jpg", exif=exif.tobytes())
    img.save(tmp_path / "p.png")
    assert image_size(tmp_path / "r.jpg") == (24, 40) == load_image(tmp_path / "r.jpg").size
    assert image_size(tmp_path / "p.png") == (40, 24)
    img.save(tmp_path / "rp.png", exif=exif.tobytes())  # a PNG's eXIf chunk, before its pixels
    assert image_size(tmp_path / "rp.png") == (24, 40) == load_image(tmp_path / "rp.png").size
    whole = (tmp_path / "p.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 2])  # header intact, pixels cut off
    assert image_size(tmp_path / "cut.png") == (40, 24)
    (tmp_path / "bad.png").write_bytes(b"junk")
    assert image_size(tmp_path / "bad.png") is None and image_size(tmp_path / "missing.png") is None
