"""Carrying a run out: claim a shard, render its samples, commit it; on one device or many.

Reading order: `options.py` (RunOptions, declared once for every command), `runner.py` (`execute`:
plan, launch the ranks, summarise, the exit status and the run's final line), `lightning.py` (the
ranks, through Lightning's Trainer), `worker.py` (one rank's loop: claim, resume from the journal,
render, commit), `overlap.py` (prefetch and background writes), `input_check.py` (input hashes),
`threads.py` (CPU threads), `stop.py` and `signals.py` (stopping cleanly on Ctrl-C, SIGTERM, preemption).
"""
