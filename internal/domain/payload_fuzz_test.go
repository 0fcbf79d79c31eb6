package domain

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzValidatePayload is the domain half of the enqueue decoder: the text
// scan of the body as sent, then ValidatePayload of the decoded payload.
// Properties: never a panic; every refusal is a 422 naming its field; the
// raw scan and the walker of decoded values agree (a payload the scan
// passes has no NUL and no invalid UTF-8 once decoded); and a payload the
// scan passes holds only text PostgreSQL can store: no \u0000 escape and no
// surrogate escape left unpaired.
func FuzzValidatePayload(f *testing.F) {
	for _, s := range []struct{ op, raw string }{
		{"add_lan", `{"name":"lab","subnet":"10.1.0.0/24"}`},
		{"add_lan", `{"name":"lab","subnet":"10.0.0.0/33"}`},
		{"add_lan", `{"name":"a\u0000b"}`},
		{"add_lan", `{"name":"\ud800"}`},
		{"add_lan", `{"name":"\udc00x"}`},
		{"add_lan", `{"name":"\ud83d\ude00"}`},
		{"add_lan", "{\"name\":\"\xff\"}"},
		{"add_lan", `{"name":"lab","x":1e-20000}`},
		{"add_lan", `{"name":"lab","x":1e308}`},
		{"add_decky", `{"name":"web","lan":"dmz","ip":"10.0.0.300","services":["ssh"]}`},
		{"add_decky", `{"name":"web","lan":"dmz","services":["nope"]}`},
		{"attach_decky", `{"decky":"web","lan":"lab","ip":"banana"}`},
		{"update_decky", `{"decky":"web","patch":{"service_config":{"nope":{}}}}`},
		{"update_decky", `{"decky":"web","patch":{"name":"x"}}`},
		{"update_lan", `{"name":"lab","patch":{"subnet":"1.2.3.4/5/6"}}`},
		{"update_lan", `{"name":"lab","patch":{"\u0000":1}}`},
		{"remove_lan", `{"name":"lab","extra":{"k":["\u0000"]}}`},
	} {
		f.Add(s.op, s.raw)
	}
	f.Fuzz(func(t *testing.T, op, raw string) {
		scanErr := CheckJSONText([]byte(raw))
		checkRefusal(t, scanErr, raw)
		var payload map[string]any
		if json.Unmarshal([]byte(raw), &payload) != nil {
			return
		}
		if scanErr == nil {
			if err := CheckValue("payload", payload); err != nil {
				t.Fatalf("scan passed %q but the decoded value fails: %v", raw, err)
			}
			if hasUnpairedOrNULEscape(raw) {
				t.Fatalf("scan passed %q with a \\u0000 or unpaired surrogate escape", raw)
			}
			if !utf8.ValidString(raw) {
				t.Fatalf("scan passed invalid UTF-8 %q", raw)
			}
		}
		checkRefusal(t, ValidatePayload(Op(op), payload), raw)
	})
}

func checkRefusal(t *testing.T, err error, raw string) {
	t.Helper()
	if err == nil {
		return
	}
	e, ok := err.(*Error)
	if !ok || e.Code != EUnprocessable {
		t.Fatalf("%q: %v (%T), want a 422 *Error", raw, err, err)
	}
	if strings.HasPrefix(e.Message, "unknown op") {
		return
	}
	field, _ := e.Fields["field"].(string)
	if field == "" || !strings.HasPrefix(e.Message, field+": ") {
		t.Fatalf("%q: %q does not name its field (%v)", raw, e.Message, e.Fields)
	}
}

// hasUnpairedOrNULEscape is a slow, independent reading of the escapes of a
// JSON text that is known to be valid.
func hasUnpairedOrNULEscape(raw string) bool {
	var units []uint16
	flush := func() bool {
		for i := 0; i < len(units); i++ {
			u := units[i]
			switch {
			case u == 0:
				return true
			case u >= 0xd800 && u < 0xdc00:
				if i+1 >= len(units) || units[i+1] < 0xdc00 || units[i+1] > 0xdfff {
					return true
				}
				i++
			case u >= 0xdc00 && u <= 0xdfff:
				return true
			}
		}
		units = units[:0]
		return false
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' || i+1 >= len(raw) {
			if flush() {
				return true
			}
			continue
		}
		if raw[i+1] != 'u' || i+6 > len(raw) {
			if flush() {
				return true
			}
			i++
			continue
		}
		var v uint16
		for _, c := range raw[i+2 : i+6] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= uint16(c - '0')
			case c >= 'a' && c <= 'f':
				v |= uint16(c-'a') + 10
			case c >= 'A' && c <= 'F':
				v |= uint16(c-'A') + 10
			}
		}
		units = append(units, v)
		i += 5
	}
	return flush()
}
