"""webdataset tars as DATA: shard discovery, sample listing by __key__, reads by offset."""

from __future__ import annotations

import json

import pytest

from dataset_util import write_tar

from pipeline.errors import BadInput
from pipeline.io.tar_input import expand_braces, is_tar_data, list_samples, read_range, shard_paths


def test_braces_expand_ranges_with_padding_and_lists():
    assert expand_braces("d/{000..002}.tar") == ["d/000.tar", "d/001.tar", "d/002.tar"]
    assert expand_braces("{a,b}-{1..2}") == ["a-1", "a-2", "b-1", "b-2"]
    with pytest.raises(BadInput, match="backwards"):
        expand_braces("x{5..1}")


def test_samples_grouped_by_key_with_offsets_and_passthrough(tmp_path):
    t = write_tar(tmp_path / "00000.tar", [("a/x1.jpg", b"IMG1"), ("a/x1.json", b'{"c": 1}'), ("a/x1.cls", b"7"),
                                       ("x2.png", b"IMG22"), ("x2.txt", b"caption"), ("x3.json", b"{}")])
    samples = list(list_samples(t))
    assert [s.key for s in samples] == ["a/x1", "x2"]           # x3 has no image: not a sample
    a, b = samples
    assert read_range(t, a.offset, a.length) == b"IMG1"
    assert read_range(t, b.offset, b.length) == b"IMG22"
    assert read_range(t, *a.passthrough["json"]) == b'{"c": 1}' and read_range(t, *a.passthrough["cls"]) == b"7"
    assert set(b.passthrough) == {"txt"}


def test_truncated_tar_read_is_an_error(tmp_path):
    t = write_tar(tmp_path / "0.tar", [("k.png", b"x" * 2000)])
    s = next(list_samples(t))
    (tmp_path / "cut.tar").write_bytes(t.read_bytes()[: s.offset + 100])
    with pytest.raises(OSError, match="truncated"):
        read_range(tmp_path / "cut.tar", s.offset, s.length)


def test_shard_discovery_dir_pattern_and_shardindex(tmp_path):
    d = tmp_path / "wds"
    d.mkdir()
    for i in range(3):
        write_tar(d / f"{i:05d}.tar", [(f"{i}.png", b"p")])
    assert shard_paths(str(d)) == (d.resolve(), ["00000.tar", "00001.tar", "00002.tar"])
    root, rel = shard_paths(str(d / "{00001..00002}.tar"))
    assert rel == ["00001.tar", "00002.tar"] and root == d.resolve()
    (d / "shardindex.json").write_text(json.dumps({"shardlist": [{"url": "00002.tar"}, {"url": "00000.tar"}]}))
    assert shard_paths(str(d / "shardindex.json"))[1] == ["00002.tar", "00000.tar"]
    assert is_tar_data(str(d)) and is_tar_data(str(d / "{00001..00002}.tar"))
    with pytest.raises(BadInput, match="not found"):
        shard_paths(str(d / "{00001..00009}.tar"))
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(BadInput, match="shard index"):
        shard_paths(str(tmp_path / "bad.json"))


def test_damaged_header_is_bad_input(tmp_path):
    t = tmp_path / "bad.tar"
    t.write_bytes(b"not a tar at all" * 64)
    with pytest.raises(BadInput, match="cannot be listed"):
        list(list_samples(t))


def test_fast_listing_matches_tarfile_also_with_pax_headers(tmp_path):
    import tarfile

    from pipeline.io.tar_input import members_of

    long = "d/" + "n" * 120 + ".png"  # longer than ustar's 100 bytes: a pax header
    for fmt in (tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        path = tmp_path / f"{fmt}.tar"
        names = [("a.png", b"x" * 700), ("a.json", b"{}")]
        if fmt != tarfile.USTAR_FORMAT:
            names.append((long, b"y" * 3))
        names.append(("z/b.png", b"z"))
        import io

        with tarfile.open(path, "w", format=fmt) as tf:
            for name, data in names:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        with tarfile.open(path) as tf:
            want = [(m.name, m.offset_data, m.size) for m in tf if m.isfile()]
        assert list(members_of(path)) == want
