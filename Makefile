# ox-bb-pipeline — everything a fresh machine needs, installed on first use.
#   make demo   run the whole pipeline once against the bundled sandbox
#   make test   install and run the whole test suite
#   make test-fast  the unit tier only (-m unit; ox_bb_pipeline_tests/tiers.py says which tests), < 2 min
#   make bench  run the benchmarks (prints a table, writes bench-results/*.json)
#   make eval   detection quality on public code with ground truth (writes bench-results/eval-*.json)

PYTHON      ?= $(shell command -v python3.11 || command -v python3)
VENV        := .venv
BIN         := $(VENV)/bin
UV_VERSION  := 0.13.9
STAMP       := $(VENV)/.installed
DEBIAN_PKGS := git chromium postgresql redis-server
PYTEST_ARGS ?=

.PHONY: install system-deps tools demo test test-fast bench eval lock clean

TOOLS_DIR   := .tools
TOOL_LOCKS  := ox_bb_pipeline/scanners/tools
TOOLS       := semgrep checkov

install: system-deps $(STAMP) tools

# Scanners that conflict with Dagster's dependencies get their own environment each, pinned by a
# lock file, and are called as subprocesses (see ox_bb_pipeline/scanners/tools.py).
tools: $(foreach t,$(TOOLS),$(TOOLS_DIR)/$(t)/.installed)

$(TOOLS_DIR)/%/.installed: $(TOOL_LOCKS)/%.lock
	test -x $(TOOLS_DIR)/$*/bin/python || $(PYTHON) -m venv $(TOOLS_DIR)/$*
	$(TOOLS_DIR)/$*/bin/python -m pip install -q "uv==$(UV_VERSION)"
	$(TOOLS_DIR)/$*/bin/uv pip install -q --compile-bytecode --python $(TOOLS_DIR)/$*/bin/python -r $<
	touch $@

# Debian packages the pipeline and its tests call (installed only when missing; we run as root).
system-deps:
	@missing=""; for p in $(DEBIAN_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $@

# Re-resolve the pinned lock file after changing pyproject.toml.
lock:
	$(BIN)/uv pip compile -q pyproject.toml --extra test --extra sandbox --python-version 3.11 -o requirements.lock

demo: install
	$(BIN)/ox-bb demo

# The Dagster UI on the bundled sandbox for a click-through (http://127.0.0.1:$(UI_PORT)); Ctrl-C stops both.
UI_PORT ?= 3000
.PHONY: ui
ui: install
	$(BIN)/ox-bb demo --ui --port $(UI_PORT)

test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -n 2 --dist loadfile -m unit $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m ox_bb_pipeline_tests.benchmarks

# Repositories come from $$OX_BB_EVAL_REPOS (mirrors named owner+name) or are cloned into a cache.
eval: install
	$(BIN)/python -m ox_bb_pipeline_tests.evaluation

clean:
	rm -rf $(VENV) $(TOOLS_DIR) data bench-results
