"""DATA formats and style files as the reader lists them, on real files."""

from __future__ import annotations

import os

import pytest

from dataset_util import picture
from pipeline.errors import BadInput
from pipeline.io.reader import InputRow, read_data, read_styles


def test_directory_is_recursive_sorted_and_case_insensitive(tmp_path):
    for name in ("b.JPG", "a.png", "sub/c.Png", "sub/deeper/d.webp", ".hidden/e.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "readme.txt").write_text("no")
    rows = read_data(tmp_path)
    assert [os.path.relpath(r.path, tmp_path) for r in rows] == ["a.png", "b.JPG", "sub/c.Png", "sub/deeper/d.webp"]


def test_text_list_resolves_relative_to_the_list(tmp_path):
    (tmp_path / "l.txt").write_text("# inputs\nimgs/x.png\n\n/abs/y.jpg\n")
    assert list(read_data(tmp_path / "l.txt")) == [InputRow(str(tmp_path / "imgs/x.png"), rel="imgs/x.png"),
                                                   InputRow("/abs/y.jpg", rel="/abs/y.jpg")]


def test_csv_with_style_and_key_columns(tmp_path):
    (tmp_path / "d.csv").write_text("path,style,key\nx.png,s.png,cat-1\ny.png,,\n")
    assert list(read_data(tmp_path / "d.csv")) == [
        InputRow(str(tmp_path / "x.png"), str(tmp_path / "s.png"), "cat-1", "x.png"),
        InputRow(str(tmp_path / "y.png"), rel="y.png")]
    (tmp_path / "bad.csv").write_text("file\nx.png\n")
    with pytest.raises(BadInput, match="no 'path' column"):
        list(read_data(tmp_path / "bad.csv"))


def test_jsonl_with_optional_columns_and_errors(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"path": "x.png", "key": "k"}\n\n{"path": "/y.png", "style": "s.png"}\n')
    assert list(read_data(tmp_path / "d.jsonl")) == [
        InputRow(str(tmp_path / "x.png"), None, "k", "x.png"), InputRow("/y.png", str(tmp_path / "s.png"), rel="/y.png")]
    (tmp_path / "e.jsonl").write_text('{"path": "x.png"}\n{"style": "s.png"}\n')
    with pytest.raises(BadInput, match="line 2: missing or empty 'path'"):
        list(read_data(tmp_path / "e.jsonl"))
    with pytest.raises(BadInput, match="DATA not found"):
        read_data(tmp_path / "nope")
    (tmp_path / "x.yaml").write_text("a: 1")
    with pytest.raises(BadInput, match="not a directory, .txt, .csv, .jsonl"):
        read_data(tmp_path / "x.yaml")


def test_styles_from_files_and_directories(tmp_path):
    picture(tmp_path / "st" / "b.png")
    picture(tmp_path / "st" / "a.jpg")
    one = picture(tmp_path / "one.png")
    assert read_styles([one, tmp_path / "st"]) == [str(one), str(tmp_path / "st/a.jpg"), str(tmp_path / "st/b.png")]
    with pytest.raises(BadInput, match="style not found"):
        read_styles([tmp_path / "missing.png"])
