"""The crash sweep's machinery: enumerate every durable call of a small real run, fault each one,
resume, and check the run ends exactly once.

A *point* is the N-th call of one kind (write, fsync, rename, link, unlink, mkdir, create: an
open with O_CREAT) that one process (rank) makes on a path inside the folder under test. The
points come from a traced clean run (faultshim.c in count mode, loaded with LD_PRELOAD); a fault
at a point is SIGKILL (kill), that call failing with EIO or ENOSPC, or a power cut (cut: SIGKILL
to every process of the run, then every file cut back to what was fsynced, LazyFS's model). After
each fault the same command runs again with no fault, and the result must be the clean run's,
sample for sample.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
NST = str(Path(sys.executable).with_name("nst"))
ENV = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
KINDS = ("write", "fsync", "rename", "link", "unlink", "mkdir", "create")
# what each fault applies to, and the exit status its one line must carry (pipeline/errors.py)
FAULTS = {"kill": KINDS, "EIO": ("fsync", "write"), "ENOSPC": ("write",), "cut": KINDS}
EXPECTED_EXIT = {"EIO": 8, "ENOSPC": 6}
TIMEOUT = 240  # seconds a faulted run may take before it counts as a hang


def build_shim(dest: Path) -> Path:
    """Compile faultshim.c into dest (gcc, as any Debian build machine has)."""
    so = dest / "faultshim.so"
    if not so.exists():
        subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(so), str(HERE / "faultshim.c"), "-ldl"],
                       check=True, capture_output=True, text=True)
    return so


@dataclass(frozen=True)
class Point:
    scenario: str
    rank: str
    kind: str
    n: int
    path: str  # relative to the folder under test, for the report

    def label(self) -> str:
        return f"{self.scenario}:r{self.rank}:{self.kind}#{self.n}({self.path})"


@dataclass
class Scenario:
    """A command whose calls under `root(dir)` are swept; `prepare(dir)` sets up the state it starts from."""

    name: str
    argv: callable  # dir -> list[str]
    root: callable  # dir -> Path (the folder whose calls count)
    check: callable  # (dir, reference_dir) -> list[str] problems after a clean resume
    reader_check: callable  # dir -> list[str] problems a reader would see mid-way
    prepare: callable = lambda d: None
    ok_exit: int = 0  # the exit status of a clean run (`nst slurm-requeue`: 75, requeued)


def run_cmd(argv: list[str], env: dict, timeout: float = TIMEOUT) -> tuple[int | None, str]:
    """(exit status or None on a hang, stderr); a hang kills the whole process group."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        code = None
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # a rank left behind by a killed sibling
    except ProcessLookupError:
        pass
    return code, err


def trace(scenario: Scenario, d: Path, shim: Path) -> tuple[list[Point], int]:
    """Every durable call of one clean run of the scenario in folder d, in call order per rank."""
    scenario.prepare(d)
    log = d.parent / f"{d.name}.calls"
    env = {**ENV, "LD_PRELOAD": str(shim), "CRASH_ROOT": str(scenario.root(d)), "CRASH_LOG": str(log)}
    code, err = run_cmd(scenario.argv(d), env)
    assert code == scenario.ok_exit, f"clean traced run of {scenario.name} failed ({code}): {err[-2000:]}"
    points = []
    for line in log.read_text().splitlines():
        rank, kind, n, path = line.split(" ", 3)
        points.append(Point(scenario.name, rank, kind, int(n), os.path.relpath(path, scenario.root(d))))
    return points, code


def representative(points: list[Point], every_write: bool = False) -> list[Point]:
    """The points to fault: all of them, except that a run of consecutive writes to one file
    (a Parquet file is ~50 small writes) keeps its first and last (the ones in between leave the
    same state: a temporary file with fewer bytes), unless every_write."""
    if every_write:
        return list(points)
    keep, by_rank = [], {}
    for p in points:
        by_rank.setdefault(p.rank, []).append(p)
    for seq in by_rank.values():
        for i, p in enumerate(seq):
            if p.kind != "write":
                keep.append(p)
                continue
            prev = seq[i - 1] if i else None
            nxt = seq[i + 1] if i + 1 < len(seq) else None
            same_prev = prev is not None and prev.kind == "write" and prev.path == p.path
            same_next = nxt is not None and nxt.kind == "write" and nxt.path == p.path
            if not (same_prev and same_next):
                keep.append(p)
    return keep


def cases(points: list[Point], faults: list[str] | None = None) -> list[tuple[Point, str]]:
    """(point, fault) for every fault (of `faults`, None: all) that applies to the point's kind."""
    return [(p, fault) for p in points for fault, kinds in FAULTS.items()
            if p.kind in kinds and (faults is None or fault in faults)]


def sample(all_cases: list[tuple[Point, str]], n: int, seed: int) -> list[tuple[Point, str]]:
    """A fixed seeded sample that keeps every fault and every kind represented."""
    rng = random.Random(seed)
    by_group: dict[tuple, list] = {}
    for c in all_cases:
        by_group.setdefault((c[0].scenario, c[0].kind, c[1]), []).append(c)
    chosen = [rng.choice(v) for _, v in sorted(by_group.items())]
    if n < len(chosen):
        chosen = rng.sample(chosen, n)
    rest = [c for c in all_cases if c not in chosen]
    chosen += rng.sample(rest, max(0, min(len(rest), n - len(chosen))))
    return chosen


@dataclass
class Outcome:
    point: Point
    fault: str
    landed: bool
    problems: list[str]
    seconds: float
    elsewhere: str | None = None  # landed at another file than the traced point's: the count drifted


def shape(path: str) -> str:
    """A path with its run-specific parts (pids, times, random hex of temporaries) blanked, so the
    traced run's point and a faulted run's call compare."""
    import re

    return re.sub(r"[0-9a-f]{12}|\d+", "#", path)


def one_case(scenario: Scenario, point: Point, fault: str, d: Path, reference: Path, shim: Path) -> Outcome:
    """Fault one point, check what a reader sees, resume, check the result against the clean run."""
    t0 = time.time()
    scenario.prepare(d)
    synclog = d.parent / f"{d.name}.synced" if fault == "cut" else None
    code, err, fired_at = fault_run(scenario.argv(d), scenario.root(d), shim, point.kind, fault, point.n,
                                    rank=point.rank, synclog=synclog)
    landed = fired_at is not None
    at = os.path.relpath(fired_at, scenario.root(d)) if landed else None
    elsewhere = at if landed and shape(at) != shape(point.path) else None
    problems: list[str] = []
    if landed and synclog:
        cut(scenario.root(d), synclog)
    if code is None:
        problems.append(f"the faulted run hung (> {TIMEOUT} s): {err.strip()[-300:]}")
    elif landed and fault in EXPECTED_EXIT:
        lines = [l for l in err.splitlines() if l.strip()]
        if "Traceback" in err:
            problems.append(f"traceback on {fault}: {err.strip()[-600:]}")
        elif code != EXPECTED_EXIT[fault]:
            problems.append(f"{fault} gave exit {code}, want {EXPECTED_EXIT[fault]}: {err.strip()[-300:]}")
        elif len([l for l in lines if l.startswith("nst: error:")]) != 1:
            problems.append(f"{fault}: not one error line: {err.strip()[-300:]}")
    if landed:
        problems += [f"mid-way: {p}" for p in scenario.reader_check(d)]
    code, err = run_cmd(scenario.argv(d), ENV)
    if code != scenario.ok_exit:
        problems.append(f"resume exit {code}: {err.strip()[-600:]}")
    else:
        problems += scenario.check(d, reference)
    if not problems:
        shutil.rmtree(d, ignore_errors=True)
    return Outcome(point, fault, landed, problems, time.time() - t0, elsewhere)


def cut(root: Path, synclog: Path) -> tuple[int, int]:
    """Drop what a power cut would lose: every regular file under root that the run wrote is cut
    back to its size at its last fsync (to nothing if it was never fsynced since it was created).

    The model is LazyFS's default: un-fsynced file data is lost, names (rename, link, unlink,
    mkdir) are kept. It is exact for files written by appending, which is how this project writes
    every file (temporaries then rename; tars and journals appended). Returns (files cut, bytes)."""
    dirty: set[int] = set()
    synced: dict[int, int] = {}
    for line in synclog.read_text().splitlines() if synclog.exists() else []:
        tag, ino, *size = line.split()
        if tag == "W":
            dirty.add(int(ino))
        elif tag == "S":
            synced[int(ino)] = int(size[0])
        elif tag == "C":  # opened empty (created or truncated): nothing of it is durable yet
            synced[int(ino)] = 0
    files = dropped = 0
    for p in root.rglob("*") if root.exists() else []:
        st = p.lstat()
        keep = synced.get(st.st_ino, 0)
        if not p.is_symlink() and p.is_file() and st.st_ino in dirty and st.st_size > keep:
            os.truncate(p, keep)
            files, dropped = files + 1, dropped + st.st_size - keep
    return files, dropped


# -- checks on a stylize run -------------------------------------------------------------------------

def members(out: Path) -> dict[str, bytes]:
    """name -> bytes of every member of every committed tar; JSON members without `seconds` (wall
    time, the one field a run cannot repeat). Asserts no member twice (a duplicated sample)."""
    found: dict[str, bytes] = {}
    for t in sorted((out / "shards").glob("*.tar")):
        with tarfile.open(t) as tf:
            for m in tf:
                assert m.name not in found, f"{m.name} twice"
                data = tf.extractfile(m).read()
                if m.name.endswith(".json"):
                    rec = json.loads(data)
                    rec.pop("seconds", None)
                    data = json.dumps(rec, sort_keys=True).encode()
                found[m.name] = data
    return found


def statuses(out: Path) -> dict[str, str]:
    rows: dict[str, str] = {}
    for m in sorted((out / "manifests").glob("*.jsonl")):
        for line in m.read_text().splitlines():
            r = json.loads(line)
            assert r["key"] not in rows, f"key {r['key']} has two manifest rows"
            rows[r["key"]] = r["status"]
    return rows


def committed_readable(out: Path) -> list[str]:
    """What a reader sees mid-way: every commit record present matches its tar and manifest
    (nothing half-written is published), and webdataset reads each committed tar."""
    from pipeline.io.shards import ShardPaths, commit_holds

    problems = []
    for rec in sorted((out / "commits").glob("*.json")) if (out / "commits").exists() else []:
        _, problem = commit_holds(ShardPaths(out, rec.stem), full=True)
        if problem:
            problems.append(f"{rec.stem}: {problem}")
        else:
            problems += webdataset_problems([out / "shards" / f"{rec.stem}.tar"], None)
    return problems


def webdataset_problems(tars: list[Path], want: set[str] | None) -> list[str]:
    import webdataset as wds

    keys = [s["__key__"] for s in wds.WebDataset([str(t) for t in tars], shardshuffle=False)]
    if len(keys) != len(set(keys)):
        return [f"webdataset reads a key twice: {sorted(k for k, c in Counter(keys).items() if c > 1)}"]
    if want is not None and set(keys) != want:
        return [f"webdataset reads {sorted(keys)}, want {sorted(want)}"]
    return []


def check_stylize(out: Path, reference: Path) -> list[str]:
    """nst verify; each planned key once in one tar and one manifest row, with the clean run's
    status; webdataset and wids read every sample; members byte-identical to the clean run's."""
    from pipeline.run.folder.plan import load_run
    from pipeline.run.views.verify import verify_run

    problems = [f"verify: {p}" for p in verify_run(load_run(out))]
    try:
        got, want = statuses(out), statuses(reference)
        if got != want:
            problems.append(f"manifest statuses {got} != clean run {want}")
        mine, theirs = members(out), members(reference)
    except AssertionError as exc:
        return problems + [str(exc)]
    if mine != theirs:
        diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        problems.append(f"members differ from the clean run: {diff[:6]}")
    ok = {k for k, s in want.items() if s == "ok"}
    problems += webdataset_problems(sorted((out / "shards").glob("*.tar")), ok)
    try:
        import warnings

        import wids

        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # wids prints its index
            warnings.simplefilter("ignore")
            ds = wids.ShardListDataset(str(out / "shardindex.json"), cache_dir=str(out.parent / f"{out.name}.wids"))
            wkeys = sorted(ds[i]["__key__"] for i in range(len(ds)))
        if wkeys != sorted(ok):
            problems.append(f"wids reads {wkeys}, want {sorted(ok)}")
    except Exception as exc:  # a broken index is what this check is for
        problems.append(f"wids cannot read shardindex.json: {exc!r}")
    return problems


# -- checks on an export -----------------------------------------------------------------------------

def tree(d: Path) -> dict[str, str]:
    """relative path -> sha256 of every file (hidden temporaries included: none may be left)."""
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file()}


def check_export(to: Path, reference: Path) -> list[str]:
    got, want = tree(to), tree(reference)
    if got == want:
        return []
    diff = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
    return [f"export tree differs from a clean export: {diff[:6]}"]


def export_reader(to: Path) -> list[str]:
    """Mid-way, every exported image that exists is whole (a reader never sees a torn file)."""
    problems = []
    for p in sorted(to.rglob("*.png")) if to.exists() else []:
        if p.name.startswith("."):
            continue
        problems += torn(p, p.name)
    return problems


def torn(path: Path, label: str) -> list[str]:
    """[] if the picture at `path` decodes whole, else the one problem, named by `label`."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
    except Exception as exc:
        return [f"{label} is torn: {exc}"]
    return []


# -- checks on a report ------------------------------------------------------------------------------

def report_reader(run: Path) -> list[str]:
    """Mid-way, the page is the old one or the new one, whole, and every picture it links is whole."""
    import re

    index = run / "report" / "index.html"
    try:
        page = index.read_text()
    except FileNotFoundError:
        return ["no index.html: the old page is gone"]
    if not page.rstrip().endswith("</html>"):
        return ["index.html is torn"]
    problems = []
    for link in sorted(set(re.findall(r'(?:src|href)="((?:thumbs|full|plots)/[^"]+)"', page))):
        p = run / "report" / link
        if not p.exists():
            problems.append(f"index.html links {link}, which is missing")
        elif p.suffix in (".jpg", ".png"):
            problems += torn(p, link)
    return problems


def check_report(run: Path, reference: Path) -> list[str]:
    """After a clean rerun: the new page (4 samples), whole, with its pictures, and no temporaries."""
    problems = report_reader(run)
    left = [str(p.relative_to(run)) for p in (run / "report").rglob(".*.tmp")]
    if left:
        problems.append(f"temporaries left in the report: {left}")
    rec = json.loads((run / "report" / "report.json").read_text())
    if len(rec.get("sampled", [])) != 4:
        problems.append(f"report.json samples {rec.get('sampled')}, want 4")
    return problems


# -- checks on the SLURM requeue record --------------------------------------------------------------

REQUEUE_JOB = "66999999"  # a job id no test cluster reaches (SLURM's default MaxJobId is 67043328)


def whole_json(path: Path) -> tuple[dict | None, list[str]]:
    """(the record or None when absent, [the problem] when the file is torn)."""
    try:
        return json.loads(path.read_text()), []
    except FileNotFoundError:
        return None, []
    except ValueError as exc:
        return None, [f"{path.name} is torn: {exc}"]


def temporaries_left(folder: Path) -> list[str]:
    left = [p.name for p in folder.glob(".*.tmp")]
    return [f"temporaries left in {folder.name}/: {left}"] if left else []


def requeue_reader(run: Path) -> list[str]:
    """Mid-way, the stop record is absent or whole (the old one or the new one)."""
    rec, torn = whole_json(run / "slurm" / f"requeues-{REQUEUE_JOB}.json")
    return torn or ([] if rec is None or "last" in rec else [f"the stop record has no last stop: {rec}"])


def check_requeue(run: Path, reference: Path) -> list[str]:
    """After a clean rerun: the stop recorded as a requeued preemption that saw every sample done,
    no temporaries left in slurm/, and the run itself untouched."""
    problems = requeue_reader(run)
    path = run / "slurm" / f"requeues-{REQUEUE_JOB}.json"
    if not problems:
        rec = json.loads(path.read_text())
        want_done = sum(s == "ok" or s.startswith("failed") for s in statuses(reference).values())
        if rec["last"].get("kind") != "preemption" or not rec["last"].get("requeued") or rec.get("preemptions", 0) < 1:
            problems.append(f"{path.name} does not record a requeued preemption: {rec}")
        if rec.get("done_at_last_stop") != want_done:
            problems.append(f"{path.name} counts {rec.get('done_at_last_stop')} samples done, want {want_done}")
    return problems + temporaries_left(run / "slurm") + check_stylize(run, reference)


def job_reader(run: Path) -> list[str]:
    """Mid-way, slurm/job.json (what every worker runs) is absent or whole."""
    job, torn = whole_json(run / "slurm" / "job.json")
    return torn or ([] if job is None or job.get("argv", [None])[0] == "stylize"
                    else [f"job.json has no stylize command: {job}"])


def check_job(run: Path, reference: Path) -> list[str]:
    """After a clean `nst submit --dry-run`: job.json as the clean one (but for its folder and time),
    the logs folder, and no temporaries in slurm/."""
    problems = job_reader(run)
    if not problems:
        got = json.loads((run / "slurm" / "job.json").read_text())
        want = json.loads((reference / "slurm" / "job.json").read_text())
        got.pop("created"), want.pop("created")
        got["argv"] = [a.replace(str(run), "RUN") for a in got["argv"]]
        want["argv"] = [a.replace(str(reference), "RUN") for a in want["argv"]]
        if got != want:
            problems.append(f"job.json {got} != the clean submit's {want}")
    if not (run / "slurm" / "logs").is_dir():
        problems.append("no slurm/logs folder for the job's logs")
    return problems + temporaries_left(run / "slurm")


def summary(outcomes: list[Outcome]) -> str:
    """Counts by call kind and by fault (landed / failed), and each failure."""
    lines = []
    by = Counter((o.point.scenario, o.point.kind, o.fault) for o in outcomes)
    landed = Counter((o.point.scenario, o.point.kind, o.fault) for o in outcomes if o.landed)
    failed = Counter((o.point.scenario, o.point.kind, o.fault) for o in outcomes if o.problems)
    lines.append(f"{'scenario':10} {'kind':7} {'fault':7} {'points':>6} {'landed':>6} {'failed':>6}")
    for key in sorted(by):
        lines.append(f"{key[0]:10} {key[1]:7} {key[2]:7} {by[key]:6d} {landed[key]:6d} {failed[key]:6d}")
    for fault in FAULTS:
        n = sum(v for k, v in by.items() if k[2] == fault)
        lines.append(f"total {fault}: {n} points, {sum(v for k, v in failed.items() if k[2] == fault)} failed")
    drifted = [o for o in outcomes if o.elsewhere]
    lines.append(f"landed at another file than traced (count drift): {len(drifted)}")
    lines += [f"  {o.point.label()} {o.fault}: at {o.elsewhere}" for o in drifted]
    for o in outcomes:
        for p in o.problems:
            lines.append(f"FAIL {o.point.label()} {o.fault}: {p}")
    return "\n".join(lines)


def fault_run(argv: list[str], root: Path, shim: Path, kind: str, action: str, n: int = 1,
              suffix: str | None = None, rank: str = "0", contains: str | None = None,
              timeout: float = TIMEOUT, synclog: Path | None = None) -> tuple[int | None, str, str | None]:
    """(exit status, stderr, the path the fault landed at or None) of one run with one named fault: the n-th
    `kind` call under root whose path ends with `suffix` and contains `contains` (None: any).
    With synclog, the shim records what was fsynced there (for `cut`)."""
    fired = root.parent / f"{root.name}.fired"
    fired.unlink(missing_ok=True)
    env = {**ENV, "LD_PRELOAD": str(shim), "CRASH_ROOT": str(root), "CRASH_KIND": kind, "CRASH_N": str(n),
           "CRASH_RANK": rank, "CRASH_ACTION": action, "CRASH_FIRED": str(fired), "CRASH_SUFFIX": suffix or "",
           "CRASH_CONTAINS": contains or "", **({"CRASH_SYNCLOG": str(synclog)} if synclog else {})}
    code, err = run_cmd(argv, env, timeout)
    try:
        return code, err, fired.read_text().split(" ", 3)[3].strip()
    except (FileNotFoundError, IndexError):
        return code, err, None


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("nst: error:")]
