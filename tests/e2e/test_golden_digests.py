"""Behaviour lock: fixed-seed CPU runs of the CLI give the same bytes as when the digests were stored.

The digests in golden_digests.json were made by this file on the code before the structure move
(issue 15), so a refactor that changes any output byte fails here. A later change that alters a
preset, a loss or an encoder on purpose updates the digest in the same commit:
`NST_GOLDEN_WRITE=1 pytest tests/e2e/test_golden_digests.py` rewrites the file.

What is hashed: every image member of every tar shard (and `nst one`'s image) byte for byte, and
the JSON records with the wall-clock fields removed and paths reduced to their file name (both
differ between checkouts and runs, not between behaviours). Runs use one thread (OMP_NUM_THREADS=1,
--threads 1) on CPU, where bf16 autocast is deterministic run to run.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("golden_digests.json")
NST = str(Path(sys.executable).with_name("nst"))
ENV = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
CONTENT = ROOT / "examples" / "content"
STYLE = ROOT / "examples" / "style" / "great_wave_of_kanagawa.jpg"
VOLATILE = {"seconds", "finished_at", "started_at", "rate", "eta"}


def _listing(out: Path, name: str) -> Path:
    """A one-line .txt DATA list naming one bundled photo (written next to the run directory)."""
    listing = out.with_suffix(".txt")
    listing.parent.mkdir(parents=True, exist_ok=True)
    listing.write_text(f"{CONTENT / name}\n")
    return listing


RUN = ["--device", "cpu", "--threads", "1", "--no-progress", "--seed", "3"]

CASES = {
    "one": lambda out: ["one", CONTENT / "astronaut.jpg", STYLE, "-o", out / "one.png", "--size", 48,
                        "--iterations", 5, "--seed", 1, "--device", "cpu"],
    "stylize": lambda out: ["stylize", CONTENT, "--style", STYLE, "--out", out, "--size", 40, "--iterations", 5,
                            "--shard-size", 2, *RUN],
    "texture": lambda out: ["texture", "--style", STYLE, "--count", 2, "--out", out, "--size", 32,
                            "--iterations", 5, *RUN],
    "invert": lambda out: ["invert", _listing(out, "coffee.jpg"), "--out", out, "--size", 32, "--iterations", 4,
                           "--set", "invert_layers=[block2_conv2,block4_conv2]", *RUN],
    "dream": lambda out: ["dream", _listing(out, "rocket.jpg"), "--out", out, "--size", 40, "--iterations", 3,
                          "--octaves", 2, *RUN],
}


def _scrub(value):
    """The JSON record without what differs between runs or checkouts (timings, absolute paths)."""
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, str) and "/" in value:
        return Path(value).name
    return value


def _digest(name: str, data: bytes) -> str:
    if name.endswith(".json"):
        data = json.dumps(_scrub(json.loads(data)), sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()


def digests(case: str, out: Path) -> dict[str, str]:
    """member name -> sha256, over the case's outputs."""
    args = [str(a) for a in CASES[case](out)]
    r = subprocess.run([NST, *args], capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    if case == "one":
        return {p.name: _digest(p.name, p.read_bytes()) for p in sorted(out.glob("one.*"))}
    found = {}
    for shard in sorted((out / "shards").glob("*.tar")):
        with tarfile.open(shard) as tf:
            for m in tf:
                found[f"{shard.stem}/{m.name}"] = _digest(m.name, tf.extractfile(m).read())
    assert found, f"{case}: no shard members"
    return found


@pytest.mark.parametrize("case", sorted(CASES))
def test_outputs_match_the_stored_digests(case, tmp_path):
    got = digests(case, tmp_path / case)
    if os.environ.get("NST_GOLDEN_WRITE"):
        stored = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
        stored[case] = got
        GOLDEN.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
        return
    assert got == json.loads(GOLDEN.read_text())[case]
