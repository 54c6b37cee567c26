# make run   - create .venv, install, migrate, start Redis, workers, the recovery loop and daphne (Ctrl-C stops)
# make test  - lint, then the whole suite on SQLite and on PostgreSQL ($DATABASE_URL, or a throwaway cluster)

VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST := $(PYTHON) -m pytest $(PYTEST_ARGS)

.PHONY: venv run test test-sqlite test-postgres lint clean
.NOTPARALLEL:

venv: $(STAMP)

# re-installs only when pyproject.toml changes (or .venv is gone)
$(STAMP): pyproject.toml tests/e2e/package-lock.json
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet -e '.[test]'
	@# axe-core for the accessibility check (tests/e2e/test_accessibility.py); without npm that test skips (fails in CI)
	if command -v npm >/dev/null; then npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error; \
	else echo "npm is missing: tests/e2e/test_accessibility.py will skip"; fi
	touch $@

run: venv
	DEBUG=1 $(PYTHON) manage.py up --demo-user

test: lint test-sqlite test-postgres

# ruff, and the import-linter contracts that keep the app's layers apart (pyproject.toml [tool.importlinter])
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

test-sqlite: venv
	env -u DATABASE_URL $(PYTEST)

# the suite on $(DATABASE_URL) if it names a PostgreSQL database, else on a throwaway cluster
test-postgres: venv
	@case "$$DATABASE_URL" in \
	  postgres://*|postgresql://*) echo "PostgreSQL at $$DATABASE_URL"; $(PYTEST) ;; \
	  *) $(PYTHON) -m tests.pgcluster -- $(PYTEST) ;; \
	esac

# keeps var/ (the demo database, secret key and Redis data) except test databases
clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info var/test-*.sqlite3*
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +

# make bench - workflows beside raw RQ, the database's own limit, Celery and DBOS on SQLite and durable PostgreSQL,
# interleaved repetitions, CPU per step beside every ratio; prints one table, saves it under bench/results/ and in
# the README (BENCH_ARGS="--db sqlite --reps 1 --size quick" for a look in a few minutes)
.PHONY: bench
bench: venv
	$(PYTHON) -m bench $(BENCH_ARGS)

# make chaos - the real system (PostgreSQL, Redis, 3 forking workers, the recovery loop) under SIGKILLs and a Redis
# and a PostgreSQL restart; prints a table and fails on any lost run or double transition (CHAOS_ARGS="--runs 30")
.PHONY: chaos
chaos: venv
	$(PYTHON) -m tests.chaos --runs 300 $(CHAOS_ARGS)

# make cluster-test - three hosts as network namespaces (PostgreSQL + replica and Redis on one; daphne, 2 workers
# and a recovery loop on each of two app hosts): runs across hosts, live updates across hosts, a host cut off,
# a Redis restart and a PostgreSQL failover; needs root (tests/cluster; CLUSTER_ARGS="--runs 10")
.PHONY: cluster-test
cluster-test: venv
	$(PYTHON) -m tests.cluster --runs 30 $(CLUSTER_ARGS)
