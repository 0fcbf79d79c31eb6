package domain

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidatePayload(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		op        Op
		payload   string
		wantField string // "" means the payload is accepted
		wantCode  string // the post-apply code of a D2-extended refusal
	}{
		{name: "add_lan minimal", op: OpAddLAN, payload: `{"name":"lab"}`},
		{name: "add_lan full", op: OpAddLAN, payload: `{"name":"lab","subnet":"10.1.0.0/24","is_dmz":true,"x":1.5,"y":-2,"extra":[1]}`},
		{name: "add_lan nulls are absent", op: OpAddLAN, payload: `{"name":"lab","subnet":null,"is_dmz":null,"x":null,"y":null}`},
		{name: "add_lan missing name", op: OpAddLAN, payload: `{}`, wantField: "payload.name"},
		{name: "add_lan null name", op: OpAddLAN, payload: `{"name":null}`, wantField: "payload.name"},
		{name: "add_lan empty name", op: OpAddLAN, payload: `{"name":""}`, wantField: "payload.name"},
		{name: "add_lan numeric name", op: OpAddLAN, payload: `{"name":7}`, wantField: "payload.name"},
		{name: "add_lan subnet not string", op: OpAddLAN, payload: `{"name":"lab","subnet":24}`, wantField: "payload.subnet"},
		{name: "add_lan is_dmz not bool", op: OpAddLAN, payload: `{"name":"lab","is_dmz":"true"}`, wantField: "payload.is_dmz"},
		{name: "add_lan x not number", op: OpAddLAN, payload: `{"name":"lab","x":"1"}`, wantField: "payload.x"},
		{name: "add_lan y not number", op: OpAddLAN, payload: `{"name":"lab","y":true}`, wantField: "payload.y"},

		{name: "remove_lan ok", op: OpRemoveLAN, payload: `{"name":"lab"}`},
		{name: "remove_lan missing name", op: OpRemoveLAN, payload: `{"lan":"lab"}`, wantField: "payload.name"},

		{name: "add_decky minimal", op: OpAddDecky, payload: `{"name":"web","lan":"dmz"}`},
		{name: "add_decky full", op: OpAddDecky, payload: `{"name":"web","lan":"dmz","services":["ssh"],"archetype":"linux-server","forwards_l3":false,"ip":"10.0.0.9","x":1,"y":2}`},
		{name: "add_decky empty services", op: OpAddDecky, payload: `{"name":"web","lan":"dmz","services":[]}`},
		{name: "add_decky missing lan", op: OpAddDecky, payload: `{"name":"web"}`, wantField: "payload.lan"},
		{name: "add_decky empty lan", op: OpAddDecky, payload: `{"name":"web","lan":""}`, wantField: "payload.lan"},
		{name: "add_decky missing name", op: OpAddDecky, payload: `{"lan":"dmz"}`, wantField: "payload.name"},
		{name: "add_decky services not array", op: OpAddDecky, payload: `{"name":"web","lan":"dmz","services":"ssh"}`, wantField: "payload.services"},
		{name: "add_decky services with a number", op: OpAddDecky, payload: `{"name":"web","lan":"dmz","services":["ssh",1]}`, wantField: "payload.services"},
		{name: "add_decky archetype not string", op: OpAddDecky, payload: `{"name":"web","lan":"dmz","archetype":{}}`, wantField: "payload.archetype"},
		{name: "add_decky forwards_l3 not bool", op: OpAddDecky, payload: `{"name":"web","lan":"dmz","forwards_l3":1}`, wantField: "payload.forwards_l3"},
		{name: "add_decky ip not string", op: OpAddDecky, payload: `{"name":"web","lan":"dmz","ip":10}`, wantField: "payload.ip"},

		{name: "attach_decky ok", op: OpAttachDecky, payload: `{"decky":"web","lan":"lab","ip":"10.0.2.9","forwards_l3":true}`},
		{name: "attach_decky missing decky", op: OpAttachDecky, payload: `{"lan":"lab"}`, wantField: "payload.decky"},
		{name: "attach_decky missing lan", op: OpAttachDecky, payload: `{"decky":"web"}`, wantField: "payload.lan"},
		{name: "attach_decky forwards_l3 string", op: OpAttachDecky, payload: `{"decky":"web","lan":"lab","forwards_l3":"yes"}`, wantField: "payload.forwards_l3"},

		{name: "detach_decky ok", op: OpDetachDecky, payload: `{"decky":"web","lan":"lab"}`},
		{name: "detach_decky missing lan", op: OpDetachDecky, payload: `{"decky":"web"}`, wantField: "payload.lan"},

		{name: "remove_decky ok", op: OpRemoveDecky, payload: `{"decky":"web"}`},
		{name: "remove_decky missing", op: OpRemoveDecky, payload: `{"name":"web"}`, wantField: "payload.decky"},

		{name: "update_decky decky only", op: OpUpdateDecky, payload: `{"decky":"web"}`},
		{name: "update_decky full", op: OpUpdateDecky, payload: `{"decky":"web","patch":{"forwards_l3":true,"service_config":{}},"services":[],"x":1,"y":2,"force":true}`},
		{name: "update_decky patch forwards_l3 null", op: OpUpdateDecky, payload: `{"decky":"web","patch":{"forwards_l3":null}}`},
		{name: "update_decky missing decky", op: OpUpdateDecky, payload: `{"patch":{}}`, wantField: "payload.decky"},
		{name: "update_decky patch not object", op: OpUpdateDecky, payload: `{"decky":"web","patch":[]}`, wantField: "payload.patch"},
		{name: "update_decky D10 name", op: OpUpdateDecky, payload: `{"decky":"web","patch":{"name":"other"}}`, wantField: "payload.patch.name"},
		{name: "update_decky D10 ips_by_lan", op: OpUpdateDecky, payload: `{"decky":"web","patch":{"ips_by_lan":{}}}`, wantField: "payload.patch.ips_by_lan"},
		{name: "update_decky D10 null name is still rejected", op: OpUpdateDecky, payload: `{"decky":"web","patch":{"name":null}}`, wantField: "payload.patch.name"},
		{name: "update_decky patch forwards_l3 string", op: OpUpdateDecky, payload: `{"decky":"web","patch":{"forwards_l3":"true"}}`, wantField: "payload.patch.forwards_l3"},
		{name: "update_decky services not array", op: OpUpdateDecky, payload: `{"decky":"web","services":{}}`, wantField: "payload.services"},
		{name: "update_decky force not bool", op: OpUpdateDecky, payload: `{"decky":"web","force":"true"}`, wantField: "payload.force"},

		{name: "update_lan full", op: OpUpdateLAN, payload: `{"name":"lab","patch":{"name":"lab2","subnet":"10.9.0.0/24","is_dmz":false,"x":1,"y":2},"x":3,"y":4}`},
		{name: "update_lan patch nulls", op: OpUpdateLAN, payload: `{"name":"lab","patch":{"x":null}}`},
		{name: "update_lan missing name", op: OpUpdateLAN, payload: `{"patch":{"x":1}}`, wantField: "payload.name"},
		{name: "update_lan unknown patch key", op: OpUpdateLAN, payload: `{"name":"lab","patch":{"docker_network_id":"n"}}`, wantField: "payload.patch.docker_network_id"},
		{name: "update_lan patch is_dmz string", op: OpUpdateLAN, payload: `{"name":"lab","patch":{"is_dmz":"no"}}`, wantField: "payload.patch.is_dmz"},
		{name: "update_lan patch empty name", op: OpUpdateLAN, payload: `{"name":"lab","patch":{"name":""}}`, wantField: "payload.patch.name"},
		{name: "update_lan patch x string", op: OpUpdateLAN, payload: `{"name":"lab","patch":{"x":"1"}}`, wantField: "payload.patch.x"},
		{name: "update_lan top-level y string", op: OpUpdateLAN, payload: `{"name":"lab","y":"1"}`, wantField: "payload.y"},

		// D2 extended (DOMAIN §4.2): what no state can make valid.
		{name: "add_lan subnet banana", op: OpAddLAN, payload: `{"name":"lab","subnet":"banana"}`, wantField: "payload.subnet", wantCode: IssueSubnetMalformed},
		{name: "add_lan subnet /33", op: OpAddLAN, payload: `{"name":"lab","subnet":"10.0.0.0/33"}`, wantField: "payload.subnet", wantCode: IssueSubnetMalformed},
		{name: "add_lan subnet host bits", op: OpAddLAN, payload: `{"name":"lab","subnet":"10.8.0.5/24"}`, wantField: "payload.subnet", wantCode: IssueSubnetMalformed},
		{name: "add_lan subnet IPv6", op: OpAddLAN, payload: `{"name":"lab","subnet":"fd00::/64"}`, wantField: "payload.subnet", wantCode: IssueSubnetMalformed},
		{name: "add_lan subnet empty", op: OpAddLAN, payload: `{"name":"lab","subnet":""}`, wantField: "payload.subnet", wantCode: IssueSubnetMalformed},
		{name: "add_lan subnet double mask", op: OpAddLAN, payload: `{"name":"lab","subnet":"10.0.0.0/8/8"}`, wantField: "payload.subnet", wantCode: IssueSubnetMalformed},
		{name: "add_lan subnet /32 host", op: OpAddLAN, payload: `{"name":"lab","subnet":"10.0.0.7/32"}`},
		{name: "add_lan subnet dotted mask", op: OpAddLAN, payload: `{"name":"lab","subnet":"10.1.0.0/255.255.0.0"}`},
		{name: "add_lan subnet bare address", op: OpAddLAN, payload: `{"name":"lab","subnet":"10.1.0.0"}`},
		{name: "update_lan patch subnet malformed", op: OpUpdateLAN, payload: `{"name":"lab","patch":{"subnet":"10.0.0.0/33"}}`, wantField: "payload.patch.subnet", wantCode: IssueSubnetMalformed},
		{name: "update_lan patch subnet well-formed", op: OpUpdateLAN, payload: `{"name":"lab","patch":{"subnet":"10.9.0.0/24"}}`},
		{name: "update_lan patch subnet null", op: OpUpdateLAN, payload: `{"name":"lab","patch":{"subnet":null}}`},
		{name: "add_decky ip banana", op: OpAddDecky, payload: `{"name":"web","lan":"dmz","ip":"banana"}`, wantField: "payload.ip", wantCode: IssueIPMalformed},
		{name: "add_decky ip octet 300", op: OpAddDecky, payload: `{"name":"web","lan":"dmz","ip":"10.0.0.300"}`, wantField: "payload.ip", wantCode: IssueIPMalformed},
		{name: "add_decky ip with mask", op: OpAddDecky, payload: `{"name":"web","lan":"dmz","ip":"10.0.0.3/24"}`, wantField: "payload.ip", wantCode: IssueIPMalformed},
		{name: "add_decky ip IPv6", op: OpAddDecky, payload: `{"name":"web","lan":"dmz","ip":"::1"}`, wantField: "payload.ip", wantCode: IssueIPMalformed},
		{name: "add_decky ip empty", op: OpAddDecky, payload: `{"name":"web","lan":"dmz","ip":""}`, wantField: "payload.ip", wantCode: IssueIPMalformed},
		{name: "add_decky ip null", op: OpAddDecky, payload: `{"name":"web","lan":"dmz","ip":null}`},
		{name: "attach_decky ip three octets", op: OpAttachDecky, payload: `{"decky":"web","lan":"lab","ip":"10.0.2"}`, wantField: "payload.ip", wantCode: IssueIPMalformed},
		{name: "attach_decky ip leading zero", op: OpAttachDecky, payload: `{"decky":"web","lan":"lab","ip":"10.0.2.09"}`, wantField: "payload.ip", wantCode: IssueIPMalformed},
		{name: "add_decky unknown service", op: OpAddDecky, payload: `{"name":"web","lan":"dmz","services":["ssh","nope"]}`, wantField: "payload.services[1]", wantCode: IssueUnknownService},
		{name: "add_decky fleet singleton", op: OpAddDecky, payload: `{"name":"web","lan":"dmz","services":["sniffer"]}`, wantField: "payload.services[0]", wantCode: IssueUnknownService},
		{name: "add_decky service case matters", op: OpAddDecky, payload: `{"name":"web","lan":"dmz","services":["SSH"]}`, wantField: "payload.services[0]", wantCode: IssueUnknownService},
		{name: "update_decky unknown service", op: OpUpdateDecky, payload: `{"decky":"web","services":["http","telnetz"]}`, wantField: "payload.services[1]", wantCode: IssueUnknownService},
		{name: "update_decky patch config for unknown service", op: OpUpdateDecky, payload: `{"decky":"web","patch":{"service_config":{"http":{},"nope":{}}}}`, wantField: "payload.patch.service_config.nope", wantCode: IssueUnknownService},
		{name: "update_decky patch config for catalog service", op: OpUpdateDecky, payload: `{"decky":"web","patch":{"service_config":{"http":{}}}}`},
		{name: "update_decky patch config not an object", op: OpUpdateDecky, payload: `{"decky":"web","patch":{"service_config":"x"}}`},

		// Text hygiene: nothing PostgreSQL cannot store.
		{name: "add_lan NUL in name", op: OpAddLAN, payload: `{"name":"a\u0000b"}`, wantField: "payload.name"},
		{name: "add_decky NUL in a service", op: OpAddDecky, payload: `{"name":"web","lan":"dmz","services":["ssh","\u0000"]}`, wantField: "payload.services[1]"},
		{name: "NUL in an unknown key's value", op: OpRemoveLAN, payload: `{"name":"lab","note":{"deep":["x","\u0000"]}}`, wantField: "payload.note.deep[1]"},
		{name: "NUL in a key", op: OpRemoveLAN, payload: `{"name":"lab","patch":{"a\u0000":1}}`, wantField: "payload.patch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var payload map[string]any
			require.NoError(t, json.Unmarshal([]byte(tt.payload), &payload))
			err := ValidatePayload(tt.op, payload)
			if tt.wantField == "" {
				require.NoError(t, err)
				return
			}
			var e *Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, EUnprocessable, e.Code)
			require.Contains(t, e.Message, tt.wantField+":")
			require.Equal(t, tt.wantField, e.Fields["field"])
			if tt.wantCode != "" {
				require.Equal(t, tt.wantCode, e.Fields["code"])
				require.Contains(t, e.Message, tt.wantField+": "+tt.wantCode+": ")
			} else {
				require.NotContains(t, e.Fields, "code")
			}
		})
	}
}

func TestValidatePayloadMessages(t *testing.T) {
	t.Parallel()
	require.EqualError(t, ValidatePayload(OpAddLAN, map[string]any{}), "payload.name: required string")
	require.EqualError(t, ValidatePayload(OpAddLAN, nil), "payload.name: required string")
	require.EqualError(t, ValidatePayload(OpAddLAN, map[string]any{"name": "a", "x": "1"}), "payload.x: must be a number")
	require.EqualError(t, ValidatePayload(Op("explode"), map[string]any{}), "unknown op: 'explode'")
	require.NoError(t, ValidatePayload(OpAddDecky, map[string]any{"name": "a", "lan": "b", "services": []string{"ssh"}, "x": 3}))
}
