# twomountains: the two front-door commands are `make demo` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
YEAR ?= 2023
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export GX_ANALYTICS_ENABLED ?= False
export MPLCONFIGDIR ?= $(CURDIR)/.prefect/matplotlib

.PHONY: setup demo test bench serve stop sample suites clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/bin/twomountains run --year $(YEAR) --data data/sample --out reports
	@echo "PDF 报告位于 / PDFs are in: $$(ls -d $(CURDIR)/reports/$(YEAR)/v* | sort -V | tail -1)"

# Three pytest workers on two cores: about a quarter of the suite's time is spent waiting on servers,
# browsers and subprocesses (user+sys CPU was 1.5 cores' worth with two workers), and a third worker fills
# it (one run each: 737 s with two workers, 641 s with three). Each test file stays on one worker, so a
# file's session fixtures (Prefect harness, PostgreSQL, Dask cluster) start once per worker.
test:
	@bash scripts/setup.sh --test
	$(VENV)/bin/python -m pytest -q -n 3 --dist loadfile

# A local Prefect server with the deployments of prefect.yaml and a worker (loopback only).
serve: setup
	@bash scripts/serve.sh start

stop:
	@bash scripts/serve.sh stop

# Stage timings, written to benchmarks/results.json.
bench: setup
	$(VENV)/bin/python benchmarks/bench.py $(if $(SCALE),--scale $(SCALE)) $(if $(PROFILE),--profile $(PROFILE))

# Regenerate the illustrative sample data (deterministic) and the GX suites.
sample: setup
	$(VENV)/bin/python scripts/make_sample_data.py

suites: setup
	$(VENV)/bin/twomountains suites

clean:
	rm -rf reports .prefect .pytest_cache .hypothesis
