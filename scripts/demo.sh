#!/usr/bin/env bash
# First command of the README: install, migrate, load demo data (once), serve on the embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export REGISTRY_DATABASE_URL=${REGISTRY_DATABASE_URL:-sqlite:///var/registry.db}
mkdir -p var
.venv/bin/registry db upgrade
if [ ! -f var/.demo-loaded ]; then
  .venv/bin/registry demo --listings "${DEMO_LISTINGS:-5000}"
  .venv/bin/registry client create demo-admin --role admin > var/demo-admin.key
  touch var/.demo-loaded
fi
echo "demo admin API key is in var/demo-admin.key (Authorization: Bearer ...)"
exec .venv/bin/registry serve
