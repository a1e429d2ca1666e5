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
  # The admin key is a secret: created 0600 (umask), never readable by other users.
  (umask 077 && .venv/bin/registry client create demo-admin --role admin > var/demo-admin.key.tmp)
  mv var/demo-admin.key.tmp var/demo-admin.key
  touch var/.demo-loaded
fi
# A key file written by an earlier version of this script may be world-readable.
if [ -f var/demo-admin.key ]; then chmod 600 var/demo-admin.key; fi
echo "demo admin API key is in var/demo-admin.key (Authorization: Bearer ...)"
exec .venv/bin/registry serve
