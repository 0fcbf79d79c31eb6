package stream

import (
	"math"
	"strconv"
	"strings"

	"github.com/decnet/mazenet/internal/domain"
)

// ID is an event's durable id, written `<gseq>-<seq>`: its global position
// (stamped in Postgres, gap-free) and its per-topology outbox seq. It is the
// Redis entry id and the SSE `id:` on both the topology and the overview
// stream. Ordering by gseq orders the overview stream, and because a
// topology's gseqs follow its seqs it orders every topology stream too;
// Redis compares entry ids the same way. The seq half lets a resume of a
// topology stream check exactly that nothing was skipped.
type ID struct {
	GSeq, Seq int64
}

// AfterGSeq is the position just after every event with gseq <= g, for
// reading on from a clock that names no particular event: every event id at
// or below g sorts before it, every id above g after it.
func AfterGSeq(g int64) ID { return ID{GSeq: g, Seq: math.MaxInt64} }

// EventID is the id of a stamped event.
func EventID(ev domain.Event) ID { return ID{GSeq: ev.GSeq, Seq: ev.Seq} }

// ParseID parses `<a>-<b>` (two unsigned decimal integers that fit in
// int64); anything else (a bare number, spaces, signs, "$", "-", "+") is not
// an id. A malformed resume id is ignored (DOMAIN §10), so callers only need
// ok. A well-formed id may still name no event (a Redis-era id, an id from
// the future); the resume logic decides that.
func ParseID(s string) (ID, bool) {
	a, b, found := strings.Cut(s, "-")
	if !found || len(s) > 41 {
		return ID{}, false
	}
	g, ok := parseUint(a)
	if !ok {
		return ID{}, false
	}
	n, ok := parseUint(b)
	if !ok {
		return ID{}, false
	}
	return ID{GSeq: g, Seq: n}, true
}

// parseUint accepts only decimal digits (no sign, no space) up to MaxInt64.
func parseUint(s string) (int64, bool) {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}

// Less reports whether a sorts before b (as number pairs: comparing the
// strings would put "9-1" after "10-1").
func (a ID) Less(b ID) bool {
	return a.GSeq < b.GSeq || (a.GSeq == b.GSeq && a.Seq < b.Seq)
}

// String formats the id.
func (a ID) String() string {
	return strconv.FormatInt(a.GSeq, 10) + "-" + strconv.FormatInt(a.Seq, 10)
}
