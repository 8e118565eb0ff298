"""The rate `nst status` shows counts each batch from its start."""

from __future__ import annotations




def test_throughput_counts_batches_from_their_start():
    from pipeline.run.views.status import throughput

    batch = [(1010.0 + i * 1e-3, 1000.0, 1) for i in range(8)]  # (finished, started, samples): 8 in 10 s
    assert abs(throughput(batch, now=1020.0) - 8 / 10.008 * 3600) < 1
    assert throughput([], now=0) is None
