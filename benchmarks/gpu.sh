#!/usr/bin/env bash
# The one prepared GPU benchmark run (issues 6 and 11), for a lent machine with one CUDA GPU.
#
# At 512 px, bf16, the default preset (its multi-resolution schedule, content start, size-normalised
# loss): the classic run (torch.optim.LBFGS, history 100, no line search, fp32, one image at a time,
# CLASSIC evaluations: the quality bar), the production path at batch 8 and 16 with its evaluations
# and images per hour at that quality, the same under torch.compile (COMPILE modes; reduce-overhead
# = CUDA graphs), the production budget at one scale, a torch.profiler kernel table of one production
# evaluation at batch 8 and 16 (the convolutions' share against the rest), and one-image peak memory.
# Writes to $OUT: gpu.json (the record benchmarks/results/ takes verbatim), table.txt, progress.log,
# nvidia-smi.txt. Needs only torch, numpy, pillow, pyyaml in the machine's python3 (runs
# `python -m pipeline.bench`, not the CLI, so nothing else is imported).
# Weights: .carry/vgg16-keras-fp16.pt if present (make it with benchmarks/make_fp16_weights.py),
# else same-shape random weights (timings valid, losses not comparable to real ones).
# Budget: one call of at most 8 minutes on an H100/H200 (LIMIT seconds for the bench itself).
#
# Dry run on a CPU: DEVICE=cpu SIZE=64 CLASSIC=6 ITERS=8 BATCHES=1,2 PROFILE=1,2 REF=1 MEM= COMPILE= OUT=/tmp/gpu-dry bash benchmarks/gpu.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-runs/gpu}"
DEVICE="${DEVICE:-cuda}"
SIZE="${SIZE:-512}"
CLASSIC="${CLASSIC:-500}"
ITERS="${ITERS:-}"
BATCHES="${BATCHES:-8,16}"
PRECISIONS="${PRECISIONS:-bf16}"
PROFILE="${PROFILE:-8,16}"
REF="${REF:-2}"
MEM="${MEM-512,1024,2048}"
COMPILE="${COMPILE-default,reduce-overhead}"
LIMIT="${LIMIT:-450}"
PY="${PY:-python3}"
WEIGHTS="${WEIGHTS:-.carry/vgg16-keras-fp16.pt}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1

{ nvidia-smi 2>&1 || true; "$PY" -c "import torch, sys; print(sys.version); print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())"; } > "$OUT/nvidia-smi.txt" 2>&1

args=(--device "$DEVICE" --size "$SIZE" --classic-evaluations "$CLASSIC" --batch-size "$BATCHES"
      --precision "$PRECISIONS" --reference-images "$REF" --single-scale-row --save "$OUT/gpu.json")
[ -n "$ITERS" ] && args+=(--iterations "$ITERS")
[ -n "$PROFILE" ] && args+=(--profile "$PROFILE")
[ -n "$MEM" ] && args+=(--memory-sizes "$MEM")
[ -n "$COMPILE" ] && args+=(--compile "$COMPILE")
if [ -f "$WEIGHTS" ]; then args+=(--weights-file "$WEIGHTS"); else args+=(--random-weights); fi

timeout "$LIMIT" "$PY" -m pipeline.bench "${args[@]}" 2> >(tee "$OUT/progress.log" >&2) | tee "$OUT/table.txt"
rc=${PIPESTATUS[0]}
echo "bench exit status: $rc" | tee -a "$OUT/progress.log"
exit "$rc"
