#!/usr/bin/env bash
# Installs the peer the SSE benchmarks compare against, Centrifugo v6.9.1,
# into bin/bench/ (ignored by git) unless it is already there, and prints its
# path. Nothing of Centrifugo is kept in the repository; `go install` builds
# it from the module proxy in about a minute. cmd/ssebench writes its
# configuration at run time (docs/BENCHMARKS.md lists it).
# Usage: scripts/bench-peer.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
version=v6.9.1
out=${1:-bin/bench}
mkdir -p "$out"
bin="$out/centrifugo"
if [ -x "$bin" ] && go version -m "$bin" 2>/dev/null | grep -q "mod[[:space:]]*github.com/centrifugal/centrifugo/v6[[:space:]]*$version"; then
  echo "$bin"
  exit 0
fi
echo "bench-peer: installing centrifugo $version into $out" >&2
GOBIN="$(cd "$out" && pwd)" GOFLAGS= go install "github.com/centrifugal/centrifugo/v6@$version" >&2
echo "$bin"
