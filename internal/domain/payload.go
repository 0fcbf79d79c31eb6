package domain

import (
	"encoding/json"
	"fmt"
)

// JSON kinds a payload key can be required to have.
type kind int

const (
	kindName    kind = iota // non-empty string
	kindString              // any string
	kindBool                // true or false
	kindNumber              // any JSON number
	kindStrings             // array of strings
	kindObject              // JSON object
)

func (k kind) describe() string {
	switch k {
	case kindName:
		return "a non-empty string"
	case kindString:
		return "a string"
	case kindBool:
		return "a boolean"
	case kindNumber:
		return "a number"
	case kindStrings:
		return "an array of strings"
	}
	return "an object"
}

// keySpec is one payload key of an op's table in DOMAIN §6. Every required
// key is a name (a non-empty string).
type keySpec struct {
	key      string
	kind     kind
	required bool
}

// payloadSpecs lists each op's keys in the order they are checked, so the
// first problem reported is stable.
var payloadSpecs = map[Op][]keySpec{
	OpAddLAN: {
		{"name", kindName, true}, {"subnet", kindString, false}, {"is_dmz", kindBool, false},
		{"x", kindNumber, false}, {"y", kindNumber, false},
	},
	OpRemoveLAN: {{"name", kindName, true}},
	OpAddDecky: {
		{"name", kindName, true}, {"lan", kindName, true}, {"services", kindStrings, false},
		{"archetype", kindString, false}, {"forwards_l3", kindBool, false}, {"ip", kindString, false},
		{"x", kindNumber, false}, {"y", kindNumber, false},
	},
	OpAttachDecky: {
		{"decky", kindName, true}, {"lan", kindName, true}, {"ip", kindString, false},
		{"forwards_l3", kindBool, false},
	},
	OpDetachDecky: {{"decky", kindName, true}, {"lan", kindName, true}},
	OpRemoveDecky: {{"decky", kindName, true}},
	OpUpdateDecky: {
		{"decky", kindName, true}, {"patch", kindObject, false}, {"services", kindStrings, false},
		{"x", kindNumber, false}, {"y", kindNumber, false}, {"force", kindBool, false},
	},
	OpUpdateLAN: {
		{"name", kindName, true}, {"patch", kindObject, false},
		{"x", kindNumber, false}, {"y", kindNumber, false},
	},
}

// updateLANPatch is the closed key set of an update_lan patch (DOMAIN §6.9).
// A new LAN name must be non-empty: a LAN named "" could never be addressed.
var updateLANPatch = map[string]kind{
	"name": kindName, "subnet": kindString, "is_dmz": kindBool, "x": kindNumber, "y": kindNumber,
}

// ValidatePayload checks the shape of an op's payload at enqueue (DOMAIN
// §6.1, Deviation D2): required keys present with the right JSON type,
// optional keys absent, null or of the right type; unknown keys are ignored.
// Value semantics (does the LAN exist, is the IP well-formed) are left to
// apply time, because earlier queued mutations may change them. It also
// enforces D10 (update_decky may not patch name or ips_by_lan) and the
// closed patch key set of update_lan. Errors are EUnprocessable *Error values
// naming the field in the message and in Fields["field"].
func ValidatePayload(op Op, payload map[string]any) error {
	specs, ok := payloadSpecs[op]
	if !ok {
		return Errorf(EUnprocessable, "unknown op: '%s'", op)
	}
	for _, s := range specs {
		v, present := payload[s.key]
		if !present || v == nil {
			if s.required {
				return payloadError("payload."+s.key, "required string")
			}
			continue
		}
		if !hasKind(v, s.kind) {
			return payloadError("payload."+s.key, "must be "+s.kind.describe())
		}
	}
	patch, _ := payload["patch"].(map[string]any)
	switch op {
	case OpUpdateDecky:
		for _, k := range []string{"name", "ips_by_lan"} {
			if _, bad := patch[k]; bad {
				return payloadError("payload.patch."+k, "cannot be patched; decky names and LAN addresses are managed by the ops")
			}
		}
		if v := patch["forwards_l3"]; v != nil && !hasKind(v, kindBool) {
			return payloadError("payload.patch.forwards_l3", "must be a boolean")
		}
	case OpUpdateLAN:
		for _, k := range sortedKeys(patch) {
			want, known := updateLANPatch[k]
			if !known {
				return payloadError("payload.patch."+k, "unknown key; allowed keys are is_dmz, name, subnet, x, y")
			}
			if v := patch[k]; v != nil && !hasKind(v, want) {
				return payloadError("payload.patch."+k, "must be "+want.describe())
			}
		}
	}
	return nil
}

func payloadError(field, problem string) *Error {
	return &Error{
		Code:    EUnprocessable,
		Message: fmt.Sprintf("%s: %s", field, problem),
		Fields:  map[string]any{"field": field},
	}
}

// hasKind reports whether v, as decoded by encoding/json (or built by hand
// in Go), has kind k.
func hasKind(v any, k kind) bool {
	switch k {
	case kindName:
		s, ok := v.(string)
		return ok && s != ""
	case kindString:
		_, ok := v.(string)
		return ok
	case kindBool:
		_, ok := v.(bool)
		return ok
	case kindNumber:
		_, ok := toFloat(v)
		return ok
	case kindStrings:
		_, ok := toStrings(v)
		return ok
	case kindObject:
		_, ok := v.(map[string]any)
		return ok
	}
	return false
}

// toFloat reads a JSON number; ints are accepted for payloads built in Go.
func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

// toStrings reads a JSON array whose elements are all strings.
func toStrings(v any) ([]string, bool) {
	switch a := v.(type) {
	case []string:
		return append([]string{}, a...), true
	case []any:
		out := make([]string, 0, len(a))
		for _, e := range a {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}
