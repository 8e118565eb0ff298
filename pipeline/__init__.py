"""nst-pipeline: neural style transfer and its sister methods over whole datasets.

The Python API (pipeline/api.py) is importable from here: `pipeline.stylize(...)`,
`pipeline.run_dataset(...)`, ...; it is loaded on first use, so `import pipeline`
stays light (no torch) for the CLI's --version and completion.
"""

from pipeline.version import __version__

API = ("stylize", "texture", "invert", "dream", "run_dataset", "run_task", "open_run", "status", "verify",
       "report", "export")


def __getattr__(name: str):
    if name in API:
        from pipeline import api

        return getattr(api, name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *API])
