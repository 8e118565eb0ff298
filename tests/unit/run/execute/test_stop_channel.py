"""The stop flag that the ranks of one command share: a stop requested in one process (a
rank that saw a full disk, rank 0 that got SIGTERM) is seen by the others, and the reason
the command reports is the one the user must act on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from pipeline.errors import EXIT_DISK_FULL, EXIT_PREEMPTED, EXIT_SIGINT, EXIT_SIGTERM
from pipeline.run.execute import stop


@pytest.fixture(autouse=True)
def fresh_flag():
    stop.reset()
    yield
    stop.close_channel()
    stop.reset()


def _in_child(code: str) -> subprocess.CompletedProcess:
    """Run `code` in a real child process that inherits this process's environment (a rank)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": os.getcwd()})


def test_a_stop_in_one_rank_stops_the_others_and_its_message_wins():
    assert stop.open_channel() is True and stop.open_channel() is False  # a started rank does not own it
    assert not stop.stop_requested()
    res = _in_child("from pipeline.run.execute import stop; "
                    "stop.request_stop('output error', 6, 'no space left on device writing /x'); "
                    "print(stop.open_channel())")
    assert res.returncode == 0 and res.stdout.strip() == "False", res.stderr
    stop.request_stop("SIGINT", EXIT_SIGINT)  # the signal came first here; the error still decides
    assert stop.stop_requested()
    cause = stop.stop_cause()
    assert (cause.name, cause.exit_code, cause.message) == ("output error", EXIT_DISK_FULL,
                                                            "no space left on device writing /x")


def test_child_sees_rank_zeros_signal_and_no_channel_is_left_behind():
    stop.open_channel()
    path = os.environ[stop.CHANNEL_ENV]
    stop.request_stop("SIGTERM", EXIT_SIGTERM)
    res = _in_child("from pipeline.run.execute import stop; c = stop.stop_cause(); "
                    "print(stop.stop_requested(), c.name, c.exit_code)")
    assert res.stdout.split() == ["True", "SIGTERM", str(EXIT_SIGTERM)], res.stderr
    stop.close_channel()
    assert not os.path.exists(path)


def test_slurm_stop_keeps_its_name_and_status():
    stop.request_stop("SIGUSR2")
    assert stop.stop_cause().name == "SIGUSR2" and stop.stop_cause().exit_code == EXIT_PREEMPTED


def test_first_signal_asks_to_stop_second_one_kills():
    """In a real child: the first SIGINT only sets the flag (the loop goes on to its next
    check), the second ends the process by the signal at once."""
    code = ("import time; from pipeline.run.execute import signals, stop; signals.install_stop_signals(); "
            "print('ready', flush=True)\n"
            "while not stop.stop_requested(): time.sleep(0.01)\n"
            "print('stopping', stop.stop_cause().exit_code, flush=True)\n"
            "time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGINT)
    assert proc.stdout.readline().split() == ["stopping", str(EXIT_SIGINT)]
    start = time.time()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == -signal.SIGINT and time.time() - start < 10


def test_stopped_is_raised_at_once_where_there_is_nothing_to_finish():
    code = ("import os, signal, time; from pipeline.run.execute import signals\n"
            "signals.install_stop_signals(raise_at_once=True)\n"
            "try:\n"
            "    os.kill(os.getpid(), signal.SIGTERM); time.sleep(30); print('not raised')\n"
            "except signals.Stopped as s:\n"
            "    print(s.signame, s.exit_code)")
    res = _in_child(code)
    assert res.stdout.split() == ["SIGTERM", str(EXIT_SIGTERM)], res.stdout + res.stderr
