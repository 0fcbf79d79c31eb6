package domain

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Text hygiene: what a client sends must be text every layer can store and
// show. PostgreSQL refuses three things Go lets through, and each used to be
// a 500 after a query failed: a NUL character (text and jsonb cannot hold
// U+0000), a lone UTF-16 surrogate escape such as "\ud800" in JSON (jsonb
// refuses it; encoding/json quietly turns it into U+FFFD when decoding, but
// a payload is stored as the JSON text that was sent), and a JSON number
// numeric cannot hold (1e-20000 is 0 to Go and an overflow to PostgreSQL).
// Invalid UTF-8 is refused too: PostgreSQL's UTF8 encoding rejects it and
// JSON (RFC 8259) requires UTF-8. These checks run before anything is
// stored and answer 422 (400 for a query parameter) naming the field.

// Bounds of a JSON number accepted in a body. A float64 needs at most 25
// characters; beyond an exponent of ±400 a float64 has nothing left to
// represent, and the scale such a literal asks of PostgreSQL's numeric
// (16,383 digits after the point at most) stays far inside its limit.
const (
	maxNumberLen      = 100
	maxNumberExponent = 400
)

// maxPathSegment bounds one object key as shown in a field path, so an
// error naming a field never echoes a huge key.
const maxPathSegment = 64

// CheckText reports whether s is storable text: valid UTF-8 without NUL.
// (Valid UTF-8 cannot encode a surrogate, so a Go string that passes has
// none.) The error is EUnprocessable and names field.
func CheckText(field, s string) error {
	if problem := textProblem(s); problem != "" {
		return textError(EUnprocessable, field, problem)
	}
	return nil
}

// CheckQueryText is CheckText for a query parameter, where a bad value is a
// malformed request (400) rather than a semantic error.
func CheckQueryText(field, s string) error {
	if problem := textProblem(s); problem != "" {
		return textError(EInvalid, field, problem)
	}
	return nil
}

func textProblem(s string) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8 text"
	}
	if strings.IndexByte(s, 0) >= 0 {
		return `contains a NUL character (\u0000), which cannot be stored`
	}
	return ""
}

func textError(code Code, field, problem string) *Error {
	return &Error{Code: code, Message: field + ": " + problem, Fields: map[string]any{"field": field}}
}

// CheckValue walks a decoded JSON value (as encoding/json builds it, or as
// Go code builds a payload by hand) and checks every string and object key
// with CheckText and every json.Number with the number bounds. The field of
// an element is field.key or field[i]; a bad key names the object holding
// it. Values of other types are left alone.
func CheckValue(field string, v any) error {
	switch x := v.(type) {
	case string:
		return CheckText(field, x)
	case json.Number:
		if problem := numberProblem(string(x)); problem != "" {
			return textError(EUnprocessable, field, problem)
		}
	case []string:
		for i, s := range x {
			if err := CheckText(fmt.Sprintf("%s[%d]", field, i), s); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range x {
			if err := CheckValue(fmt.Sprintf("%s[%d]", field, i), e); err != nil {
				return err
			}
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys) // a stable first problem
		for _, k := range keys {
			if problem := textProblem(k); problem != "" {
				return textError(EUnprocessable, field, "an object key "+problem)
			}
			if err := CheckValue(joinPath(field, k), x[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckJSONText scans a JSON document as sent, before or after it is
// decoded, for what decoding would hide: \u0000 escapes, unpaired surrogate
// escapes, invalid UTF-8 inside strings and keys, and numbers outside the
// bounds above. Field paths are relative to the document (`username`,
// `payload.services[1]`), and "body" is the document itself. It judges only
// text: a document that is not JSON is left to the decoder (nil here).
func CheckJSONText(raw []byte) error {
	s := &jsonScan{b: raw}
	s.space()
	err := s.value()
	if err == errJSONSyntax {
		return nil
	}
	return err
}

// errJSONSyntax stops a scan of malformed JSON: not our judgement to make.
var errJSONSyntax = fmt.Errorf("json syntax")

// maxScanDepth matches encoding/json's nesting limit: deeper documents are
// refused by the decoder anyway, so the scan never recurses further.
const maxScanDepth = 10000

type jsonScan struct {
	b    []byte
	i    int
	path []pathSeg
}

// pathSeg is one step of a field path: a raw object key (still quoted and
// escaped, decoded only for an error) or an array index.
type pathSeg struct {
	key   []byte
	index int
}

func (s *jsonScan) field() string {
	var sb strings.Builder
	for _, p := range s.path {
		if p.key == nil {
			fmt.Fprintf(&sb, "[%d]", p.index)
			continue
		}
		var k string
		if json.Unmarshal(p.key, &k) != nil {
			k = "?"
		}
		if sb.Len() > 0 {
			sb.WriteByte('.')
		}
		sb.WriteString(truncateSegment(k))
	}
	if sb.Len() == 0 {
		return "body"
	}
	return sb.String()
}

func (s *jsonScan) fail(problem string) error {
	return textError(EUnprocessable, s.field(), problem)
}

func (s *jsonScan) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScan) value() error {
	if s.i >= len(s.b) || len(s.path) > maxScanDepth {
		return errJSONSyntax
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object()
	case c == '[':
		return s.array()
	case c == '"':
		_, err := s.str("")
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	case c == 't' || c == 'f' || c == 'n':
		for s.i < len(s.b) && s.b[s.i] >= 'a' && s.b[s.i] <= 'z' {
			s.i++
		}
		return nil
	}
	return errJSONSyntax
}

func (s *jsonScan) object() error {
	s.i++ // {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	for {
		s.space()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return errJSONSyntax
		}
		start := s.i
		if _, err := s.str("an object key "); err != nil {
			return err
		}
		s.path = append(s.path, pathSeg{key: s.b[start:s.i]})
		s.space()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return errJSONSyntax
		}
		s.i++
		s.space()
		if err := s.value(); err != nil {
			return err
		}
		s.path = s.path[:len(s.path)-1]
		s.space()
		if s.i >= len(s.b) {
			return errJSONSyntax
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return errJSONSyntax
		}
	}
}

func (s *jsonScan) array() error {
	s.i++ // [
	s.space()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return nil
	}
	for n := 0; ; n++ {
		s.space()
		s.path = append(s.path, pathSeg{index: n})
		if err := s.value(); err != nil {
			return err
		}
		s.path = s.path[:len(s.path)-1]
		s.space()
		if s.i >= len(s.b) {
			return errJSONSyntax
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return errJSONSyntax
		}
	}
}

// str scans one string literal starting at its opening quote; what prefixes
// the problem ("an object key " for keys, so the error names the object).
func (s *jsonScan) str(what string) (bool, error) {
	s.i++ // "
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return true, nil
		case c < 0x20:
			return false, errJSONSyntax
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return false, errJSONSyntax
			}
			if s.b[s.i+1] != 'u' {
				s.i += 2
				continue
			}
			r, ok := s.hex4(s.i + 2)
			if !ok {
				return false, errJSONSyntax
			}
			escape := string(s.b[s.i : s.i+6])
			s.i += 6
			switch {
			case r == 0:
				return false, s.fail(what + `contains a NUL character (\u0000), which cannot be stored`)
			case utf16.IsSurrogate(r) && r < 0xdc00: // high: a low one must follow
				low, ok := rune(0), false
				if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
					low, ok = s.hex4(s.i + 2)
				}
				if !ok || utf16.DecodeRune(r, low) == utf8.RuneError {
					return false, s.fail(what + "contains an unpaired UTF-16 surrogate (" + escape + "), which is not a character")
				}
				s.i += 6
			case utf16.IsSurrogate(r): // a low one on its own
				return false, s.fail(what + "contains an unpaired UTF-16 surrogate (" + escape + "), which is not a character")
			}
		case c < utf8.RuneSelf:
			s.i++
		default:
			r, size := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && size <= 1 {
				return false, s.fail(what + "is not valid UTF-8 text")
			}
			s.i += size
		}
	}
	return false, errJSONSyntax
}

// hex4 reads the four hex digits of a \u escape at b[at:].
func (s *jsonScan) hex4(at int) (rune, bool) {
	if at+4 > len(s.b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(s.b[at:at+4]), 16, 32)
	return rune(v), err == nil
}

func (s *jsonScan) number() error {
	start := s.i
	for s.i < len(s.b) && strings.IndexByte("+-0123456789.eE", s.b[s.i]) >= 0 {
		s.i++
	}
	if problem := numberProblem(string(s.b[start:s.i])); problem != "" {
		return s.fail(problem)
	}
	return nil
}

// numberProblem judges a JSON number literal against the bounds above.
func numberProblem(lit string) string {
	shown := lit
	if len(shown) > 32 {
		shown = shown[:32] + "…"
	}
	bad := fmt.Sprintf("number %s is out of range (at most %d characters, an exponent within ±%d, finite as a 64-bit float)",
		shown, maxNumberLen, maxNumberExponent)
	if len(lit) > maxNumberLen {
		return bad
	}
	if i := strings.IndexAny(lit, "eE"); i >= 0 {
		exp, err := strconv.Atoi(lit[i+1:])
		if err != nil {
			return "" // malformed: the decoder's to refuse
		}
		if exp > maxNumberExponent || exp < -maxNumberExponent {
			return bad
		}
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil && !isRangeErr(err) {
		return "" // malformed: the decoder's to refuse
	}
	if err != nil || math.IsInf(f, 0) {
		return bad
	}
	return ""
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

func joinPath(field, key string) string {
	return field + "." + truncateSegment(key)
}

func truncateSegment(k string) string {
	if len(k) <= maxPathSegment {
		return k
	}
	cut := maxPathSegment
	for cut > 0 && !utf8.RuneStart(k[cut]) {
		cut--
	}
	return k[:cut] + "…"
}
