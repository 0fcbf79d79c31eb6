package domain

import (
	"encoding/json"
	"fmt"
	"strings"
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

// ValidatePayload checks an op's payload at enqueue (DOMAIN §6.1, Deviation
// D2): every string and key is storable text (CheckValue); required keys are
// present with the right JSON type, optional keys absent, null or of the
// right type; unknown keys are ignored. It also enforces D10 (update_decky
// may not patch name or ips_by_lan) and the closed patch key set of
// update_lan. Then D2 extended: what no state can make valid is refused
// here too, with the post-apply code: the syntax of `subnet`
// (SUBNET_MALFORMED), of `ip` (IP_MALFORMED) and service names outside the
// catalog (UNKNOWN_SERVICE), by the very rules the post-apply checks use.
// State-dependent semantics (does the LAN exist, clashes, overlaps) are left
// to apply time, because earlier queued mutations may change the state.
// Errors are EUnprocessable *Error values naming the field in the message
// and in Fields["field"]; the D2-extended ones carry the code in the message
// and in Fields["code"].
func ValidatePayload(op Op, payload map[string]any) error {
	if err := validateShape(op, payload); err != nil {
		return err
	}
	patch, _ := payload["patch"].(map[string]any)
	return checkPayloadSyntax(op, payload, patch)
}

// validateShape is ValidatePayload without D2 extended: what ApplyOp checks,
// so a mutation queued before the enqueue check existed still fails at apply
// with the post-apply code, as it always did.
func validateShape(op Op, payload map[string]any) error {
	specs, ok := payloadSpecs[op]
	if !ok {
		return Errorf(EUnprocessable, "unknown op: '%s'", op)
	}
	if err := CheckValue("payload", payload); err != nil {
		return err
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

// checkPayloadSyntax is D2 extended (DOMAIN §4.2): the values no state can
// make valid. Shapes were checked already, so a present key has its kind.
func checkPayloadSyntax(op Op, payload, patch map[string]any) error {
	switch op {
	case OpAddLAN:
		return checkSubnetSyntax("payload.subnet", payload["subnet"])
	case OpUpdateLAN:
		return checkSubnetSyntax("payload.patch.subnet", patch["subnet"])
	case OpAddDecky, OpAttachDecky:
		if ip, ok := payload["ip"].(string); ok {
			if _, ok := wellFormedIP(ip); !ok {
				return syntaxError("payload.ip", IssueIPMalformed, fmt.Sprintf("%s is not an IPv4 address (e.g. 10.0.1.5)", quoteValue(ip)))
			}
		}
	}
	if op == OpAddDecky || op == OpUpdateDecky {
		services, _ := toStrings(payload["services"])
		for i, svc := range services {
			if !IsDeckyService(svc) {
				return syntaxError(fmt.Sprintf("payload.services[%d]", i), IssueUnknownService, unknownServiceText(svc))
			}
		}
	}
	if op == OpUpdateDecky {
		// A config for a service outside the catalog can never be valid:
		// the service is either undeclared or unknown.
		cfg, _ := patch["service_config"].(map[string]any)
		for _, svc := range sortedKeys(cfg) {
			if !IsDeckyService(svc) {
				return syntaxError(joinPath("payload.patch.service_config", svc), IssueUnknownService, unknownServiceText(svc))
			}
		}
	}
	return nil
}

func checkSubnetSyntax(field string, v any) error {
	s, ok := v.(string)
	if !ok {
		return nil // absent or null: auto-allocated, or not patched
	}
	if _, ok := wellFormedSubnet(s); !ok {
		return syntaxError(field, IssueSubnetMalformed,
			fmt.Sprintf("%s is not an IPv4 network (write a.b.c.d/n with n from 0 to 32 and the host bits zero, e.g. 10.0.1.0/24)", quoteValue(s)))
	}
	return nil
}

func unknownServiceText(svc string) string {
	return fmt.Sprintf("%s is not a service a decky can run; the catalog has %s", quoteValue(svc), strings.Join(ServiceNames(), ", "))
}

// syntaxError is a D2-extended refusal: the post-apply issue code in the
// message and in Fields["code"], the field named.
func syntaxError(field, code, problem string) *Error {
	return &Error{
		Code:    EUnprocessable,
		Message: fmt.Sprintf("%s: %s: %s", field, code, problem),
		Fields:  map[string]any{"field": field, "code": code},
	}
}

// quoteValue shows a refused value in single quotes, cut to 64 bytes so an
// error never echoes a huge input.
func quoteValue(s string) string {
	return "'" + truncateSegment(s) + "'"
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
