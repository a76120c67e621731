# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[test,demo]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/dumpwatch demo

# Debian packages the tests need (redis-server arrives with the distributed mode).
DEBS :=
test: $(STAMP)
	@if [ -n "$(DEBS)" ] && ! dpkg -s $(DEBS) >/dev/null 2>&1; then \
		apt-get update -qq && apt-get install -y -qq $(DEBS); fi
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/bench_engine.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
