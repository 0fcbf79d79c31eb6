#!/usr/bin/env bash
# Runs every row of the issue 9 table (docs/BENCHMARKS.md, "Side by side with
# Centrifugo") unattended and prints it as one markdown table.
#
#   scripts/bench.sh          full scale: 3 runs of every row (about 20 minutes on 2 vCPUs)
#   scripts/bench.sh quick    200 subscribers, 5 s, 1 run: proves the tools work (about 3 minutes)
#
# It builds cmd/api, cmd/worker and cmd/sse with the bench pprof hook
# (scripts/bench-build.sh) and the two load tools into bin/bench/, installs
# Centrifugo v6.9.1 there if it is missing (scripts/bench-peer.sh), raises
# the open-files limit (5,000 subscribers need about 10,500 descriptors:
# one per stream on each side, plus the servers'), then runs cmd/ssebench
# (fan-out and end-to-end rows, each beside Centrifugo) and cmd/mutbench
# (mutation pipeline rows, two worker processes, pgbench ceiling).
#
# Environment: ONLY=sse or ONLY=mut (one tool's rows), RUNS (default 3), E2E_WORKERS (worker processes of the
# end-to-end rows, default 1: one topology is drained by one worker at a time), OUT (default bin/bench/results/<time>: logs,
# the tools' full output, the table), PPROF=1 (CPU profiles of every process
# under load into $OUT/pprof), SYSCALLS=1 (count system calls with perf
# stat; a little overhead per call), NICE (e.g. -10: run the tools and the
# processes under test at that priority, so neighbours on a shared machine
# disturb them less; needs root), DATABASE_URL / REDIS_URL (see
# scripts/services.sh; the tools work in throw-away schemas and key
# prefixes and remove them).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

mode=${1:-full}
runs=${RUNS:-3}
out=${OUT:-bin/bench/results/$(date -u +%Y%m%dT%H%M%SZ)-$mode}
mkdir -p "$out"
case "$mode" in
full)
  fan_scenarios="fanout:1000x1,fanout:5000x1,e2e:1000x1,e2e:5000x1,fanout:5000x100"
  fan_duration=20s
  mut_duration=10s
  ;;
quick)
  fan_scenarios="fanout:200x1,e2e:200x1,fanout:200x10"
  fan_duration=5s
  mut_duration=3s
  runs=${RUNS:-1}
  ;;
*)
  echo "usage: scripts/bench.sh [full|quick]" >&2
  exit 2
  ;;
esac

# 5,000 subscribers: a descriptor each in ssebench and in the server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 12000 ] && [ "$mode" = full ]; then
  say "open-files limit $(ulimit -n) is below the 12000 that 5,000 subscribers need: raise the hard limit (ulimit -Hn, /etc/security/limits.conf or the container's nofile) and retry"
  exit 1
fi

say "building the processes under test and the load tools into bin/bench/"
bash scripts/bench-build.sh bin/bench >&2
go build -o bin/bench/ ./cmd/ssebench ./cmd/mutbench
bash scripts/bench-peer.sh bin/bench >/dev/null

db=${TEST_DATABASE_URL:-$DATABASE_URL}
rdb=${TEST_REDIS_URL:-$REDIS_URL}
rows="$out/rows.md"
: >"$rows"
extra=()
[ "${SYSCALLS:-}" = 1 ] && extra+=(-syscalls)
pprof=()
[ "${PPROF:-}" = 1 ] && pprof=(-pprof-dir "$out/pprof")
nice=()
[ -n "${NICE:-}" ] && nice=(nice -n "$NICE")

{
  echo "machine: nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB RAM"
  echo "uptime at the start: $(uptime)${NICE:+ (tools under nice -n $NICE)}"
} | tee "$out/machine.txt"
if [ "${ONLY:-}" != mut ]; then
  say "ssebench: $fan_scenarios, $runs run(s), $fan_duration each (output in $out/ssebench.txt)"
  "${nice[@]}" bin/bench/ssebench -bin-dir bin/bench -database-url "$db" -redis-url "$rdb" -runs "$runs" \
    -workers "${E2E_WORKERS:-1}" -scenarios "$fan_scenarios" -duration "$fan_duration" -summary "$rows" \
    -work-dir "$out/ssebench" "${pprof[@]}" "${extra[@]}" | tee "$out/ssebench.txt"
  echo "uptime after ssebench: $(uptime)" | tee -a "$out/machine.txt"
fi
if [ "${ONLY:-}" != sse ]; then
  say "mutbench: 2 worker processes, $runs run(s), $mut_duration phases (output in $out/mutbench.txt)"
  "${nice[@]}" bin/bench/mutbench -bin-dir bin/bench -workers 2 -database-url "$db" -redis-url "$rdb" -runs "$runs" \
    -duration "$mut_duration" -summary "$rows" -work-dir "$out/mutbench" "${pprof[@]}" | tee "$out/mutbench.txt"
fi
echo "uptime at the end: $(uptime)" | tee -a "$out/machine.txt"

{
  echo
  echo "### Issue 9 rows ($mode, $runs run(s), $(date -u +%Y-%m-%d))"
  echo
  sed 's/^/    /' "$out/machine.txt"
  echo
  echo "| Row | Target | mazenet (median of runs, min–max) | Centrifugo / ceiling (same runs) | Ratio | Met | Load avg (1/5/15 min) |"
  echo "|---|---|---|---|---|---|---|"
  cat "$rows"
} >"$out/summary.md"
cat "$out/summary.md"
say "everything is in $out"
