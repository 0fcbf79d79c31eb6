#!/usr/bin/env bash
# Sourced by scripts/chaos.sh and scripts/test.sh: makes sure the fault suite
# (internal/chaos) finds redis-server and PostgreSQL's initdb/postgres,
# installing the Debian packages when they are absent. It never starts,
# stops or touches a running server.
command -v say >/dev/null 2>&1 || say() { printf '\033[1m[mazenet]\033[0m %s\n' "$*" >&2; }
if ! command -v apt_install >/dev/null 2>&1; then
  as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
      say "need root (or sudo) to run: $*"; return 1; fi
  }
  apt_install() {
    command -v apt-get >/dev/null || return 1
    say "installing $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  }
fi

ensure_chaos_deps() {
  local want=()
  command -v redis-server >/dev/null || [ -x /usr/bin/redis-server ] || want+=(redis-server)
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || want+=(postgresql)
  [ ${#want[@]} -eq 0 ] && return 0
  # The package's own service may start on install; the suite never uses it.
  apt_install "${want[@]}"
}
