#!/usr/bin/env bash
# The one prepared GPU benchmark run (issue 6), for a lent machine with one CUDA GPU.
#
# Reference vs production at 512 px, batch 1/4/8, fp32 and bf16, 300 evaluations,
# plus an Adam row (the network's share), coarse-to-fine, the production row under
# torch.compile (COMPILE modes; reduce-overhead = CUDA graphs), a torch.profiler table
# of a few production evaluations (where the time goes), the time each production row
# needs to reach the reference's final loss (fp32 checks at 10 points), and one-image peak memory
# at 512/1024/2048 px and the largest size that fits. Writes to $OUT:
#   gpu.json (the record benchmarks/results/ takes verbatim), table.txt, progress.log, nvidia-smi.txt
# Needs only torch, numpy, pillow, pyyaml in the machine's python3 (runs
# `python -m pipeline.bench`, not the CLI, so nothing else is imported).
# Weights: .carry/vgg16-keras-fp16.pt if present (make it with benchmarks/make_fp16_weights.py),
# else same-shape random weights (timings valid, final losses not comparable to real ones).
#
# Dry run on a CPU: DEVICE=cpu SIZE=32 ITERS=4 BATCHES=1,2 REF=1 MEM= COMPILE=default OUT=/tmp/gpu-dry bash benchmarks/gpu.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-runs/gpu}"
DEVICE="${DEVICE:-cuda}"
SIZE="${SIZE:-512}"
ITERS="${ITERS:-300}"
BATCHES="${BATCHES:-1,4,8}"
PRECISIONS="${PRECISIONS:-fp32,bf16}"
REF="${REF:-2}"
MEM="${MEM-512,1024,2048}"
COMPILE="${COMPILE-default,reduce-overhead}"
LIMIT="${LIMIT:-480}"
PY="${PY:-python3}"
WEIGHTS="${WEIGHTS:-.carry/vgg16-keras-fp16.pt}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1

{ nvidia-smi 2>&1 || true; "$PY" -c "import torch, sys; print(sys.version); print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())"; } > "$OUT/nvidia-smi.txt" 2>&1

args=(--device "$DEVICE" --size "$SIZE" --iterations "$ITERS" --batch-size "$BATCHES"
      --precision "$PRECISIONS" --reference-images "$REF" --adam-row --coarse-to-fine --save "$OUT/gpu.json")
[ -n "$MEM" ] && args+=(--memory-sizes "$MEM")
[ -n "$COMPILE" ] && args+=(--compile "$COMPILE")
[ "${PROFILE:-1}" = 1 ] && args+=(--profile)
if [ -f "$WEIGHTS" ]; then args+=(--weights-file "$WEIGHTS"); else args+=(--random-weights); fi

timeout "$LIMIT" "$PY" -m pipeline.bench "${args[@]}" 2> >(tee "$OUT/progress.log" >&2) | tee "$OUT/table.txt"
rc=${PIPESTATUS[0]}
echo "bench exit status: $rc" | tee -a "$OUT/progress.log"
exit "$rc"
