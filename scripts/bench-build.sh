#!/usr/bin/env bash
# Builds the processes under test for the load tools into bin/bench/ (ignored
# by git): cmd/api, cmd/worker and cmd/sse exactly as in production, plus the
# bench pprof hook (scripts/bench/pprofhook.go) overlaid into each package so
# that `-pprof-dir` can profile them. The hook is inert unless
# MAZENET_BENCH_PPROF_ADDR is set. Usage: scripts/bench-build.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=${1:-bin/bench}
mkdir -p "$out"
overlay=$(mktemp)
trap 'rm -f "$overlay"' EXIT
hook="$root/scripts/bench/pprofhook.go"
cat >"$overlay" <<JSON
{"Replace": {
  "$root/cmd/api/zz_benchpprof.go": "$hook",
  "$root/cmd/worker/zz_benchpprof.go": "$hook",
  "$root/cmd/sse/zz_benchpprof.go": "$hook"
}}
JSON
go build -tags benchpprof -overlay "$overlay" -o "$out/" ./cmd/api ./cmd/worker ./cmd/sse
echo "bench-build: $out/api $out/worker $out/sse (with the pprof hook)"
