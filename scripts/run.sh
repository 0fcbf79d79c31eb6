#!/usr/bin/env bash
# `make run`: PostgreSQL and Redis (started or installed when absent),
# migrations, the seeded admin and a live demo topology, then api, worker and
# sse in the foreground. Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

export DECNET_DEV="${DECNET_DEV:-true}"
export DECNET_ADMIN_USER="${DECNET_ADMIN_USER:-admin}"
export DECNET_ADMIN_PASSWORD="${DECNET_ADMIN_PASSWORD:-mazenet-admin-pw}"
API_PORT="${API_PORT:-8080}"
SSE_PORT="${SSE_PORT:-8081}"
export DECNET_SSE_PUBLIC_URL="${DECNET_SSE_PUBLIC_URL:-http://localhost:$SSE_PORT}"
export DECNET_ALLOWED_ORIGINS="${DECNET_ALLOWED_ORIGINS:-http://localhost:$API_PORT,http://127.0.0.1:$API_PORT}"

say "building"
mkdir -p bin
go build -o bin/ ./cmd/api ./cmd/worker ./cmd/sse ./cmd/migrate

say "migrating and seeding"
bin/migrate -create-db -demo

pids=()
stop_all() {
  trap - INT TERM EXIT
  say "stopping"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_all INT TERM EXIT

PORT="$SSE_PORT" bin/sse & pids+=($!)
bin/worker & pids+=($!)
PORT="$API_PORT" bin/api & pids+=($!)

for _ in $(seq 1 60); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$API_PORT") 2>/dev/null; then break; fi
  sleep 0.25
done

cat >&2 <<MSG

  mazenet is running
    dashboard  http://localhost:$API_PORT/
    login      $DECNET_ADMIN_USER / $DECNET_ADMIN_PASSWORD
    api        http://localhost:$API_PORT/api/v1   (OpenAPI: /api/v1/openapi.json)
    sse        http://localhost:$SSE_PORT/api/v1/stream
    monitoring http://localhost:$API_PORT/monitoring   (admin, HTTP Basic)
  Ctrl-C stops everything.

MSG
wait -n "${pids[@]}" || true
