package domain

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzApplyOp runs any op with any JSON payload against the fixture
// topology. Properties: never a panic; the view passed in is never
// modified; a rejected op returns no result and an EUnprocessable error
// (nothing internal); an accepted op's view passes the post-apply checks;
// and the enqueue check agrees with apply time on the syntax rules of D2
// extended: a payload ValidatePayload accepts never fails at apply with
// SUBNET_MALFORMED, IP_MALFORMED or UNKNOWN_SERVICE (the fixture's own
// LANs and deckies are well-formed, so only the payload could cause them).
func FuzzApplyOp(f *testing.F) {
	seeds := []struct{ op, payload string }{
		{"add_lan", `{"name":"new"}`},
		{"add_lan", `{"name":"new","subnet":"10.9.0.0/24","is_dmz":true,"x":1,"y":2}`},
		{"add_lan", `{"name":"new","subnet":"10.0.0.0/33"}`},
		{"add_lan", `{"name":"new","subnet":"10.9.0.1/24"}`},
		{"add_lan", `{"name":"new","subnet":"banana"}`},
		{"add_lan", `{"name":"dmz"}`},
		{"add_lan", `{"name":"a\u0000b"}`},
		{"add_lan", `{"name":"\ud800"}`},
		{"remove_lan", `{"name":"spare"}`},
		{"remove_lan", `{"name":"dmz"}`},
		{"add_decky", `{"name":"n","lan":"spare","services":["ssh","http"],"ip":"10.0.3.9"}`},
		{"add_decky", `{"name":"n","lan":"spare","ip":"10.0.3.300"}`},
		{"add_decky", `{"name":"n","lan":"spare","ip":"::1"}`},
		{"add_decky", `{"name":"n","lan":"spare","services":["sniffer"]}`},
		{"add_decky", `{"name":"n","lan":"spare","services":["nope"]}`},
		{"add_decky", `{"name":"n","lan":"tiny"}`},
		{"attach_decky", `{"decky":"db","lan":"spare","ip":"10.0.3.7","forwards_l3":true}`},
		{"attach_decky", `{"decky":"db","lan":"spare","ip":"10.0.3"}`},
		{"detach_decky", `{"decky":"web","lan":"lab"}`},
		{"remove_decky", `{"decky":"gw"}`},
		{"update_decky", `{"decky":"web","services":["http","ssh"],"x":3}`},
		{"update_decky", `{"decky":"web","services":["telnetz"]}`},
		{"update_decky", `{"decky":"db","patch":{"forwards_l3":true},"force":true}`},
		{"update_decky", `{"decky":"web","patch":{"service_config":{"nope":{}}}}`},
		{"update_decky", `{"decky":"web","patch":{"name":"x"}}`},
		{"update_lan", `{"name":"spare","patch":{"name":"renamed","x":1}}`},
		{"update_lan", `{"name":"spare","patch":{"subnet":"10.0.0.0/8"}}`},
		{"update_lan", `{"name":"spare","patch":{"subnet":"10.0.0.0/8/8"}}`},
		{"explode", `{}`},
	}
	for _, s := range seeds {
		f.Add(s.op, s.payload)
	}
	f.Fuzz(func(t *testing.T, op, raw string) {
		var payload map[string]any
		if json.Unmarshal([]byte(raw), &payload) != nil {
			return
		}
		h := fixture()
		before := h.Clone()
		res, err := ApplyOp(h, Op(op), payload, testEnv())
		if !reflect.DeepEqual(h, before) {
			t.Fatalf("%s %s modified the view it was given", op, raw)
		}
		if err != nil {
			if res != nil {
				t.Fatalf("%s %s: error %v with a result", op, raw, err)
			}
			if ErrorCode(err) != EUnprocessable {
				t.Fatalf("%s %s: %v (code %s), want an op rejection", op, raw, err, ErrorCode(err))
			}
			if ValidatePayload(Op(op), payload) == nil {
				for _, code := range []string{IssueSubnetMalformed, IssueIPMalformed, IssueUnknownService} {
					if containsCode(err.Error(), code) {
						t.Fatalf("%s %s passed the enqueue check but failed at apply with %s: %v", op, raw, code, err)
					}
				}
			}
			return
		}
		if res == nil || res.After == nil {
			t.Fatalf("%s %s: no error and no result", op, raw)
		}
		if res.Changed {
			if perr := PostApplyError(h.Topology.ID, Validate(res.After, false)); perr != nil {
				t.Fatalf("%s %s: accepted view fails post-apply: %v", op, raw, perr)
			}
		}
	})
}

func containsCode(msg, code string) bool {
	for i := 0; i+len(code) <= len(msg); i++ {
		if msg[i:i+len(code)] == code {
			return true
		}
	}
	return false
}
