#!/usr/bin/env bash
# `make chaos`: the full fault suite (internal/chaos, docs/RELIABILITY.md).
# It starts its own redis-server and PostgreSQL cluster on free ports (never
# the shared 5432/6379), installs them with apt when absent, builds the
# binaries once and runs every scenario with the full counts. The markdown
# rows of RELIABILITY.md are printed at the end and kept in
# bin/chaos-report.md.
#
#   make chaos                          every scenario, full counts
#   CHAOS_RUN=sse_kill make chaos       one scenario (a TestChaos subtest name)
#   MAZENET_CHAOS=short make chaos      the short version (what make test runs)
#   MAZENET_CHAOS_KEEP=1 make chaos     keep the servers' data and logs
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/chaos-deps.sh
ensure_chaos_deps || { say "the fault suite needs redis-server and the PostgreSQL server binaries"; exit 1; }
mkdir -p bin
export MAZENET_CHAOS="${MAZENET_CHAOS:-full}"
export MAZENET_CHAOS_REPORT="$PWD/bin/chaos-report.md"
run="TestChaos"
[ -n "${CHAOS_RUN:-}" ] && run="TestChaos/${CHAOS_RUN}"
say "fault suite ($MAZENET_CHAOS): go test -run '$run' ./internal/chaos/"
start=$(date +%s)
status=0
go test -count=1 -v -timeout 3h -run "$run" ./internal/chaos/ "$@" || status=$?
say "fault suite took $(( $(date +%s) - start )) s; rows for docs/RELIABILITY.md in bin/chaos-report.md"
exit $status
