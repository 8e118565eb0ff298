"""A shard's batches sit at fixed positions, so a resumed shard batches its samples as a straight run does."""

from __future__ import annotations

from pipeline.run.task import Planned, number


def test_batches_sit_at_fixed_positions_in_the_shard():
    from pipeline.run.execute.worker import batches

    samples = number([Planned(f"{i}.png") for i in range(10)], run_seed=0)
    shard = samples[4:10]  # a shard starting at global index 4
    full = [[s.index for s in b] for b in batches(shard, shard, 4)]
    assert full == [[4, 5, 6, 7], [8, 9]]
    resumed = [[s.index for s in b] for b in batches(shard[2:], shard, 4)]  # 4 and 5 already done
    assert resumed == [[6, 7], [8, 9]]
    # with batch keys (e.g. two working sizes interleaved), positions count within each key
    keys = {s.index: "wide" if s.index % 2 == 0 else "tall" for s in shard}
    grouped = [[s.index for s in b] for b in batches(shard, shard, 2, keys)]
    assert grouped == [[4, 6], [5, 7], [8], [9]]
    resumed = [[s.index for s in b] for b in batches([s for s in shard if s.index != 6], shard, 2, keys)]
    assert resumed == [[4], [5, 7], [8], [9]]  # 4's batch-mate is done; nothing else moves
