"""Ctrl-C and SIGTERM for the long-running commands (`nst stylize`, the methods, `bench`, `one`).

The first SIGINT or SIGTERM only asks the process to stop (`pipeline.run.execute.stop`): a dataset
worker stops taking work, finishes its batch, commits what is complete, releases its lease,
and the command exits 128 + the signal number (130, 143). Interactive users press Ctrl-C
twice when the first seems to do nothing, so the first one also restores the default action:
a second signal ends the process at once, exactly like kill -9 (whose safety the journals
and commit records already guarantee). Commands without a batch to finish (`one`, `bench`)
ask for `raise_at_once`: the first signal raises `Stopped` where the code is.

Lightning's rank processes are started by rank 0 with the same command line, so they install
the same handlers; a rank that rank 0 started also dies with rank 0 (PR_SET_PDEATHSIG), so a
second Ctrl-C or a kill of rank 0 alone never leaves an orphan running. The SLURM worker keeps
its own handlers (USR2/TERM -> finish the sample, requeue, exit 75): `install_stop_signals`
leaves a process alone once `slurm` installed those.
"""

from __future__ import annotations

import os
import signal
import sys

from pipeline.run.execute.stop import LAUNCHER_ENV, request_stop

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_STATE = {"raise_at_once": False, "installed": False, "external": False}


class Stopped(BaseException):
    """Raised by the first signal in a command that has nothing to finish (`one`, `bench`).

    A BaseException, so no `except Exception` on the way swallows it."""

    def __init__(self, signame: str, exit_code: int):
        super().__init__(signame)
        self.signame, self.exit_code = signame, exit_code


def exit_code_for(signum: int) -> int:
    """The shell's convention for 'ended by this signal': 130 for SIGINT, 143 for SIGTERM."""
    return 128 + int(signum)


def _on_first(signum, _frame) -> None:
    name = signal.Signals(signum).name
    for sig in STOP_SIGNALS:  # the next one aborts at once
        signal.signal(sig, signal.SIG_DFL)
    request_stop(name, exit_code_for(signum))
    if _STATE["raise_at_once"]:
        raise Stopped(name, exit_code_for(signum))
    if sys.stderr.isatty():  # a person at a terminal: say that the first key press was heard
        os.write(2, f"\nnst: {name}: finishing the current batch; press Ctrl-C again to abort at once\n".encode())


def install_stop_signals(raise_at_once: bool = False) -> None:
    """First SIGINT/SIGTERM: stop cleanly; the second: the default action. No-op under the
    SLURM worker's own handlers (`mark_external`)."""
    if _STATE["external"]:
        return
    _STATE.update(raise_at_once=raise_at_once, installed=True)
    for sig in STOP_SIGNALS:
        signal.signal(sig, _on_first)
    _die_with_parent()


def reassert() -> None:
    """Put our handlers back where a library replaced them (Lightning's Trainer installs its
    own SIGTERM handler, which forwards TERM to the ranks and otherwise ignores it)."""
    if _STATE["installed"] and not _STATE["external"]:
        for sig in STOP_SIGNALS:
            if signal.getsignal(sig) not in (signal.SIG_DFL, _on_first):  # SIG_DFL: already stopping
                signal.signal(sig, _on_first)


def mark_external() -> None:
    """Another layer (the SLURM worker) owns the stop signals of this process."""
    _STATE["external"] = True


def _die_with_parent() -> None:
    """In a rank that this command's rank 0 started (Lightning's launcher): be killed with
    rank 0, so no rank outlives the command a person or a scheduler ended."""
    launcher = os.environ.get(LAUNCHER_ENV, "")
    if not launcher.isdigit() or int(launcher) == os.getpid() or not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != int(launcher):  # rank 0 ended before the call above took effect
        os._exit(0)
