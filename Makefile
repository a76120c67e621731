# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install locales extract bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[test,demo]'
	touch $(STAMP)

install: $(STAMP) locales

# The alerts' message catalogues: pip install compiles them (setup.py); after editing a .po, this does.
locales: $(STAMP)
	$(BIN)/pybabel -q compile -D dumpwatch -d alerts/locale

# For a developer who changed a message: extract the msgids again and merge them into each .po.
extract: $(STAMP)
	$(BIN)/pybabel -q extract -F babel.cfg -o alerts/locale/dumpwatch.pot --project=dumpwatch --no-wrap \
		--sort-by-file -c "Translators:" .
	$(BIN)/pybabel -q update -D dumpwatch -i alerts/locale/dumpwatch.pot -d alerts/locale --no-wrap

demo: $(STAMP) locales
	$(BIN)/dumpwatch demo

# Debian packages the tests need (redis-server arrives with the distributed mode).
DEBS := redis-server
test: $(STAMP) locales
	@if [ -n "$(DEBS)" ] && ! dpkg -s $(DEBS) >/dev/null 2>&1; then \
		apt-get update -qq && apt-get install -y -qq $(DEBS); fi
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

bench: $(STAMP)
	$(BIN)/python bench/bench_engine.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
