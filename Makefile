# `make demo`: set up, train the mini preset on the SMS Spam Collection, export int8, classify.
# `make test`: set up and run the test suite (what CI runs).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_VERSION ?= 2.13.0
HAS_NVIDIA := $(shell command -v nvidia-smi 2>/dev/null)
# Without an NVIDIA GPU, PyTorch's CPU index supplies a CPU-only torch; plain PyPI would pull
# several GB of CUDA libraries. (pip prefers 2.13.0+cpu over 2.13.0 as the higher version.)
TORCH_PIP_ARGS ?= $(if $(HAS_NVIDIA),,--extra-index-url https://download.pytorch.org/whl/cpu)
# onnxruntime and onnxruntime-gpu provide the same module: one or the other.
ORT_EXTRA ?= $(if $(HAS_NVIDIA),gpu,cpu)
# Data: a local copy where the machine has one (these machines, CI), else the UCI download.
SHARED_DATA := ../shared/data/sms_spam_collection/SMSSpamCollection
DATA ?= $(wildcard $(SHARED_DATA))
DATA_ARG := $(if $(DATA),--data $(DATA),)
DEMO := runs/demo

.PHONY: setup demo test clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	# torch alone first, from the index chosen above; its own dependencies come from PyPI in the
	# next step (which then finds torch already satisfied).
	$(PY) -m pip install --no-deps --retries 1 "torch==$(TORCH_VERSION)" $(TORCH_PIP_ARGS)
	$(PY) -m pip install -e ".[$(ORT_EXTRA),train,dev,ray]"
	touch $@

demo: setup
	$(PY) -m spamkit train --preset mini --out $(DEMO)/checkpoint $(DATA_ARG)
	$(PY) -m spamkit export $(DEMO)/checkpoint --out $(DEMO)/bundle --int8 $(DATA_ARG)
	$(PY) -m spamkit classify $(DEMO)/bundle \
		"WINNER!! You have been selected to receive a £900 prize reward! Call 09061701461 to claim." \
		"Ok lar... Joking wif u oni... see you at 6?"

test: setup
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) runs
