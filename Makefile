# Everything sets itself up: the first target run creates .venv and installs the project.
# CPU torch first with the exact pin (a local wheel on CI machines; an unpinned torch pulls a CUDA build).
PY := .venv/bin/python
STAMP := .venv/.installed

.PHONY: test test-slow report app bench bench-app bench-planner validation-doc lint clean

$(STAMP): pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q -n 2

test-slow: $(STAMP)
	$(PY) -m pytest -q -n 2 -m slow

# the default Kimi K2.5 sizing report: reports/kimi-k2.5/{index.html,report.md,*.png,*.csv}
# (PNG figures need Debian chromium; .ci/run installs it)
report: $(STAMP)
	$(PY) -m planner report profiles/reports/kimi-k2.5.yaml --out reports/kimi-k2.5

# the dashboard on a free local port (the URL is printed); Ctrl-C stops it
app: $(STAMP)
	$(PY) -m streamlit run app.py --server.address 127.0.0.1 --server.headless true --browser.gatherUsageStats false \
		--server.port $$($(PY) -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# dashboard re-render time after a widget change, server side
bench-app: $(STAMP)
	$(PY) scripts/bench_app.py

# kernel runs beside the planner's predictions: CPU full suite (progress on stderr) into bench_results/results.sqlite
bench: bench-planner
	$(PY) -m kernels_bench run --suite full --device cpu

# planner speed: vectorized decode sweep (variants per second) and one estimate
bench-planner: $(STAMP)
	$(PY) -m planner.perf.sweep
	$(PY) -m planner.bench
	$(PY) -m planner.sizing.bench

# per-case error table against the published measurements beside this checkout
validation-doc: $(STAMP)
	$(PY) -m planner validate ../shared/validation/public_cases.yaml --markdown docs/validation.md

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf .venv reports bench_results/*.sqlite
