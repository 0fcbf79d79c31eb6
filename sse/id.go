package sse

import (
	"strconv"
	"strings"
)

// entryID is a parsed Redis stream id `<ms>-<n>`. Ids are compared as
// number pairs: comparing the strings would put "9-0" after "10-0".
type entryID struct {
	ms, n uint64
}

// parseID parses `<ms>-<n>`; anything else (a bare number, spaces, signs,
// "$", "-", "+") is not an id. A malformed resume id is ignored (DOMAIN §10),
// so the caller only needs ok.
func parseID(s string) (entryID, bool) {
	ms, n, found := strings.Cut(s, "-")
	if !found || ms == "" || n == "" || len(s) > 41 {
		return entryID{}, false
	}
	a, err := strconv.ParseUint(ms, 10, 64)
	if err != nil || ms[0] == '+' {
		return entryID{}, false
	}
	b, err := strconv.ParseUint(n, 10, 64)
	if err != nil || n[0] == '+' {
		return entryID{}, false
	}
	return entryID{ms: a, n: b}, true
}

// mustParseID parses an id Redis produced; Redis never produces a malformed
// one, and the zero id sorts before everything if it ever did.
func mustParseID(s string) entryID {
	id, _ := parseID(s)
	return id
}

// less reports whether a sorts before b.
func (a entryID) less(b entryID) bool {
	return a.ms < b.ms || (a.ms == b.ms && a.n < b.n)
}

// String formats the id as Redis does.
func (a entryID) String() string {
	return strconv.FormatUint(a.ms, 10) + "-" + strconv.FormatUint(a.n, 10)
}
