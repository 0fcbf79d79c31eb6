#!/usr/bin/env bash
# Sourced by scripts/run.sh and scripts/test.sh. Makes sure PostgreSQL and
# Redis are reachable and exports DATABASE_URL / REDIS_URL (and the test
# variants). Order of preference:
#   1. DATABASE_URL / REDIS_URL already set: used as they are.
#   2. A server already answering on 127.0.0.1:5432 / 127.0.0.1:6379: reused.
#   3. Otherwise installed from Debian/Ubuntu packages (apt-get, with sudo
#      when not root) and started locally: PostgreSQL with user postgres /
#      password postgres on 127.0.0.1:5432, Redis on 127.0.0.1:6379 keeping
#      nothing on disk.

say() { printf '\033[1m[mazenet]\033[0m %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root (or sudo) to run: $*"; return 1; fi
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    say "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || return 1
    apt_updated=1
  fi
  say "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_port() {
  for _ in $(seq 1 60); do port_open "$1" "$2" && return 0; sleep 0.5; done
  return 1
}

ensure_go() {
  if ! command -v go >/dev/null; then
    [ -x /usr/local/go/bin/go ] && export PATH="/usr/local/go/bin:$PATH"
  fi
  if ! command -v go >/dev/null; then
    apt_install golang-go ca-certificates git || { say "could not install Go; install Go >= 1.22 and retry"; return 1; }
  fi
  # go.mod names the Go version; Go >= 1.21 fetches that toolchain itself.
  local minor
  minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
  if [ "${minor:-0}" -lt 21 ]; then
    say "Go $(go env GOVERSION) is too old: install Go >= 1.22 (it fetches the toolchain go.mod asks for)"
    return 1
  fi
}

ensure_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then say "using DATABASE_URL"; return 0; fi
  if ! port_open 127.0.0.1 5432; then
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
      apt_install postgresql || return 1
    fi
    local ver
    ver=$(ls /etc/postgresql | sort -V | tail -n1)
    # The package may have started the cluster already (systemd machines).
    if ! port_open 127.0.0.1 5432; then
      say "starting PostgreSQL $ver"
      as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>/dev/null ||
        as_root pg_ctlcluster "$ver" main start 2>/dev/null || as_root service postgresql start || true
    fi
    wait_port 127.0.0.1 5432 || { say "PostgreSQL did not come up on 127.0.0.1:5432"; return 1; }
    # A fresh Debian cluster authenticates TCP clients by password: give the
    # postgres role the documented development password.
    as_root runuser -u postgres -- psql -q -c "ALTER USER postgres PASSWORD 'postgres'" >/dev/null 2>&1 ||
      as_root su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null 2>&1 || true
  fi
  export DATABASE_URL="postgres://postgres:postgres@127.0.0.1:5432/mazenet?sslmode=disable"
  say "PostgreSQL on 127.0.0.1:5432"
}

ensure_redis() {
  if [ -n "${REDIS_URL:-}" ]; then say "using REDIS_URL"; return 0; fi
  if ! port_open 127.0.0.1 6379; then
    command -v redis-server >/dev/null || apt_install redis-server || return 1
    say "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir /tmp --logfile /tmp/mazenet-redis.log >/dev/null || return 1
    wait_port 127.0.0.1 6379 || { say "Redis did not come up on 127.0.0.1:6379"; return 1; }
  fi
  export REDIS_URL="redis://127.0.0.1:6379/0"
  say "Redis on 127.0.0.1:6379"
}

ensure_go && ensure_postgres && ensure_redis || { say "setup failed"; exit 1; }

# Tests use their own database (mazenet_test, one schema per test) and Redis
# DB 15 with a key prefix per test, so they never touch what `make run` uses.
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-${DATABASE_URL/\/mazenet\?/\/postgres?}}"
export TEST_REDIS_URL="${TEST_REDIS_URL:-${REDIS_URL%/*}/15}"
