"""Errors users can act on, each with its own exit status.

The CLI turns these into one line on stderr and `sys.exit(code)`, so scripts
and schedulers can tell bad input from failed samples from preemption.
"""

EXIT_OK = 0
EXIT_BAD_INPUT = 2       # a file, value or option the user gave is wrong
EXIT_SAMPLES_FAILED = 3  # the run finished but some samples failed
EXIT_VERIFY_FAILED = 4   # `nst verify` found an inconsistency
EXIT_RUN_MISMATCH = 5    # an existing run directory holds a different run
EXIT_PREEMPTED = 75      # stopped on a preemption signal; requeued (EX_TEMPFAIL)
EXIT_REQUEUE_LIMIT = 76  # SLURM: time limit hit too often without progress; not requeued


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


class WeightsUnavailable(BadInput):
    """Backbone weights are not present locally; the message says how to get them."""


class RunMismatch(NSTError):
    """An output directory already holds a run with other settings or inputs."""

    exit_code = EXIT_RUN_MISMATCH
