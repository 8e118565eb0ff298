"""Read-only views of a run folder: nothing here writes into a run's shards.

Reading order: `shard_state.py` (each shard's state from its files), `status.py` (counts, rate,
ETA; writes only shardindex.json), `watch.py` (`nst status --watch`), `verify.py` (`nst verify`),
`outputs.py` (the samples read back for use), `export.py` (`nst export`: a copy as a folder tree),
`estimate.py` (what a planned run will cost).
"""
