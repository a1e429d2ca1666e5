#!/usr/bin/env bash
# Second command of the README: install and run the whole test suite (SQLite by default;
# set REGISTRY_TEST_DATABASE_URL to run it against PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/python -m pytest -q "$@"
