package sse

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/decnet/mazenet/internal/stream"
)

// FuzzResumeID sends arbitrary resume ids the two ways a client can: the
// Last-Event-ID header and the lastEventId query parameter (raw, so broken
// escapes and NULs reach the parser). Properties: never a panic; the header
// wins when it is set; an id is resumed from exactly when stream.ParseID
// accepts the text, and then it is that id.
func FuzzResumeID(f *testing.F) {
	for _, s := range [][2]string{
		{"5-3", ""}, {"", "5-3"}, {"5-3", "7-1"}, {"", "%00"}, {"", "%ff%fe"}, {"", "1-0%00"},
		{"", "%"}, {"", "%zz"}, {"", "1-0&lastEventId=2-0"}, {"garbage", "5-3"}, {"", "9223372036854775808-0"},
		{"1-0", "%ed%a0%80"}, {"", "+1-0"}, {"", "1%2D0"}, {"", "\xed\xa0\x80"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, header, rawQuery string) {
		r := httptest.NewRequest(http.MethodGet, "/api/v1/stream", nil)
		r.URL.RawQuery = "lastEventId=" + rawQuery
		// Only values net/http would deliver: no CR, LF or NUL in a header.
		if httpValidHeader(header) && header != "" {
			r.Header.Set("Last-Event-ID", header)
		}
		got := resumeID(r)

		text := r.Header.Get("Last-Event-ID")
		if text == "" {
			q, _ := url.ParseQuery(r.URL.RawQuery)
			text = q.Get("lastEventId")
		}
		want, ok := stream.ParseID(text)
		switch {
		case !ok && got != nil:
			t.Fatalf("resumed from %v for %q", *got, text)
		case ok && (got == nil || *got != want):
			t.Fatalf("resume id for %q = %v, want %v", text, got, want)
		}
	})
}

// httpValidHeader reports whether net/http would let v through as a header
// value (no control bytes other than tab).
func httpValidHeader(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
