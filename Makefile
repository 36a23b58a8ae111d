# make demo: set up .venv and run the nightly job on loopback: pen, 3 web servers, clients,
#   rotation, mergelogs, splitwr (demo/; outputs in build/demo/).
# make test: set up .venv and run lint, types and the whole test suite.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench venv clean man

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m demo --out build/demo

# man pages of every console script, from each command's own --help text (the wheel ships them)
man: $(STAMP)
	$(PY) tools/manpages.py build/man/man1

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench demo tools
	$(VENV)/bin/mypy

test: lint
	TZ=EST5EDT,M3.2.0,M11.1.0 $(PY) -m pytest -q

clean:
	rm -rf $(VENV) build src/*.egg-info
