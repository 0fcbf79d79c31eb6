package domain

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestApplyOpRejections(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		op      Op
		payload map[string]any
		want    string
	}{
		{name: "payload shape", op: OpAddLAN, payload: map[string]any{}, want: "payload.name: required string"},
		{name: "unknown op", op: Op("nuke"), payload: map[string]any{}, want: "unknown op: 'nuke'"},

		{name: "add_lan duplicate", op: OpAddLAN, payload: map[string]any{"name": "lab"}, want: "LAN 'lab' already exists"},
		{name: "add_lan malformed subnet", op: OpAddLAN, payload: map[string]any{"name": "new", "subnet": "10.8.0.5/24"}, want: "post-apply validation failed for topo-1: SUBNET_MALFORMED"},
		{name: "add_lan overlapping subnet", op: OpAddLAN, payload: map[string]any{"name": "new", "subnet": "10.0.0.0/16"}, want: "post-apply validation failed for topo-1: SUBNET_OVERLAP"},

		{name: "remove_lan unknown", op: OpRemoveLAN, payload: map[string]any{"name": "nope"}, want: "LAN 'nope' not found"},
		{name: "remove_lan home LAN", op: OpRemoveLAN, payload: map[string]any{"name": "dmz"}, want: "LAN 'dmz' is the home LAN of decky 'db'; remove the decky first"},
		{name: "remove_lan home LAN of a bridge-heavy decky", op: OpRemoveLAN, payload: map[string]any{"name": "internal"}, want: "LAN 'internal' is the home LAN of decky 'web'; remove the decky first"},

		{name: "add_decky duplicate wins over unknown LAN", op: OpAddDecky, payload: map[string]any{"name": "web", "lan": "nope"}, want: "decky 'web' already exists"},
		{name: "add_decky unknown LAN", op: OpAddDecky, payload: map[string]any{"name": "new", "lan": "nope"}, want: "LAN 'nope' not found"},
		{name: "add_decky full LAN", op: OpAddDecky, payload: map[string]any{"name": "new", "lan": "tiny"}, want: "no free IPs left in 10.0.4.0/30"},
		{name: "add_decky unknown service", op: OpAddDecky, payload: map[string]any{"name": "new", "lan": "spare", "services": []any{"ssh", "nope"}}, want: "post-apply validation failed for topo-1: UNKNOWN_SERVICE"},
		{name: "add_decky fleet singleton", op: OpAddDecky, payload: map[string]any{"name": "new", "lan": "spare", "services": []any{"sniffer"}}, want: "post-apply validation failed for topo-1: UNKNOWN_SERVICE"},
		{name: "add_decky pinned IP out of subnet", op: OpAddDecky, payload: map[string]any{"name": "new", "lan": "spare", "ip": "10.9.9.9"}, want: "post-apply validation failed for topo-1: IP_OUT_OF_SUBNET"},
		{name: "add_decky pinned IP malformed", op: OpAddDecky, payload: map[string]any{"name": "new", "lan": "spare", "ip": "banana"}, want: "post-apply validation failed for topo-1: IP_MALFORMED"},
		{name: "add_decky pinned IP collision", op: OpAddDecky, payload: map[string]any{"name": "new", "lan": "internal", "ip": "10.0.1.2"}, want: "post-apply validation failed for topo-1: IP_COLLISION"},
		{name: "add_decky several codes sorted", op: OpAddDecky, payload: map[string]any{"name": "new", "lan": "internal", "ip": "10.0.1.2", "services": []any{"nope"}}, want: "post-apply validation failed for topo-1: IP_COLLISION, UNKNOWN_SERVICE"},

		{name: "attach_decky unknown LAN first", op: OpAttachDecky, payload: map[string]any{"decky": "nope", "lan": "nope"}, want: "LAN 'nope' not found"},
		{name: "attach_decky unknown decky", op: OpAttachDecky, payload: map[string]any{"decky": "nope", "lan": "lab"}, want: "decky 'nope' not found"},
		{name: "attach_decky already attached", op: OpAttachDecky, payload: map[string]any{"decky": "web", "lan": "lab"}, want: "decky 'web' already on LAN 'lab'"},
		{name: "attach_decky home LAN counts as attached", op: OpAttachDecky, payload: map[string]any{"decky": "web", "lan": "internal"}, want: "decky 'web' already on LAN 'internal'"},
		{name: "attach_decky full LAN", op: OpAttachDecky, payload: map[string]any{"decky": "web", "lan": "tiny"}, want: "no free IPs left in 10.0.4.0/30"},
		{name: "attach_decky pinned collision", op: OpAttachDecky, payload: map[string]any{"decky": "db", "lan": "lab", "ip": "10.0.2.5"}, want: "post-apply validation failed for topo-1: IP_COLLISION"},
		{name: "attach_decky pinned out of subnet", op: OpAttachDecky, payload: map[string]any{"decky": "db", "lan": "lab", "ip": "10.0.3.5"}, want: "post-apply validation failed for topo-1: IP_OUT_OF_SUBNET"},

		{name: "detach_decky unknown decky", op: OpDetachDecky, payload: map[string]any{"decky": "nope", "lan": "lab"}, want: "decky or LAN not found"},
		{name: "detach_decky unknown LAN", op: OpDetachDecky, payload: map[string]any{"decky": "web", "lan": "nope"}, want: "decky or LAN not found"},
		{name: "detach_decky no memberships", op: OpDetachDecky, payload: map[string]any{"decky": "lonely", "lan": "lab"}, want: "decky has no LAN memberships"},
		{name: "detach_decky home LAN", op: OpDetachDecky, payload: map[string]any{"decky": "web", "lan": "internal"}, want: "cannot detach home LAN 'internal'; use remove_decky"},
		{name: "detach_decky not attached", op: OpDetachDecky, payload: map[string]any{"decky": "web", "lan": "spare"}, want: "decky not attached to LAN 'spare'"},

		{name: "remove_decky unknown", op: OpRemoveDecky, payload: map[string]any{"decky": "nope"}, want: "decky 'nope' not found"},

		{name: "update_decky unknown", op: OpUpdateDecky, payload: map[string]any{"decky": "nope", "services": []any{}}, want: "decky 'nope' not found"},
		{name: "update_decky D10", op: OpUpdateDecky, payload: map[string]any{"decky": "web", "patch": map[string]any{"ips_by_lan": map[string]any{}}}, want: "payload.patch.ips_by_lan: cannot be patched; decky names and LAN addresses are managed by the ops"},
		{name: "update_decky promotion outside the DMZ", op: OpUpdateDecky, payload: map[string]any{"decky": "web", "patch": map[string]any{"forwards_l3": true}}, want: "cannot promote decky 'web' to gateway: home LAN 'internal' is not a DMZ. Gateways publish ports on the host and must be homed in the DMZ (DMZ: dmz); add a new decky there with forwards_l3 instead"},
		{name: "update_decky promotion check ignores force", op: OpUpdateDecky, payload: map[string]any{"decky": "probe", "patch": map[string]any{"forwards_l3": true}, "force": true}, want: "cannot promote decky 'probe' to gateway: home LAN 'tiny' is not a DMZ. Gateways publish ports on the host and must be homed in the DMZ (DMZ: dmz); add a new decky there with forwards_l3 instead"},
		{name: "update_decky promotion without a home", op: OpUpdateDecky, payload: map[string]any{"decky": "lonely", "patch": map[string]any{"forwards_l3": true}, "force": true}, want: "cannot promote decky 'lonely' to gateway: home LAN '(no home LAN)' is not a DMZ. Gateways publish ports on the host and must be homed in the DMZ (DMZ: dmz); add a new decky there with forwards_l3 instead"},
		{name: "update_decky promotion needs force", op: OpUpdateDecky, payload: map[string]any{"decky": "db", "patch": map[string]any{"forwards_l3": true}}, want: "forwards_l3 flip on live decky 'db' requires force=true; this will recreate the base container and drop in-container state"},
		{name: "update_decky force must be JSON true", op: OpUpdateDecky, payload: map[string]any{"decky": "db", "patch": map[string]any{"forwards_l3": true}, "force": false}, want: "forwards_l3 flip on live decky 'db' requires force=true; this will recreate the base container and drop in-container state"},
		{name: "update_decky demotion needs force", op: OpUpdateDecky, payload: map[string]any{"decky": "gw", "patch": map[string]any{"forwards_l3": false}}, want: "forwards_l3 flip on live decky 'gw' requires force=true; this will recreate the base container and drop in-container state"},
		{name: "update_decky null forwards_l3 is a demotion", op: OpUpdateDecky, payload: map[string]any{"decky": "gw", "patch": map[string]any{"forwards_l3": nil}}, want: "forwards_l3 flip on live decky 'gw' requires force=true; this will recreate the base container and drop in-container state"},
		{name: "update_decky unknown service", op: OpUpdateDecky, payload: map[string]any{"decky": "db", "services": []any{"mysql", "nope"}}, want: "post-apply validation failed for topo-1: UNKNOWN_SERVICE"},
		{name: "update_decky removing a configured service", op: OpUpdateDecky, payload: map[string]any{"decky": "web", "services": []any{"ssh"}}, want: "post-apply validation failed for topo-1: SERVICE_CFG_UNDECLARED"},
		{name: "update_decky config for an undeclared service", op: OpUpdateDecky, payload: map[string]any{"decky": "db", "patch": map[string]any{"service_config": map[string]any{"ssh": map[string]any{}}}}, want: "post-apply validation failed for topo-1: SERVICE_CFG_UNDECLARED"},

		{name: "update_lan unknown", op: OpUpdateLAN, payload: map[string]any{"name": "nope", "x": 1.0}, want: "LAN 'nope' not found"},
		{name: "update_lan subnet", op: OpUpdateLAN, payload: map[string]any{"name": "spare", "patch": map[string]any{"subnet": "10.0.9.0/24"}}, want: "cannot change ['subnet'] on a deployed LAN; teardown + redeploy required"},
		{name: "update_lan unchanged is_dmz", op: OpUpdateLAN, payload: map[string]any{"name": "dmz", "patch": map[string]any{"is_dmz": true}}, want: "cannot change ['is_dmz'] on a deployed LAN; teardown + redeploy required"},
		{name: "update_lan both, sorted", op: OpUpdateLAN, payload: map[string]any{"name": "spare", "patch": map[string]any{"subnet": "10.0.9.0/24", "name": "x", "is_dmz": false}}, want: "cannot change ['is_dmz', 'subnet'] on a deployed LAN; teardown + redeploy required"},
		{name: "update_lan rename with members", op: OpUpdateLAN, payload: map[string]any{"name": "lab", "patch": map[string]any{"name": "lab2"}}, want: "post-apply validation failed for topo-1: IP_UNKNOWN_LAN"},
		{name: "update_lan rename onto another LAN", op: OpUpdateLAN, payload: map[string]any{"name": "spare", "patch": map[string]any{"name": "dmz"}}, want: "post-apply validation failed for topo-1: IP_OUT_OF_SUBNET, LAN_NAME_DUP"},
		{name: "update_lan unknown patch key", op: OpUpdateLAN, payload: map[string]any{"name": "spare", "patch": map[string]any{"docker_network_id": "n"}}, want: "payload.patch.docker_network_id: unknown key; allowed keys are is_dmz, name, subnet, x, y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := fixture()
			res, err := ApplyOp(h, tt.op, tt.payload, testEnv())
			require.Nil(t, res)
			require.Equal(t, EUnprocessable, ErrorCode(err))
			require.EqualError(t, err, tt.want)
			require.Equal(t, fixture(), h, "a rejected op must not touch its input")
		})
	}
}

func TestApplyOpEffects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		op          Op
		payload     map[string]any
		wantEffects []Effect
		wantChanged bool
	}{
		{name: "add_lan", op: OpAddLAN, payload: map[string]any{"name": "new"}, wantChanged: true,
			wantEffects: []Effect{{Call: CallCreateNetwork, LAN: "new"}}},
		{name: "remove_lan without members", op: OpRemoveLAN, payload: map[string]any{"name": "spare"}, wantChanged: true,
			wantEffects: []Effect{{Call: CallRemoveNetwork, LAN: "spare"}}},
		{name: "remove_lan with bridge members", op: OpRemoveLAN, payload: map[string]any{"name": "lab"}, wantChanged: true,
			wantEffects: []Effect{{Call: CallDisconnect, Decky: "gw", LAN: "lab"}, {Call: CallDisconnect, Decky: "web", LAN: "lab"}, {Call: CallRemoveNetwork, LAN: "lab"}}},
		{name: "add_decky", op: OpAddDecky, payload: map[string]any{"name": "new", "lan": "spare", "services": []any{"ssh"}}, wantChanged: true,
			wantEffects: []Effect{{Call: CallSpawn, Decky: "new"}}},
		{name: "attach_decky", op: OpAttachDecky, payload: map[string]any{"decky": "db", "lan": "lab"}, wantChanged: true,
			wantEffects: []Effect{{Call: CallConnect, Decky: "db", LAN: "lab", IP: "10.0.2.3"}}},
		{name: "attach_decky pinned", op: OpAttachDecky, payload: map[string]any{"decky": "db", "lan": "lab", "ip": "10.0.2.200"}, wantChanged: true,
			wantEffects: []Effect{{Call: CallConnect, Decky: "db", LAN: "lab", IP: "10.0.2.200"}}},
		{name: "detach_decky", op: OpDetachDecky, payload: map[string]any{"decky": "gw", "lan": "lab"}, wantChanged: true,
			wantEffects: []Effect{{Call: CallDisconnect, Decky: "gw", LAN: "lab"}}},
		{name: "remove_decky", op: OpRemoveDecky, payload: map[string]any{"decky": "web"}, wantChanged: true,
			wantEffects: []Effect{{Call: CallRemove, Decky: "web"}}},
		{name: "update_decky services diff", op: OpUpdateDecky, payload: map[string]any{"decky": "db", "services": []any{"redis", "ssh"}}, wantChanged: true,
			wantEffects: []Effect{{Call: CallServicesDiff, Decky: "db", Added: []string{"redis", "ssh"}, Removed: []string{"mysql"}}}},
		{name: "update_decky reorder only", op: OpUpdateDecky, payload: map[string]any{"decky": "web", "services": []any{"http", "http"}}, wantChanged: true},
		{name: "update_decky coordinates only", op: OpUpdateDecky, payload: map[string]any{"decky": "web", "x": 10.0}, wantChanged: true},
		{name: "update_decky forced promotion", op: OpUpdateDecky, payload: map[string]any{"decky": "db", "patch": map[string]any{"forwards_l3": true}, "force": true}, wantChanged: true,
			wantEffects: []Effect{{Call: CallRecreateBase, Decky: "db"}}},
		{name: "update_decky forced demotion skips the DMZ rule", op: OpUpdateDecky, payload: map[string]any{"decky": "gw", "patch": map[string]any{"forwards_l3": false}, "force": true}, wantChanged: true,
			wantEffects: []Effect{{Call: CallRecreateBase, Decky: "gw"}}},
		{name: "update_decky services and flip", op: OpUpdateDecky, payload: map[string]any{"decky": "db", "services": []any{"mysql", "ssh"}, "patch": map[string]any{"forwards_l3": true}, "force": true}, wantChanged: true,
			wantEffects: []Effect{{Call: CallServicesDiff, Decky: "db", Added: []string{"ssh"}}, {Call: CallRecreateBase, Decky: "db"}}},
		{name: "update_decky same forwards_l3 needs no force", op: OpUpdateDecky, payload: map[string]any{"decky": "gw", "patch": map[string]any{"forwards_l3": true}}, wantChanged: true},
		{name: "update_decky nothing to change", op: OpUpdateDecky, payload: map[string]any{"decky": "web"}},
		{name: "update_decky empty patch and nulls", op: OpUpdateDecky, payload: map[string]any{"decky": "web", "patch": map[string]any{}, "services": nil, "x": nil}},
		{name: "update_decky no-op skips every check", op: OpUpdateDecky, payload: map[string]any{"decky": "web", "force": false}},
		{name: "update_lan coordinates", op: OpUpdateLAN, payload: map[string]any{"name": "lab", "x": 3.0}, wantChanged: true},
		{name: "update_lan rename an empty LAN", op: OpUpdateLAN, payload: map[string]any{"name": "spare", "patch": map[string]any{"name": "quiet"}}, wantChanged: true},
		{name: "update_lan nothing to change", op: OpUpdateLAN, payload: map[string]any{"name": "lab", "patch": map[string]any{}}},
		{name: "update_lan null patch values", op: OpUpdateLAN, payload: map[string]any{"name": "lab", "patch": map[string]any{"subnet": nil, "x": nil}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := fixture()
			res, err := ApplyOp(h, tt.op, tt.payload, testEnv())
			require.NoError(t, err)
			require.Equal(t, tt.wantEffects, res.Effects)
			require.Equal(t, tt.wantChanged, res.Changed)
			require.Equal(t, fixture(), h, "ApplyOp must not touch its input")
			require.Empty(t, Validate(res.After, false))
		})
	}
}

func TestApplyNoOpReturnsUnchangedView(t *testing.T) {
	t.Parallel()
	h := fixture()
	res, err := ApplyOp(h, OpUpdateLAN, map[string]any{"name": "lab"}, testEnv())
	require.NoError(t, err)
	require.False(t, res.Changed)
	require.Equal(t, fixture(), res.After)
}

func TestApplyAddLAN(t *testing.T) {
	t.Parallel()
	h := fixture()
	res, err := ApplyOp(h, OpAddLAN, map[string]any{"name": "a-new"}, testEnv())
	require.NoError(t, err)
	require.Equal(t, LAN{ID: "id-1", TopologyID: "topo-1", Name: "a-new", Subnet: "172.16.1.0/24"}, res.After.LANs[0], "auto subnet skips the reserved /24; LANs stay sorted")
	require.Len(t, res.After.LANs, 6)

	res, err = ApplyOp(h, OpAddLAN, map[string]any{"name": "dmz2", "subnet": "192.168.7.0/24", "is_dmz": true, "x": 1.5, "y": 2.0}, testEnv())
	require.NoError(t, err, "a second DMZ is accepted live")
	require.Equal(t, LAN{ID: "id-1", TopologyID: "topo-1", Name: "dmz2", Subnet: "192.168.7.0/24", IsDMZ: true, X: ptr(1.5), Y: ptr(2.0)}, res.After.LANs[1])
}

func TestApplyAddLANReservesOwnSubnets(t *testing.T) {
	t.Parallel()
	h := topo([]LAN{lanOf("l1", "a", "172.16.0.0/24", true), lanOf("l2", "b", "172.16.1.0/24", false)}, nil, nil)
	env := testEnv()
	env.ReservedSubnets = nil
	res, err := ApplyOp(h, OpAddLAN, map[string]any{"name": "c"}, env)
	require.NoError(t, err)
	require.Equal(t, "172.16.2.0/24", res.After.LANs[2].Subnet)
}

func TestApplyAddLANAllocatorFailures(t *testing.T) {
	t.Parallel()
	full := firstSlash24s(4096)
	env := testEnv()
	env.ReservedSubnets = func() (map[string]bool, error) { return full, nil }
	_, err := ApplyOp(fixture(), OpAddLAN, map[string]any{"name": "new"}, env)
	require.EqualError(t, err, "no free /24s left under 172.16.0.0/12")
	require.Equal(t, EUnprocessable, ErrorCode(err))

	res, err := ApplyOp(fixture(), OpAddLAN, map[string]any{"name": "new", "subnet": "10.0.9.0/24"}, env)
	require.NoError(t, err, "an explicit subnet never consults the reservations")
	require.Equal(t, "10.0.9.0/24", res.After.LANs[3].Subnet)

	boom := errors.New("db down")
	env.ReservedSubnets = func() (map[string]bool, error) { return nil, boom }
	_, err = ApplyOp(fixture(), OpAddLAN, map[string]any{"name": "new"}, env)
	require.ErrorIs(t, err, boom)
}

func TestApplyRequiresNewID(t *testing.T) {
	t.Parallel()
	_, err := ApplyOp(fixture(), OpAddDecky, map[string]any{"name": "n", "lan": "dmz"}, OpEnv{})
	require.Equal(t, EInternal, ErrorCode(err))
	_, err = ApplyOp(fixture(), OpRemoveDecky, map[string]any{"decky": "web"}, OpEnv{})
	require.NoError(t, err, "ops that create nothing need no ids")
}

func TestApplyRemoveLAN(t *testing.T) {
	t.Parallel()
	res, err := ApplyOp(fixture(), OpRemoveLAN, map[string]any{"name": "lab"}, testEnv())
	require.NoError(t, err)
	after := res.After
	require.Equal(t, []string{"dmz", "internal", "spare", "tiny"}, lanNames(after))
	require.Equal(t, map[string]string{"dmz": "10.0.0.2", "internal": "10.0.1.3"}, deckyNamed(after, "gw").IPsByLAN())
	require.Equal(t, map[string]string{"internal": "10.0.1.2"}, deckyNamed(after, "web").IPsByLAN())
	require.Equal(t, []string{"e-gw-dmz", "e-gw-int", "e-db-dmz", "e-web-int", "e-probe-tiny"}, edgeIDs(after))
}

func TestApplyAddDecky(t *testing.T) {
	t.Parallel()
	res, err := ApplyOp(fixture(), OpAddDecky, map[string]any{
		"name": "app", "lan": "internal", "services": []any{"ssh", "http"}, "archetype": "linux-server",
		"forwards_l3": true, "x": 4.0, "y": 5.0,
	}, testEnv())
	require.NoError(t, err)
	require.Equal(t, Decky{
		UUID: "id-1", TopologyID: "topo-1", Name: "app", HomeLANID: ptr("lan-int"),
		Services: []string{"ssh", "http"},
		Config: map[string]any{
			"name": "app", "ips_by_lan": map[string]any{"internal": "10.0.1.4"},
			"archetype": "linux-server", "forwards_l3": true,
		},
		IP: ptr("10.0.1.4"), State: DeckyPending, X: ptr(4.0), Y: ptr(5.0),
	}, *deckyNamed(res.After, "app"), "no gateway-in-DMZ rule on add_decky")
	require.Equal(t, Edge{ID: "id-2", TopologyID: "topo-1", DeckyUUID: "id-1", LANID: "lan-int", IsBridge: false, ForwardsL3: true}, res.After.Edges[len(res.After.Edges)-1])
	require.Equal(t, []string{"app", "db", "gw", "lonely", "probe", "web"}, deckyNames(res.After))
}

func TestApplyAddDeckyDefaults(t *testing.T) {
	t.Parallel()
	res, err := ApplyOp(fixture(), OpAddDecky, map[string]any{"name": "zed", "lan": "lab", "forwards_l3": false, "archetype": nil}, testEnv())
	require.NoError(t, err)
	d := deckyNamed(res.After, "zed")
	require.Equal(t, []string{}, d.Services)
	require.Equal(t, map[string]any{"name": "zed", "ips_by_lan": map[string]any{"lab": "10.0.2.3"}}, d.Config, "the freed gap .3 is reused; no forwards_l3 or archetype keys")
	require.False(t, res.After.Edges[len(res.After.Edges)-1].ForwardsL3)
}

func TestApplyAddDeckyReusesFreedIP(t *testing.T) {
	t.Parallel()
	res, err := ApplyOp(fixture(), OpRemoveDecky, map[string]any{"decky": "web"}, testEnv())
	require.NoError(t, err)
	res, err = ApplyOp(res.After, OpAddDecky, map[string]any{"name": "web2", "lan": "internal"}, testEnv())
	require.NoError(t, err)
	require.Equal(t, "10.0.1.2", *deckyNamed(res.After, "web2").IP)
}

func TestApplyAttachDecky(t *testing.T) {
	t.Parallel()
	res, err := ApplyOp(fixture(), OpAttachDecky, map[string]any{"decky": "probe", "lan": "spare", "forwards_l3": true}, testEnv())
	require.NoError(t, err)
	probe := deckyNamed(res.After, "probe")
	require.Equal(t, map[string]string{"tiny": "10.0.4.2", "spare": "10.0.3.2"}, probe.IPsByLAN())
	require.True(t, probe.ForwardsL3(), "attach never checks the gateway rule")
	require.Equal(t, Edge{ID: "id-1", TopologyID: "topo-1", DeckyUUID: "d-probe", LANID: "lan-spare", IsBridge: true, ForwardsL3: true}, res.After.Edges[len(res.After.Edges)-1])
	require.Equal(t, fixture().Edges, res.After.Edges[:len(res.After.Edges)-1], "existing edges are unchanged")

	res, err = ApplyOp(fixture(), OpAttachDecky, map[string]any{"decky": "gw", "lan": "spare", "forwards_l3": false}, testEnv())
	require.NoError(t, err)
	require.True(t, deckyNamed(res.After, "gw").ForwardsL3(), "false never clears an existing true")
	require.False(t, res.After.Edges[len(res.After.Edges)-1].ForwardsL3)

	res, err = ApplyOp(fixture(), OpAttachDecky, map[string]any{"decky": "lonely", "lan": "spare"}, testEnv())
	require.NoError(t, err)
	_, set := deckyNamed(res.After, "lonely").Config["forwards_l3"]
	require.False(t, set)
}

func TestApplyDetachDecky(t *testing.T) {
	t.Parallel()
	res, err := ApplyOp(fixture(), OpDetachDecky, map[string]any{"decky": "gw", "lan": "lab"}, testEnv())
	require.NoError(t, err)
	gw := deckyNamed(res.After, "gw")
	require.Equal(t, map[string]string{"dmz": "10.0.0.2", "internal": "10.0.1.3"}, gw.IPsByLAN())
	require.True(t, gw.ForwardsL3(), "forwards_l3 is left as is")
	require.NotContains(t, edgeIDs(res.After), "e-gw-lab")
	require.Len(t, res.After.Edges, 6)
}

// A legacy decky without HomeLANID falls back to its first non-bridge edge,
// then to its first edge.
func TestApplyHomeLANFallback(t *testing.T) {
	t.Parallel()
	legacy := deckyOf("d-old", "old", "", map[string]any{"a": "10.0.1.2", "b": "10.0.2.2", "c": "10.0.3.2"})
	allBridge := deckyOf("d-all", "allbridge", "", map[string]any{"a": "10.0.1.3", "b": "10.0.2.3"})
	h := topo(
		[]LAN{lanOf("la", "a", "10.0.1.0/24", false), lanOf("lb", "b", "10.0.2.0/24", false), lanOf("lc", "c", "10.0.3.0/24", false)},
		[]Decky{allBridge, legacy},
		[]Edge{
			edgeOf("e1", "d-old", "la", true), edgeOf("e2", "d-old", "lb", false), edgeOf("e3", "d-old", "lc", true),
			edgeOf("e4", "d-all", "lb", true), edgeOf("e5", "d-all", "la", true),
		},
	)
	_, err := ApplyOp(h, OpDetachDecky, map[string]any{"decky": "old", "lan": "b"}, testEnv())
	require.EqualError(t, err, "cannot detach home LAN 'b'; use remove_decky")
	_, err = ApplyOp(h, OpDetachDecky, map[string]any{"decky": "old", "lan": "a"}, testEnv())
	require.NoError(t, err)
	_, err = ApplyOp(h, OpDetachDecky, map[string]any{"decky": "allbridge", "lan": "b"}, testEnv())
	require.EqualError(t, err, "cannot detach home LAN 'b'; use remove_decky")
	_, err = ApplyOp(h, OpRemoveLAN, map[string]any{"name": "c"}, testEnv())
	require.NoError(t, err)
}

func TestApplyRemoveDecky(t *testing.T) {
	t.Parallel()
	res, err := ApplyOp(fixture(), OpRemoveDecky, map[string]any{"decky": "gw"}, testEnv())
	require.NoError(t, err, "no guard against removing the gateway")
	require.Equal(t, []string{"db", "lonely", "probe", "web"}, deckyNames(res.After))
	require.Equal(t, []string{"e-db-dmz", "e-web-int", "e-web-lab", "e-probe-tiny"}, edgeIDs(res.After))
}

func TestApplyUpdateDecky(t *testing.T) {
	t.Parallel()
	res, err := ApplyOp(fixture(), OpUpdateDecky, map[string]any{
		"decky":    "web",
		"patch":    map[string]any{"service_config": map[string]any{"ssh": map[string]any{"user": "root"}}, "archetype": "web-server"},
		"services": []any{"ssh"},
		"x":        7.0,
	}, testEnv())
	require.NoError(t, err, "a service_config key replaces the whole map")
	web := deckyNamed(res.After, "web")
	require.Equal(t, []string{"ssh"}, web.Services)
	require.Equal(t, map[string]any{
		"name": "web", "ips_by_lan": map[string]any{"internal": "10.0.1.2", "lab": "10.0.2.5"},
		"service_config": map[string]any{"ssh": map[string]any{"user": "root"}}, "archetype": "web-server",
	}, web.Config)
	require.Equal(t, ptr(7.0), web.X)
	require.Nil(t, web.Y)
	require.Equal(t, []Effect{{Call: CallServicesDiff, Decky: "web", Added: []string{"ssh"}, Removed: []string{"http"}}}, res.Effects)

	res, err = ApplyOp(fixture(), OpUpdateDecky, map[string]any{"decky": "db", "patch": map[string]any{"forwards_l3": true}, "force": true}, testEnv())
	require.NoError(t, err)
	require.True(t, deckyNamed(res.After, "db").ForwardsL3())
}

func TestApplyUpdateDeckyDoesNotAliasPayload(t *testing.T) {
	t.Parallel()
	cfg := map[string]any{"ssh": map[string]any{"user": "root"}}
	payload := map[string]any{"decky": "gw", "patch": map[string]any{"service_config": cfg}}
	res, err := ApplyOp(fixture(), OpUpdateDecky, payload, testEnv())
	require.NoError(t, err)
	cfg["ssh"].(map[string]any)["user"] = "changed"
	require.Equal(t, map[string]any{"ssh": map[string]any{"user": "root"}}, deckyNamed(res.After, "gw").ServiceConfig())
}

func TestApplyUpdateLAN(t *testing.T) {
	t.Parallel()
	res, err := ApplyOp(fixture(), OpUpdateLAN, map[string]any{"name": "spare", "patch": map[string]any{"name": "quiet", "x": 1.0, "y": 2.0}, "x": 9.0}, testEnv())
	require.NoError(t, err)
	require.Equal(t, []string{"dmz", "internal", "lab", "quiet", "tiny"}, lanNames(res.After))
	require.Equal(t, LAN{ID: "lan-spare", TopologyID: "topo-1", Name: "quiet", Subnet: "10.0.3.0/24", X: ptr(9.0), Y: ptr(2.0)}, res.After.LANs[3], "top-level x wins over patch.x")
	require.Nil(t, res.Effects)
}

func lanNames(h *Hydrated) []string {
	out := []string{}
	for _, l := range h.LANs {
		out = append(out, l.Name)
	}
	return out
}

func deckyNames(h *Hydrated) []string {
	out := []string{}
	for _, d := range h.Deckies {
		out = append(out, d.Name)
	}
	return out
}

func edgeIDs(h *Hydrated) []string {
	out := []string{}
	for _, e := range h.Edges {
		out = append(out, e.ID)
	}
	return out
}

func deckyNamed(h *Hydrated, name string) *Decky {
	for i := range h.Deckies {
		if h.Deckies[i].Name == name {
			return &h.Deckies[i]
		}
	}
	return nil
}

// ResolveEffects snapshots every named object from the op's result, and
// what the op removed from the view before it, so recovery never needs a
// view: the removed LAN keeps its id and network id, the removed decky its
// uuid, and a kept decky reads as the op left it.
func TestResolveEffects(t *testing.T) {
	t.Parallel()
	before := fixture()
	netID := "net-lab"
	before.LANs[2].DockerNetworkID = &netID // lab
	want := before.Clone()
	res, err := ApplyOp(before, OpRemoveLAN, map[string]any{"name": "lab"}, testEnv())
	require.NoError(t, err)
	got := ResolveEffects(res.Effects, res.After, before)
	require.Len(t, got, 3)
	for _, e := range got {
		require.NotNil(t, e.LANSnapshot, "%s", e.Call)
		require.Equal(t, "lan-lab", e.LANSnapshot.ID, "the removed LAN is taken from the view before the op")
		require.Equal(t, "net-lab", *e.LANSnapshot.DockerNetworkID)
	}
	require.Equal(t, "d-gw", got[0].DeckySnapshot.UUID)
	_, stillOnLab := got[0].DeckySnapshot.IPsByLAN()["lab"]
	require.False(t, stillOnLab, "a decky the op kept reads as the op left it")
	require.Nil(t, got[2].DeckySnapshot)

	res, err = ApplyOp(before, OpRemoveDecky, map[string]any{"decky": "web"}, testEnv())
	require.NoError(t, err)
	got = ResolveEffects(res.Effects, res.After, before)
	require.Equal(t, "d-web", got[0].DeckySnapshot.UUID)
	require.Equal(t, []string{"http"}, got[0].DeckySnapshot.Services)

	got[0].DeckySnapshot.Services[0] = "changed"
	require.Equal(t, want, before, "snapshots are copies")
	require.Nil(t, res.Effects[0].DeckySnapshot, "the input effects are not modified")
	require.Nil(t, ResolveEffects(nil, res.After, before))
	require.Equal(t, []Effect{{Call: CallRemove, Decky: "gone"}}, ResolveEffects([]Effect{{Call: CallRemove, Decky: "gone"}}, res.After, before))
}
