#!/usr/bin/env bash
# Creates .venv with uv and installs the project and its dev tools. Idempotent and quick.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
[ -x .venv/bin/uv ] || .venv/bin/python -m pip install --quiet --disable-pip-version-check uv
.venv/bin/uv pip install --quiet --python .venv/bin/python -e '.[dev]'
# Bytecode ahead of time: where PYTHONDONTWRITEBYTECODE is set (as on these machines) every
# process would otherwise compile SQLAlchemy, Litestar and ours again, about 2 s per start.
.venv/bin/python -m compileall -q -j 0 .venv/lib registry publishing search service bench demo migrations >/dev/null
