"""One test per failure the crash sweep found (docs/reliability.md), each at its named point.

They run with the sweep (`make test-crash`, `make test-crash-sample`; skipped by `make test`) because
they inject their fault with tests/crash/faultshim.c, which needs gcc and LD_PRELOAD.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import crash_harness as h  # noqa: E402
from dataset_util import picture  # noqa: E402

pytestmark = pytest.mark.skipif(os.environ.get("NST_CRASH_TESTS") != "1",
                                reason="crash sweep: run `make test-crash` or `make test-crash-sample`")

RUN = ["--size", "32", "--iterations", "1", "--threads", "1", "--deterministic", "--shard-size", "2",
       "--device", "cpu", "--no-progress", "--set", "batch_size=1"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = tmp_path_factory.mktemp("regress")
    data = base / "data"
    for i in range(4):
        picture(data / f"img{i}.png", (24 + 4 * (i % 2), 24), seed=i)
    style = picture(base / "style.png", seed=9)
    shim = h.build_shim(base)
    ref = base / "ref"
    code, err = h.run_cmd([h.NST, "stylize", str(data), "--style", str(style), "--out", str(ref), *RUN], h.ENV)
    assert code == 0, err
    return {"base": base, "data": data, "style": style, "shim": shim, "ref": ref}


def _stylize(env, out: Path, *extra) -> list[str]:
    return [h.NST, "stylize", str(env["data"]), "--style", str(env["style"]), "--out", str(out), *RUN, *extra]


def _resumes_clean(env, out: Path) -> None:
    code, err = h.run_cmd(_stylize(env, out), h.ENV)
    assert code == 0, err[-2000:]
    assert h.check_stylize(out, env["ref"]) == []


def test_eio_at_a_folder_fsync_fails_the_run_in_one_line(env):
    """fsync_dir swallowed every OSError: EIO at the fsync of shards/ after a tar's rename gave exit 0."""
    out = env["base"] / "eio-shards"
    code, err, landed = h.fault_run(_stylize(env, out), out, env["shim"], "fsync", "EIO", suffix="/shards")
    assert landed
    assert code == 8 and "Traceback" not in err, err[-2000:]
    assert len(h.error_lines(err)) == 1 and "I/O error" in h.error_lines(err)[0], err
    _resumes_clean(env, out)


def test_einval_at_a_folder_fsync_is_tolerated(env):
    """A filesystem that cannot fsync a folder answers EINVAL: the run goes on and succeeds."""
    out = env["base"] / "einval-shards"
    code, err, landed = h.fault_run(_stylize(env, out), out, env["shim"], "fsync", "EINVAL", suffix="/shards")
    assert landed and code == 0, err[-2000:]
    assert h.check_stylize(out, env["ref"]) == []


def test_plan_only_eio_is_one_line_and_exit_8(env):
    """`--plan-only` let an OSError through as a traceback (the run path converted it, plan-only did not)."""
    out = env["base"] / "eio-plan-only"
    code, err, landed = h.fault_run(_stylize(env, out, "--plan-only"), out, env["shim"], "fsync", "EIO",
                                    suffix=f"/{out.name}")
    assert landed
    assert code == 8 and "Traceback" not in err and len(h.error_lines(err)) == 1, err[-2000:]
    code, err = h.run_cmd(_stylize(env, out, "--plan-only"), h.ENV)
    assert code == 0, err
    _resumes_clean(env, out)


def test_kill_while_a_lease_is_written_does_not_block_the_resume(env):
    """A lease was created empty (O_EXCL) and then written: kill -9 in between left an empty lease
    with no pid or host, which the resume could only call stale after the TTL (600 s)."""
    out = env["base"] / "kill-lease"
    code, err, landed = h.fault_run(_stylize(env, out), out, env["shim"], "write", "kill", contains="/leases/")
    assert landed and code == -9, err[-2000:]
    code, err = h.run_cmd(_stylize(env, out, "--lease-ttl", "3600"), h.ENV, timeout=180)
    assert code == 0, f"resume exit {code}: {err[-2000:]}"
    assert h.check_stylize(out, env["ref"]) == []


@pytest.mark.parametrize("fault", ["EIO", "ENOSPC"])
def test_report_write_error_is_one_line_not_a_card_note(env, tmp_path, fault):
    """A failed write of a sampled card's full-size copy was caught as "output unreadable" (the
    handler meant for a damaged tar): the report exited 0 with a broken card."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(env["ref"], run)
    argv = [h.NST, "report", str(run), "--samples", "2"]
    code, err, landed = h.fault_run(argv, run / "report", env["shim"], "write", fault, contains="/full/")
    assert landed
    assert code == h.EXPECTED_EXIT[fault] and "Traceback" not in err and len(h.error_lines(err)) == 1, err
    code, err = h.run_cmd(argv, h.ENV)
    assert code == 0, err
    assert h.report_reader(run) == [] and "output unreadable" not in (run / "report" / "index.html").read_text()


def test_power_cut_before_a_journal_fsync_loses_the_line_and_resumes_exactly_once(env):
    """A power cut (every process killed, un-fsynced data dropped) just before a sample's journal
    line is fsynced: the line is lost, the tar bytes before it are durable, and the resume must
    redo that sample once, neither losing nor duplicating it."""
    out = env["base"] / "cut-journal"
    synclog = env["base"] / "cut-journal.synced"
    code, err, landed = h.fault_run(_stylize(env, out), out, env["shim"], "fsync", "cut", n=2, contains=".journal",
                                    synclog=synclog)  # the 1st fsyncs the new, empty journal
    assert landed and code == -9, err[-2000:]
    files, dropped = h.cut(out, synclog)
    journals = list((out / "work").glob("*.journal"))
    assert files >= 1 and dropped > 0, (files, dropped)  # the un-fsynced journal line is gone
    assert journals and all(j.stat().st_size == 0 for j in journals), [j.stat().st_size for j in journals]
    assert all(t.stat().st_size > 0 for t in (out / "work").glob("*.tar"))  # the fsynced sample bytes stay
    assert h.committed_readable(out) == []
    _resumes_clean(env, out)


def test_eio_at_the_requeue_record_fails_in_one_line_and_leaves_no_temporary(env):
    """`nst slurm-requeue` (the batch shell's requeue) let the OSError of a failed write of its stop
    record out as a traceback, and a worker killed mid-write left its temporary in slurm/ for good."""
    import shutil

    run = env["base"] / "requeue-eio"
    shutil.copytree(env["ref"], run)
    argv = ["env", f"SLURM_JOB_ID={h.REQUEUE_JOB}", "SLURM_NTASKS=1", h.NST, "slurm-requeue", str(run)]
    code, err, landed = h.fault_run(argv, run / "slurm", env["shim"], "fsync", "EIO", suffix=".tmp")
    assert landed
    assert code == 8 and "Traceback" not in err, err[-2000:]
    assert len(h.error_lines(err)) == 1 and "I/O error" in h.error_lines(err)[0], err
    assert not (run / "slurm" / f"requeues-{h.REQUEUE_JOB}.json").exists()  # not requeued on a lost record
    code, err, landed = h.fault_run(argv, run / "slurm", env["shim"], "write", "kill")
    assert landed and code == -9 and list((run / "slurm").glob(".*.tmp")), err[-2000:]
    code, err = h.run_cmd(argv, h.ENV)
    assert code == 75, err[-2000:]
    assert h.check_requeue(run, env["ref"]) == []


def test_enospc_at_the_job_record_fails_submit_in_one_line(env):
    """`nst submit` let the OSError of a failed write of slurm/job.json out as a traceback, before
    sbatch (here --dry-run); a submit killed mid-write left its temporary in slurm/ for good."""
    out = env["base"] / "submit-enospc"
    argv = [h.NST, "submit", str(env["data"]), "--style", str(env["style"]), "--out", str(out), "--dry-run",
            *RUN[:4], "--shard-size", "2"]
    code, err, landed = h.fault_run(argv, out / "slurm", env["shim"], "write", "ENOSPC", suffix=".tmp")
    assert landed
    assert code == 6 and "Traceback" not in err, err[-2000:]
    assert len(h.error_lines(err)) == 1 and "no space left" in h.error_lines(err)[0], err
    assert not (out / "slurm" / "job.json").exists() and not list((out / "slurm").glob(".*.tmp"))
    code, err, landed = h.fault_run(argv, out / "slurm", env["shim"], "fsync", "kill")
    assert landed and code == -9 and list((out / "slurm").glob(".*.tmp")), err[-2000:]
    code, err = h.run_cmd(argv, h.ENV)
    assert code == 0, err[-2000:]
    assert h.job_reader(out) == [] and not list((out / "slurm").glob(".*.tmp"))


def test_only_rank_0_writes_the_shard_index(env):
    """--devices 2: rank 1 also wrote shardindex.json; when that write failed it printed the one line
    and exited 6/8 while rank 0 rewrote the index and exited 0 (or was SIGKILLed by Lightning for
    its child's status). Now only rank 0 writes it: rank 1 makes no such call, and the run is clean."""
    out = env["base"] / "rank1-shardindex"
    code, err, landed = h.fault_run(_stylize(env, out, "--devices", "2"), out, env["shim"], "write", "ENOSPC",
                                    rank="1", contains=".shardindex.json")
    assert not landed and code == 0, err[-2000:]
    assert h.check_stylize(out, env["ref"]) == []


def test_a_failed_shard_index_write_fails_a_two_rank_run(env):
    """The index's one writer (rank 0) failing gives the one line and exit 6, and a clean resume."""
    out = env["base"] / "rank0-shardindex"
    code, err, landed = h.fault_run(_stylize(env, out, "--devices", "2"), out, env["shim"], "write", "ENOSPC",
                                    rank="0", contains=".shardindex.json")
    assert landed
    assert code == 6 and "Traceback" not in err and len(h.error_lines(err)) == 1, err[-2000:]
    _resumes_clean(env, out)
