#!/usr/bin/env bash
# Fails when the repository tracks a compiled binary or a file over 1 MiB
# (DEVELOPERS.md: commit source only). Paths under a testdata/ directory are
# fixtures and exempt. Run by `make test` before anything else.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "check-tree: not a git work tree; skipped"
  exit 0
fi
max=$((1024 * 1024))
bad=0
while IFS= read -r -d '' f; do
  case "$f" in testdata/* | */testdata/*) continue ;; esac
  [ -f "$f" ] || continue # deleted in the work tree, not yet committed
  size=$(stat -c %s "$f")
  if [ "$size" -gt "$max" ]; then
    echo "check-tree: $f is $size bytes (over 1 MiB)"
    bad=1
  fi
  magic=$(head -c 4 "$f" | od -An -tx1 | tr -d ' \n')
  case "$magic" in
  7f454c46) kind=ELF ;;
  cffaedfe | cefaedfe | feedface | feedfacf | cafebabe) kind=Mach-O ;;
  0061736d) kind=WebAssembly ;;
  4d5a*) kind=PE ;;
  *) kind= ;;
  esac
  if [ -z "$kind" ] && [ -x "$f" ] && grep -qaP '\x00' "$f"; then
    kind="executable with binary content"
  fi
  if [ -n "$kind" ]; then
    echo "check-tree: $f is a binary ($kind); build outputs belong in the ignored bin/"
    bad=1
  fi
done < <(git ls-files -z)
if [ "$bad" -ne 0 ]; then
  exit 1
fi
echo "check-tree: no tracked binaries, nothing over 1 MiB"
