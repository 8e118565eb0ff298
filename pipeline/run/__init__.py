"""Dataset runs: plan -> claim -> render -> commit -> read, the same for every method.

Read it in this order:

- `task.py`: the contract every method's Task implements (tasks/ holds the adapters);
- `folder/`: the run folder's format, what is on disk and who may write it (plan, leases);
- `execute/`: how a run is carried out: `runner.execute` first, then the worker it starts on each rank;
- `views/`: read-only views of a run folder (status, verify, export, outputs, estimate).

Lower layers (engine, models, io, methods) never import from here.
"""
