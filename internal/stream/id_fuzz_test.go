package stream

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzParseID feeds ParseID whatever a client can put in Last-Event-ID or
// ?lastEventId=. Properties: it never panics; an accepted id is exactly two
// runs of decimal digits joined by one '-', and formats back to the same
// text (modulo leading zeros, which it reads as the number they spell);
// every id String produces parses back to itself.
func FuzzParseID(f *testing.F) {
	for _, s := range []string{
		"1-0", "0-0", "1700000000000-12", "9223372036854775807-9223372036854775807",
		"9223372036854775808-1", "1-9223372036854775808", "99999999999999999999-0",
		"", "-", "1-", "-1", "12", "-1-0", "1--1", "+1-0", "1-+0", "a-b", "1-0 ", " 1-0",
		"$", "0x1-0", "1_0-0", "1-0-0", "01-007", "\x00", "1\x00-0", "1-0\x00", "\xed\xa0\x80",
		"\ufeff1-0", "１-０", strings.Repeat("9", 41) + "-0", strings.Repeat("1", 20) + "-" + strings.Repeat("1", 20),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := ParseID(s)
		if !ok {
			if id != (ID{}) {
				t.Fatalf("ParseID(%q) refused but returned %v", s, id)
			}
			return
		}
		a, b, _ := strings.Cut(s, "-")
		if !isDigitsOnly(a) || !isDigitsOnly(b) {
			t.Fatalf("ParseID(%q) accepted something that is not <digits>-<digits>", s)
		}
		if id.GSeq < 0 || id.Seq < 0 {
			t.Fatalf("ParseID(%q) = %v: negative half", s, id)
		}
		if trimZeros(a) != strconv.FormatInt(id.GSeq, 10) || trimZeros(b) != strconv.FormatInt(id.Seq, 10) {
			t.Fatalf("ParseID(%q) = %v: not the numbers written", s, id)
		}
		back, ok := ParseID(id.String())
		if !ok || back != id {
			t.Fatalf("round trip of %v via %q: %v, %v", id, id.String(), back, ok)
		}
	})
}

func isDigitsOnly(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }

func trimZeros(s string) string {
	if t := strings.TrimLeft(s, "0"); t != "" {
		return t
	}
	return "0"
}
