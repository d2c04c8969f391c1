# `make demo`: set up, train the best recipe from random weights that runs in three minutes on the
# SMS Spam Collection (docs/experiments.md), export int8, classify, rank it against TF-IDF.
# `make test`: set up, lint (`make lint`) and run the test suite (what CI runs).
# `make test-quickstart`: the README's Quickstart, as written, in an empty folder (CI runs it).
# `make test-web`: the browser and Node.js tests (`make web-deps` installs what they need).
# `make test-arm64`: the runtime on an aarch64 CPython under qemu-user (tests/arm64; CI runs it).
# `make test-avx2`: the int8 target tests on ONNX Runtime's AVX2 kernels (CI runs it).
# `make mutants`: one-line bugs, one per README guarantee; each must fail its tests.
# `make compare`: spamkit against the book's PyTorch inference and transformers + optimum.
# `make compare-avx2`: the same with ONNX Runtime on its AVX2 kernels, on any x86-64 host.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_VERSION ?= 2.13.0
HAS_NVIDIA := $(shell command -v nvidia-smi 2>/dev/null)
# Without an NVIDIA GPU, PyTorch's CPU index supplies a CPU-only torch; plain PyPI would pull
# several GB of CUDA libraries. (pip prefers 2.13.0+cpu over 2.13.0 as the higher version.)
# With one, PyPI's torch is the CUDA 13 build, the CUDA that current onnxruntime-gpu (the `gpu`
# extra, 1.27+) is built for too: both need NVIDIA driver R580 or newer (docs/gpu.md).
TORCH_PIP_ARGS ?= $(if $(HAS_NVIDIA),,--extra-index-url https://download.pytorch.org/whl/cpu)
# onnxruntime and onnxruntime-gpu provide the same module: one or the other.
ORT_EXTRA ?= $(if $(HAS_NVIDIA),gpu,cpu)
# Data: a local copy where the machine has one (these machines, CI), else the UCI download.
SHARED_DATA := ../shared/data/sms_spam_collection/SMSSpamCollection
DATA ?= $(wildcard $(SHARED_DATA))
DATA_ARG := $(if $(DATA),--data $(DATA),)
DEMO := runs/demo
# The peer routes of `make compare` need optimum-onnx, which needs transformers<4.58 while the
# dev venv has transformers 5: they get a venv of their own.
COMPARE_VENV ?= .venv-compare
CPY := $(COMPARE_VENV)/bin/python
COMPARE_ARGS ?=
# A command that runs `make compare`'s Python, e.g. as on an AVX2-only host (compare-avx2).
COMPARE_HOST ?=
# The comparison is a CPU benchmark: CPU-only torch for the peers on every machine.
COMPARE_TORCH_ARGS ?= --extra-index-url https://download.pytorch.org/whl/cpu

# Debian's headless Chromium drives the browser tests (Playwright cannot download browsers here).
CHROMIUM_PACKAGE ?= chromium-headless-shell
# No install scripts: onnxruntime-node ships its CPU binaries in the npm package (its script only
# fetches the CUDA ones, from NuGet), and protobufjs's only checks its version.
NPM_CI := npm ci --no-audit --no-fund --ignore-scripts

.PHONY: setup demo lint test test-slow mutants compare compare-avx2 clean web-deps test-web test-arm64 test-avx2 test-quickstart

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	# torch alone first, from the index chosen above; its own dependencies come from PyPI in the
	# next step (which then finds torch already satisfied).
	$(PY) -m pip install --no-deps --retries 1 "torch==$(TORCH_VERSION)" $(TORCH_PIP_ARGS)
	$(PY) -m pip install -e ".[$(ORT_EXTRA),train,dev,ray,text,serve,web,hub,bench]"
	touch $@

# The best recipe from random weights that runs in three minutes (docs/experiments.md): two
# models of DEMO_RECIPE and one fine-tuned from a tiny language model of the split's unlabelled
# messages, joined into one model by `spamkit ensemble`. The language model is pretrained by the
# first `make demo` and reused after. --force: a second `make demo` replaces the demo's own
# checkpoints and bundle (only those).
DEMO_RECIPE := --preset tiny --char-ngrams 4 --dropout 0.1 --lr 1e-3 --epochs 15 \
	--lr-schedule cosine --keep last
DEMO_PRETRAIN := --preset tiny --epochs 8 --lr 3e-3 --char-ngrams 4
DEMO_FINETUNE := --preset tiny --dropout 0.1 --lr 3e-4 --epochs 10 --lr-schedule cosine \
	--keep last
DEMO_MEMBERS := $(DEMO)/members/plain $(DEMO)/members/plain-2 $(DEMO)/members/pretrained
demo: setup $(DEMO)/language-model/config.json
	$(PY) -m spamkit train $(DEMO_RECIPE) --out $(DEMO)/members/plain --force $(DATA_ARG)
	$(PY) -m spamkit train $(DEMO_RECIPE) --init-seed 124 --out $(DEMO)/members/plain-2 \
		--force $(DATA_ARG)
	$(PY) -m spamkit train --init $(DEMO)/language-model $(DEMO_FINETUNE) \
		--out $(DEMO)/members/pretrained --force $(DATA_ARG)
	$(PY) -m spamkit ensemble $(DEMO_MEMBERS) --out $(DEMO)/checkpoint --force $(DATA_ARG)
	$(PY) -m spamkit export $(DEMO)/checkpoint --out $(DEMO)/bundle --int8 --force $(DATA_ARG)
	$(PY) -m spamkit classify $(DEMO)/bundle \
		"WINNER!! You have been selected to receive a £900 prize reward! Call 09061701461 to claim." \
		"Ok lar... Joking wif u oni... see you at 6?"
	$(PY) benchmarks/baseline_tfidf.py --against $(DEMO)/checkpoint

$(DEMO)/language-model/config.json: | setup
	$(PY) -m spamkit pretrain $(DEMO_PRETRAIN) --out $(DEMO)/language-model --force $(DATA_ARG)

# pycodestyle, pyflakes and import order, at the line length of pyproject.toml.
lint: setup
	$(VENV)/bin/ruff check .

# Two workers, a test file each at a time (pytest-xdist): most tests use one core.
PYTEST_WORKERS ?= 2
# Installs nothing as root: a test that needs a system tool (valgrind) skips, naming its Debian
# package, where the tool is missing (.ci/run installs them first).
test: setup lint
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile \
		-m "not slow and not browser and not node and not arm64 and not avx2 and not quickstart"

# The long end-to-end runs, kept out of `make test` so that it stays a quick loop; CI runs both.
test-slow: setup
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile -m slow

# The README's Quickstart, run as written in an empty folder (a few minutes: it trains the demo's
# recipe); CI runs it after `make test`.
test-quickstart: setup
	$(PY) -m pytest -q -p no:xdist -m quickstart tests/test_quickstart.py

# npm packages from the lockfiles (node_modules is not committed), and Chromium (apt, as root).
web-deps: setup
	$(NPM_CI) --prefix toolkit/web
	$(NPM_CI) --prefix ports/node
	command -v $(CHROMIUM_PACKAGE) >/dev/null || \
		{ apt-get update && apt-get install -y --no-install-recommends $(CHROMIUM_PACKAGE); }

test-web: web-deps
	$(PY) -m pytest -q -m "browser or node"
# Installs qemu-user-static (apt) and builds the aarch64 sysroot in .arm64/ on first use.
test-arm64: setup
	tests/arm64/setup.sh
	$(PY) -m pytest -q -m arm64 tests/arm64
# ONNX Runtime's cpuid answered without AVX-512 or VNNI, and a /proc/cpuinfo without their flags
# in a mount namespace of its own (tools/native_host.sh; gcc and binutils from apt if missing).
test-avx2: setup
	tools/native_host.sh $(PY) -m pytest -q -p no:cacheprovider -p no:xdist \
		tests/test_targets.py tests/avx2

# Each mutant in a copy of the tree, its tests run there, two at a time; some are the page's and
# the Node port's (web-deps).
MUTANTS_ARGS ?= -j 2
mutants: setup web-deps
	$(PY) tests/mutation/run.py $(MUTANTS_ARGS)

$(COMPARE_VENV)/.installed: Makefile
	$(PYTHON) -m venv $(COMPARE_VENV)
	$(CPY) -m pip install --upgrade pip
	$(CPY) -m pip install --no-deps --retries 1 "torch==$(TORCH_VERSION)" $(COMPARE_TORCH_ARGS)
	$(CPY) -m pip install "transformers<4.58" "optimum-onnx[onnxruntime]"
	# spamkit itself only for its measuring protocol (spamkit.jobs.measure); no dependencies of its own.
	$(CPY) -m pip install --no-deps -e .
	touch $@

compare: setup $(COMPARE_VENV)/.installed
	$(COMPARE_HOST) $(PY) benchmarks/compare.py --peer-python $(CPY) $(DATA_ARG) $(COMPARE_ARGS)

compare-avx2: COMPARE_HOST = tools/native_host.sh
compare-avx2: compare

clean:
	rm -rf $(VENV) $(COMPARE_VENV) runs .arm64 .avx2-overlay
