"""What can go wrong, named once: exit statuses, manifest statuses, and the exceptions behind them.

The CLI turns an NSTError into one line on stderr and `sys.exit(code)`, so scripts
and schedulers can tell bad input from failed samples from preemption. A sample that
fails gets one manifest status, chosen by exception type (run/task.py: classify).
"""

EXIT_OK = 0
EXIT_BAD_INPUT = 2       # a file, value or option the user gave is wrong
EXIT_SAMPLES_FAILED = 3  # the run finished but some samples failed
EXIT_VERIFY_FAILED = 4   # `nst verify` found an inconsistency
EXIT_RUN_MISMATCH = 5    # an existing run directory holds a different run
EXIT_DISK_FULL = 6       # the output's disk is full (ENOSPC, EDQUOT); free space, rerun to resume
EXIT_NOT_WRITABLE = 7    # the output folder is read-only or not ours to write (EROFS, EACCES)
EXIT_IO_ERROR = 8        # any other I/O error writing the output (EIO, ...)
EXIT_PREEMPTED = 75      # stopped on a preemption signal; requeued (EX_TEMPFAIL)
EXIT_REQUEUE_LIMIT = 76  # SLURM: time limit hit too often without progress; not requeued
EXIT_SIGINT = 130        # stopped by Ctrl-C (128 + SIGINT); rerun to resume
EXIT_SIGTERM = 143       # stopped by SIGTERM (128 + SIGTERM); rerun to resume

# What each exit status means to a user: the README's exit table is rendered from this (pipeline/readme.py).
EXIT_MEANINGS = {
    EXIT_OK: "success (for dataset runs: every planned sample is `ok`)",
    EXIT_BAD_INPUT: "bad input: a file, option, config value or size the device cannot hold; nothing is written",
    EXIT_SAMPLES_FAILED: "a dataset run finished but some samples failed (summary printed; `nst status DIR` "
                         "lists them, `--retry-failed` redoes them)",
    EXIT_VERIFY_FAILED: "`nst verify` found a problem (each one is named)",
    EXIT_RUN_MISMATCH: "the output directory holds a different run (other config or inputs)",
    EXIT_DISK_FULL: "the output's disk is full (ENOSPC, quota): free space on the named mount, rerun to resume",
    EXIT_NOT_WRITABLE: "the output folder is read-only or permission is denied: make it writable or use "
                       "another `--out`",
    EXIT_IO_ERROR: "another I/O error writing the output (e.g. EIO): check the disk, rerun to resume",
    EXIT_PREEMPTED: "stopped on a preemption signal before finishing (SLURM: requeued); rerun the same command "
                    "to resume",
    EXIT_REQUEUE_LIMIT: "SLURM: the time limit was hit too often without progress; not requeued",
    EXIT_SIGINT: "stopped by Ctrl-C (SIGINT); rerun the same command to resume",
    EXIT_SIGTERM: "stopped by SIGTERM; rerun the same command to resume",
}


# Status of a sample in a manifest. "ok" is the only success.
OK = "ok"
FAILED_DECODE = "failed_decode"          # an input image could not be decoded
FAILED_NAN = "failed_nan"                # the optimisation produced NaN/inf
FAILED_OOM = "failed_oom"                # the device ran out of memory, at every size tried
FAILED_MISSING = "failed_missing"        # an input file is gone (deleted or moved after planning)
FAILED_IO = "failed_io"                  # an input file cannot be read (a directory, permissions, EIO)
SKIPPED_TOO_LARGE = "skipped_too_large"  # the input has more pixels than PIL will decode
FAILED_ERROR = "failed_error"            # any other exception (message says which)
STATUSES = (OK, FAILED_DECODE, FAILED_NAN, FAILED_OOM, FAILED_MISSING, FAILED_IO, SKIPPED_TOO_LARGE, FAILED_ERROR)


class NSTError(Exception):
    """An error with a user-facing one-line message and an exit status."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class BadInput(NSTError):
    """A user-supplied file, option or value is unusable."""

    exit_code = EXIT_BAD_INPUT


class DecodeError(BadInput):
    """An image could not be decoded (failed_decode); the message names the file."""


class MissingInput(DecodeError):
    """An input image is missing, a directory or unreadable (failed_io)."""


class InputNotFound(MissingInput):
    """An input image does not exist (any more) (failed_missing)."""


class NonFiniteResult(RuntimeError):
    """Raised by a task when its output or loss is NaN/inf (failed_nan)."""


class WeightsUnavailable(BadInput):
    """Backbone weights are not present locally; the message says how to get them."""


class RunMismatch(NSTError):
    """An output directory already holds a run with other settings or inputs."""

    exit_code = EXIT_RUN_MISMATCH
