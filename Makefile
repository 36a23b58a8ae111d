# make demo: set up .venv and merge the built-in sample farm logs end to end.
# make test: set up .venv and run lint, types and the whole test suite.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) bench/genlogs.py --check-samples sample_logs
	$(VENV)/bin/mergelogs -p sample_logs/pen.log --summary -v \
	    10.0.0.1:sample_logs/access_log.host1 10.0.0.2:sample_logs/access_log.host2.gz \
	    -o sample_logs/access_log.merged
	@echo "merged log: sample_logs/access_log.merged ($$(wc -l < sample_logs/access_log.merged) lines)"

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

test: lint
	TZ=EST5EDT,M3.2.0,M11.1.0 $(PY) -m pytest -q

clean:
	rm -rf $(VENV) build src/*.egg-info
