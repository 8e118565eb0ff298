"""Runs at scale: the per-shard plan, resume checks, tar input, status without rows, publishable metadata."""

from __future__ import annotations

import json

from dataset_util import TINY, manifest_rows, nst, picture, pictures_and_style, tar_samples, write_tar

from pipeline.errors import EXIT_BAD_INPUT, EXIT_OK, EXIT_RUN_MISMATCH, EXIT_SAMPLES_FAILED


def _png(seed: int, size=(32, 32)) -> bytes:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        return picture(Path(d) / "p.png", size, seed=seed).read_bytes()


def test_old_format_run_is_refused_with_one_line(tmp_path):
    out = tmp_path / "old"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"format": "nst-run-v1", "package_version": "0.3.0", "samples": [],
                                              "shards": []}))
    style = picture(tmp_path / "s.png", seed=1)
    picture(tmp_path / "data" / "a.png", seed=2)
    for args in (["status", out], ["stylize", tmp_path / "data", "--style", style, "--out", out, *TINY]):
        r = nst(*args)
        assert r.returncode == EXIT_RUN_MISMATCH, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "nst-run-v1" in lines[0] and "--overwrite" in lines[0], lines


def test_changed_input_is_detected_on_resume_and_by_the_worker(tmp_path):
    data, style, out = pictures_and_style(tmp_path, 3, "p", style_seed=9)
    r = nst("stylize", data, "--style", style, "--out", out, *TINY)
    assert r.returncode == EXIT_OK, r.stderr[-2000:]
    import hashlib

    rows = {r["source"]: r for r in manifest_rows(out)}
    assert rows["p1.png"]["source_sha256"] == hashlib.sha256((data / "p1.png").read_bytes()).hexdigest()
    # a resume notices the change from size + mtime alone, and names the file
    picture(data / "p1.png", seed=7)
    r = nst("stylize", data, "--style", style, "--out", out, *TINY)
    assert r.returncode == EXIT_RUN_MISMATCH and "1 files differ, e.g. 'p1.png'" in r.stderr, r.stderr
    # a change after planning (between --plan-only and the workers) fails that sample, not the run
    out2 = tmp_path / "run2"
    assert nst("stylize", data, "--style", style, "--out", out2, *TINY, "--plan-only").returncode == EXIT_OK
    from pipeline.config import build_config
    from pipeline.io.reader import read_data
    from pipeline.run.folder.plan import plan_run
    from pipeline.run.execute.options import RunOptions
    from pipeline.run.execute.worker import Worker
    from pipeline.tasks.stylize import StylizeTask

    cfg = build_config(preset="default", overrides={"size": 32, "iterations": 6, "seed": None}, sets=[])
    task = StylizeTask(cfg, read_data(data), [str(style)])
    plan = plan_run(out2, task, 1000)
    picture(data / "p2.png", seed=8)
    Worker(plan, task, RunOptions(out=plan.root, progress=False)).drain()
    got = {r["source"]: r for r in manifest_rows(out2)}
    assert got["p2.png"]["status"] == "failed_io" and "changed since the run was planned" in got["p2.png"]["error"]
    assert got["p0.png"]["status"] == "ok"


def test_webdataset_tars_as_data(tmp_path):
    wds = tmp_path / "wds"
    wds.mkdir()
    write_tar(wds / "00000.tar", [("000000001.png", _png(1)), ("000000001.json", b'{"url": "http://a"}'),
                             ("000000001.txt", b"a cat"), ("000000002.png", b"\x89PNG broken"),
                             ("000000002.txt", b"broken")])
    write_tar(wds / "00001.tar", [("000000003.png", _png(3)), ("000000003.cls", b"4")])
    style = picture(tmp_path / "s.png", seed=9)
    out = tmp_path / "run"
    r = nst("stylize", wds / "{00000..00001}.tar", "--style", style, "--out", out, *TINY, "--shard-order", "input")
    assert r.returncode == EXIT_SAMPLES_FAILED, r.stderr[-2000:]
    rows = {r["key"]: r for r in manifest_rows(out)}
    assert set(rows) == {"000000001", "000000002", "000000003"}          # keys from __key__
    assert rows["000000002"]["status"] == "failed_decode"
    assert rows["000000001"]["source"] == "00000.tar#000000001.png"
    samples = tar_samples(out)
    assert set(samples) == {"000000001", "000000003"}
    assert samples["000000001"]["txt"] == b"a cat" and samples["000000003"]["cls"] == b"4"
    assert json.loads(samples["000000001"]["json"])["source_json"] == {"url": "http://a"}
    assert nst("verify", out).returncode == EXIT_OK
    # the same shards through a wids shardindex.json plan the same samples
    (wds / "shardindex.json").write_text(json.dumps({"shardlist": [{"url": "00000.tar"}, {"url": "00001.tar"}]}))
    r = nst("stylize", wds / "shardindex.json", "--style", style, "--out", tmp_path / "idx", *TINY, "--plan-only")
    assert r.returncode == EXIT_OK and "3 samples" in r.stdout


def test_status_reads_no_rows_of_committed_shards(tmp_path):
    data, style, out = pictures_and_style(tmp_path, 12, "p", style_seed=99)
    r = nst("stylize", data, "--style", style, "--out", out, *TINY, "--shard-size", "1")
    assert r.returncode == EXIT_OK, r.stderr[-2000:]
    from pipeline.run.folder import plan_samples as sample_files
    from pipeline.run.views import shard_state
    from pipeline.run.folder.plan import load_run
    from pipeline.run.views.status import summarize

    sample_files.READS.clear()
    shard_state.MANIFEST_READS.clear()
    summary = summarize(load_run(out))
    assert summary["ok"] == 12 and summary["shards_done"] == summary["shards_total"] == 12 and summary["complete"]
    assert summary["images_per_hour"] is not None
    assert sum(sample_files.READS.values()) == 0 and sum(shard_state.MANIFEST_READS.values()) == 0


def test_class_folder_tree_publishes_relative_sources_labels_and_exports(tmp_path):
    data = tmp_path / "train"
    for i, rel in enumerate(["n01440764/a.JPEG", "n01440764/b c.png", "n02102040/x.png"]):
        picture(data / rel, seed=i)
    style = picture(tmp_path / "s.png", seed=9)
    out = tmp_path / "run"
    r = nst("stylize", data, "--style", style, "--out", out, *TINY, "--label-from", "parent", "--key-from", "path")
    assert r.returncode == EXIT_OK, r.stderr[-2000:]
    assert json.loads((out / "classes.json").read_text()) == {"n01440764": 0, "n02102040": 1}
    run = json.loads((out / "run.json").read_text())
    assert run["data_root"] == str(data.resolve())
    samples = tar_samples(out)
    assert set(samples) == {"n01440764_a", "n01440764_b_c", "n02102040_x"}    # sanitised relative paths
    rec = json.loads(samples["n01440764_b_c"]["json"])
    assert rec["source"] == "n01440764/b c.png" and rec["label"] == "n01440764" and rec["class"] == 0
    assert samples["n02102040_x"]["cls"] == b"1"
    to = tmp_path / "export"
    r = nst("export", out, "--to", to, "--format", "folder")
    assert r.returncode == EXIT_OK and "3 images written" in r.stdout, r.stderr
    assert sorted(p.relative_to(to).as_posix() for p in to.rglob("*.png")) == [
        "n01440764/a.png", "n01440764/b c.png", "n02102040/x.png"]
    r = nst("export", out, "--to", to)  # resumable: nothing to write again
    assert r.returncode == EXIT_OK and "0 images written, 3 already there" in r.stdout
    r = nst("export", out, "--to", to, "--format", "zip")
    assert r.returncode == EXIT_BAD_INPUT and r.stderr.strip().splitlines() == [
        "nst: error: --format must be one of folder, got 'zip'"]


def test_csv_columns_pass_through_and_random_styles_per_image(tmp_path):
    for i in range(2):
        picture(tmp_path / "imgs" / f"{i}.png", seed=i)
    (tmp_path / "d.csv").write_text("path,label,caption\nimgs/0.png,dog,a dog\nimgs/1.png,cat,a cat\n")
    styles = [picture(tmp_path / "st" / f"s{i}.png", seed=10 + i) for i in range(3)]
    out = tmp_path / "run"
    r = nst("stylize", tmp_path / "d.csv", "--style", tmp_path / "st", "--out", out, *TINY,
            "--label-from", "column:label", "--assign", "random", "--styles-per-image", "2")
    assert r.returncode == EXIT_OK, r.stderr[-2000:]
    recs = [json.loads(m["json"]) for _, m in sorted(tar_samples(out).items())]
    assert [(r["source"], r["copy"], r["columns"]["caption"], r["label"]) for r in recs] == [
        ("imgs/0.png", 0, "a dog", "dog"), ("imgs/0.png", 1, "a dog", "dog"),
        ("imgs/1.png", 0, "a cat", "cat"), ("imgs/1.png", 1, "a cat", "cat")]
    assert all(len(r["styles"]) == 1 for r in recs) and len(styles) == 3
    r = nst("stylize", tmp_path / "d.csv", "--style", tmp_path / "st", "--out", tmp_path / "bad", *TINY,
            "--styles-per-image", "2")
    assert r.returncode == EXIT_BAD_INPUT and "needs --assign random" in r.stderr


def test_key_collisions_are_refused_before_anything_is_written(tmp_path):
    data = tmp_path / "data"
    picture(data / "a b.png", seed=1)
    picture(data / "a_b.png", seed=2)
    style = picture(tmp_path / "s.png", seed=9)
    out = tmp_path / "run"
    r = nst("stylize", data, "--style", style, "--out", out, *TINY, "--key-from", "path")
    assert r.returncode == EXIT_BAD_INPUT
    assert r.stderr.strip().splitlines() == [
        "nst: error: two inputs map to the key 'a_b' (samples 0 and 1); use --key-from index"]
    assert not out.exists()


def test_planning_loads_no_torch(tmp_path):
    """`--plan-only` (what a login node runs before sbatch) streams the plan and prints the
    estimate without importing torch, whose import alone is most of a planner's memory."""
    import subprocess
    import sys

    data, style, _ = pictures_and_style(tmp_path, 4, "p", style_seed=9)
    code = ("import sys\nfrom pipeline.cli import main\nsys.argv = ['nst'] + sys.argv[1:]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    print('TORCH', 'torch' in sys.modules, e.code)\n")
    for device in ("auto", "cpu"):
        r = subprocess.run([sys.executable, "-c", code, "stylize", str(data), "--style", str(style), "--out",
                            str(tmp_path / f"run-{device}"), "--size", "32", "--device", device, "--plan-only"],
                           capture_output=True, text=True)
        assert "4 samples in 1 shards" in r.stdout and "estimate" in r.stdout, r.stderr[-2000:]
        assert r.stdout.strip().splitlines()[-1] == "TORCH False 0", r.stdout
