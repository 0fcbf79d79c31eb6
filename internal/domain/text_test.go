package domain

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckJSONText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		raw       string
		wantField string // "" means accepted
		wantText  string
	}{
		{name: "plain", raw: `{"name":"lab","n":[1,2.5,-3e2],"ok":true,"z":null}`},
		{name: "escapes", raw: `{"a":"\"\\\/\b\f\n\r\t\u0041\u00e9\ud83d\ude00"}`},
		{name: "raw non-ASCII", raw: `{"name":"réseau ✓ 🙂"}`},
		{name: "U+FFFD itself is text", raw: `{"a":"\ufffd"}`},
		{name: "control escape other than NUL", raw: `{"a":"\u0001"}`},
		{name: "not JSON is the decoder's", raw: `{"a":`},
		{name: "empty", raw: ``},
		{name: "NUL escape", raw: `{"username":"ad\u0000min"}`, wantField: "username", wantText: `NUL character`},
		{name: "NUL escape upper case", raw: `{"a":"\U0000"}`}, // not an escape JSON knows: the decoder refuses it
		{name: "NUL in nested array", raw: `{"payload":{"services":["ssh","\u0000"]}}`, wantField: "payload.services[1]", wantText: "NUL"},
		{name: "NUL in a key", raw: `{"payload":{"a\u0000":1}}`, wantField: "payload", wantText: "an object key contains a NUL"},
		{name: "NUL at top level", raw: `"\u0000"`, wantField: "body", wantText: "NUL"},
		{name: "lone high surrogate", raw: `{"payload":{"name":"\ud800"}}`, wantField: "payload.name", wantText: `unpaired UTF-16 surrogate (\ud800)`},
		{name: "lone high surrogate at end", raw: `{"a":"x\uD800"}`, wantField: "a", wantText: "unpaired"},
		{name: "high then high", raw: `{"a":"\ud800\ud800\udc00"}`, wantField: "a", wantText: "unpaired"},
		{name: "high then NUL", raw: `{"a":"\ud800\u0000"}`, wantField: "a", wantText: "unpaired"},
		{name: "lone low surrogate", raw: `{"a":"\udc00"}`, wantField: "a", wantText: `(\udc00)`},
		{name: "surrogate in key", raw: `{"\ud800":1}`, wantField: "body", wantText: "an object key contains an unpaired"},
		{name: "invalid UTF-8", raw: "{\"a\":\"\xff\"}", wantField: "a", wantText: "not valid UTF-8"},
		{name: "UTF-8 encoded surrogate", raw: "{\"a\":\"\xed\xa0\x80\"}", wantField: "a", wantText: "not valid UTF-8"},
		{name: "number underflows numeric", raw: `{"x":1e-20000}`, wantField: "x", wantText: "out of range"},
		{name: "zero with huge exponent", raw: `{"x":0e-20000}`, wantField: "x", wantText: "out of range"},
		{name: "number overflows float64", raw: `{"x":1e309}`, wantField: "x", wantText: "out of range"},
		{name: "very long number", raw: `{"x":[1` + strings.Repeat("0", 120) + `]}`, wantField: "x[0]", wantText: "out of range"},
		{name: "edge exponents", raw: `[1e-400,1e300,5e-324,-0,0.1]`},
		{name: "long key is cut in the path", raw: `{"` + strings.Repeat("k", 100) + `":"\u0000"}`, wantField: strings.Repeat("k", 64) + "…", wantText: "NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := CheckJSONText([]byte(tt.raw))
			if tt.wantField == "" {
				require.NoError(t, err)
				return
			}
			var e *Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, EUnprocessable, e.Code)
			require.Equal(t, tt.wantField, e.Fields["field"])
			require.True(t, strings.HasPrefix(e.Message, tt.wantField+": "), e.Message)
			require.Contains(t, e.Message, tt.wantText)
		})
	}
}

func TestCheckValue(t *testing.T) {
	t.Parallel()
	require.NoError(t, CheckValue("p", map[string]any{"a": []any{"x", 1.0, map[string]any{"b": "ü"}}, "c": []string{"d"}}))
	err := CheckValue("p", map[string]any{"a": []any{"x", map[string]any{"b": "\x00"}}})
	require.EqualError(t, err, `p.a[1].b: contains a NUL character (\u0000), which cannot be stored`)
	require.Equal(t, "p.a[1].b", err.(*Error).Fields["field"])
	require.EqualError(t, CheckValue("p", []string{"ok", "\xff"}), "p[1]: is not valid UTF-8 text")
	require.EqualError(t, CheckValue("p", map[string]any{"\x00": 1}), `p: an object key contains a NUL character (\u0000), which cannot be stored`)
	require.EqualError(t, CheckValue("p", json.Number("1e-20000")), "p: number 1e-20000 is out of range (at most 100 characters, an exponent within ±400, finite as a 64-bit float)")
	require.NoError(t, CheckValue("p", json.Number("1e-400")))
}

func TestCheckQueryText(t *testing.T) {
	t.Parallel()
	require.NoError(t, CheckQueryText("query.state", "applied"))
	err := CheckQueryText("query.state", "\x00")
	require.Equal(t, EInvalid, ErrorCode(err))
	require.EqualError(t, err, `query.state: contains a NUL character (\u0000), which cannot be stored`)
	require.Equal(t, EInvalid, ErrorCode(CheckQueryText("query.state", "\xed\xa0\x80")))
}
