# Two commands: `make run` serves the demo, `make test` runs every check. Both set up
# what they need first (system packages via apt-get when missing, then .venv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint typecheck system browser clean bench soak

run: $(STAMP)
	$(BIN)/edgeproxy serve --config config/distribution.yaml

test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q

# Side-by-side benchmark (edgeproxy, nginx proxy_cache, Varnish) on loopback; takes 20-30
# minutes, prints the table and rewrites the generated part of docs/performance.md.
# BENCH_ARGS passes options through, e.g. BENCH_ARGS='--repeats 5' (python -m bench --help).
bench: $(STAMP)
	./scripts/apt-install nginx varnish wrk util-linux
	@test -x $(BIN)/py-spy || $(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python -m bench $(BENCH_ARGS)

# Soak: mixed load (hits, misses, invalidations, handler and origin errors) at half the edge's
# measured peak, loopback only, about 10 minutes; prints unexpected statuses, p99 latency, the
# edge's RSS and open fds every minute and writes the report into docs/reliability.md.
# SOAK_SECONDS=60 for a quick check.
SOAK_SECONDS ?= 600
soak: $(STAMP)
	$(BIN)/python -m bench.soak --seconds $(SOAK_SECONDS)

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

# System packages: a Python with venv and pip (Debian splits them out), and Node.js for
# handlers written in JavaScript (edgeproxy/functions/node_runtime.mjs).
system:
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || ./scripts/apt-install python3-venv python3-pip
	@command -v node >/dev/null 2>&1 || ./scripts/apt-install nodejs

# Debian's headless Chromium and its driver, for tests/test_browser.py (Playwright drives it).
browser:
	@./scripts/apt-install chromium chromium-driver

$(STAMP): pyproject.toml | system
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
