#!/usr/bin/env bash
# `make test`: the whole suite with -race against real PostgreSQL and Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/check-tree.sh
source scripts/services.sh
# The dashboard's browser tests drive Debian's Chromium; without it they are
# skipped with the reason printed.
if ! command -v chromium >/dev/null && [ -z "${CHROMIUM_BIN:-}" ]; then
  apt_install chromium || say "chromium not installed: the browser tests will be skipped"
fi
# The fault suite (internal/chaos) runs its short version here with its own
# redis-server and PostgreSQL cluster; without them it is skipped, reason printed.
source scripts/chaos-deps.sh
ensure_chaos_deps || say "redis-server/PostgreSQL binaries not installed: the fault suite will be skipped"
say "go vet"
go vet ./...
say "go test -race ./...  (TEST_DATABASE_URL and TEST_REDIS_URL point at the servers above)"
go test -race -count=1 -timeout 40m "$@" ./...
