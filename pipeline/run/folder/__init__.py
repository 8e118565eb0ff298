"""The run folder's format: what a run writes before and around the work, and who may write it.

Reading order: `plan.py` (run.json: a run's identity, planned or checked on every start),
`stream_plan.py` (planning in bounded memory), `plan_samples.py` (each shard's planned samples, one
Parquet file), `leases.py` (one O_EXCL lease per shard, with a heartbeat: the claim),
`launches.py` (launches.jsonl: one line per worker start). The shards, journals and manifests
themselves are written by io/shards.py.
"""
