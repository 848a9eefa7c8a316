# Everything sets itself up: the first target run creates .venv and installs the project.
# CPU torch first with the exact pin (a local wheel on CI machines; an unpinned torch pulls a CUDA build).
PY := .venv/bin/python
STAMP := .venv/.installed

.PHONY: test test-slow report app bench bench-planner validation-doc lint clean

$(STAMP): pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q -n 2

test-slow: $(STAMP)
	$(PY) -m pytest -q -n 2 -m slow

report: $(STAMP)
	@echo "make report: not yet (issue 'YAML-driven reports'); meanwhile:"
	$(PY) -m planner inspect kimi-k2.5
	$(PY) -m planner estimate profiles/scenarios/kimi-k2.5-int4-8xh200.yaml

app: $(STAMP)
	@echo "make app: not yet (issue 'Streamlit dashboard')"

bench: bench-planner
	@echo "kernel benchmarks (kernels_bench): not yet (issue 'kernels_bench')"

# planner speed: vectorized decode sweep (variants per second) and one estimate
bench-planner: $(STAMP)
	$(PY) -m planner.sweep
	$(PY) -m planner.bench

# per-case error table against the published measurements beside this checkout
validation-doc: $(STAMP)
	$(PY) -m planner validate ../shared/validation/public_cases.yaml --markdown docs/validation.md

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf .venv reports bench_results/*.sqlite
