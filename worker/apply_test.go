package worker

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/materializer"
	"github.com/decnet/mazenet/internal/postgres"
)

// Every op's success path, end to end through the store: enqueue the row,
// Drain, then check the persisted view, the row, the status and the
// materializer's calls.
func TestApplyOps(t *testing.T) {
	t.Parallel()
	b := setup(t)

	type check func(t *testing.T, before, after *domain.Hydrated)
	cases := []struct {
		name    string
		op      domain.Op
		payload map[string]any
		calls   []materializer.Call
		check   check
	}{
		{"add_lan auto subnet", domain.OpAddLAN, map[string]any{"name": "lan-b"},
			[]materializer.Call{{Call: "CreateNetwork", LAN: "lan-b"}},
			func(t *testing.T, _, h *domain.Hydrated) {
				l := lanByName(h, "lan-b")
				require.NotNil(t, l)
				require.Equal(t, "172.16.1.0/24", l.Subnet) // 172.16.0.0 is lan-a's
				require.False(t, l.IsDMZ)
				require.Nil(t, l.X)
			}},
		{"add_lan explicit", domain.OpAddLAN, map[string]any{"name": "lan-c", "subnet": "192.168.9.0/24", "is_dmz": true, "x": 1.5, "y": 2},
			[]materializer.Call{{Call: "CreateNetwork", LAN: "lan-c"}},
			func(t *testing.T, _, h *domain.Hydrated) {
				l := lanByName(h, "lan-c")
				require.NotNil(t, l)
				require.Equal(t, "192.168.9.0/24", l.Subnet)
				require.True(t, l.IsDMZ)
				require.Equal(t, 1.5, *l.X)
				require.Equal(t, 2.0, *l.Y)
			}},
		{"remove_lan empty", domain.OpRemoveLAN, map[string]any{"name": "lan-empty"},
			[]materializer.Call{{Call: "RemoveNetwork", LAN: "lan-empty"}},
			func(t *testing.T, before, h *domain.Hydrated) {
				require.Nil(t, lanByName(h, "lan-empty"))
				require.Len(t, h.LANs, len(before.LANs)-1)
			}},
		{"remove_lan with bridge member", domain.OpRemoveLAN, map[string]any{"name": "lan-x"},
			[]materializer.Call{{Call: "Disconnect", Decky: "bridge", LAN: "lan-x"}, {Call: "RemoveNetwork", LAN: "lan-x"}},
			func(t *testing.T, before, h *domain.Hydrated) {
				require.Nil(t, lanByName(h, "lan-x"))
				br := deckyByName(h, "bridge")
				require.Equal(t, map[string]string{"lan-a": "172.16.0.3", "dmz": "10.0.0.3"}, br.IPsByLAN())
				require.Len(t, h.Edges, len(before.Edges)-1)
				require.NotNil(t, edgeOf(h, "bridge", "dmz"))
			}},
		{"add_decky", domain.OpAddDecky, map[string]any{"name": "db", "lan": "lan-a", "services": []string{"mysql"}, "archetype": "database-server", "x": 3},
			[]materializer.Call{{Call: "Spawn", Decky: "db"}},
			func(t *testing.T, _, h *domain.Hydrated) {
				d := deckyByName(h, "db")
				require.NotNil(t, d)
				require.Equal(t, []string{"mysql"}, d.Services)
				require.Equal(t, "running", d.State) // the spawn succeeded
				require.Equal(t, map[string]string{"lan-a": "172.16.0.4"}, d.IPsByLAN())
				require.Equal(t, "database-server", d.Config["archetype"])
				require.Equal(t, "db", d.Config["name"])
				require.NotContains(t, d.Config, "forwards_l3")
				require.Equal(t, "172.16.0.4", *d.IP)
				require.Equal(t, lanByName(h, "lan-a").ID, *d.HomeLANID)
				e := edgeOf(h, "db", "lan-a")
				require.NotNil(t, e)
				require.False(t, e.IsBridge)
				require.False(t, e.ForwardsL3)
				require.Equal(t, 3.0, *d.X)
			}},
		{"add_decky pinned ip forwarding", domain.OpAddDecky, map[string]any{"name": "gw2", "lan": "dmz", "ip": "10.0.0.50", "forwards_l3": true},
			[]materializer.Call{{Call: "Spawn", Decky: "gw2"}},
			func(t *testing.T, _, h *domain.Hydrated) {
				d := deckyByName(h, "gw2")
				require.Equal(t, map[string]string{"dmz": "10.0.0.50"}, d.IPsByLAN())
				require.Equal(t, true, d.Config["forwards_l3"])
				require.Equal(t, []string{}, d.Services)
				require.True(t, edgeOf(h, "gw2", "dmz").ForwardsL3)
			}},
		{"attach_decky", domain.OpAttachDecky, map[string]any{"decky": "web", "lan": "dmz"},
			[]materializer.Call{{Call: "Connect", Decky: "web", LAN: "dmz", IP: "10.0.0.4"}},
			func(t *testing.T, _, h *domain.Hydrated) {
				d := deckyByName(h, "web")
				require.Equal(t, map[string]string{"lan-a": "172.16.0.2", "dmz": "10.0.0.4"}, d.IPsByLAN())
				e := edgeOf(h, "web", "dmz")
				require.NotNil(t, e)
				require.True(t, e.IsBridge)
				require.False(t, e.ForwardsL3)
				require.NotContains(t, d.Config, "forwards_l3")
				require.Equal(t, lanByName(h, "lan-a").ID, *d.HomeLANID)
			}},
		{"attach_decky forwarding pinned", domain.OpAttachDecky, map[string]any{"decky": "web", "lan": "lan-empty", "ip": "172.16.5.9", "forwards_l3": true},
			[]materializer.Call{{Call: "Connect", Decky: "web", LAN: "lan-empty", IP: "172.16.5.9"}},
			func(t *testing.T, _, h *domain.Hydrated) {
				d := deckyByName(h, "web")
				require.Equal(t, true, d.Config["forwards_l3"])
				require.True(t, edgeOf(h, "web", "lan-empty").ForwardsL3)
			}},
		{"detach_decky", domain.OpDetachDecky, map[string]any{"decky": "bridge", "lan": "dmz"},
			[]materializer.Call{{Call: "Disconnect", Decky: "bridge", LAN: "dmz"}},
			func(t *testing.T, before, h *domain.Hydrated) {
				require.Nil(t, edgeOf(h, "bridge", "dmz"))
				require.Equal(t, map[string]string{"lan-a": "172.16.0.3", "lan-x": "172.16.7.2"}, deckyByName(h, "bridge").IPsByLAN())
				require.Len(t, h.Edges, len(before.Edges)-1)
			}},
		{"remove_decky", domain.OpRemoveDecky, map[string]any{"decky": "bridge"},
			[]materializer.Call{{Call: "Remove", Decky: "bridge"}},
			func(t *testing.T, before, h *domain.Hydrated) {
				require.Nil(t, deckyByName(h, "bridge"))
				require.Len(t, h.Edges, len(before.Edges)-3)
				require.Len(t, h.LANs, len(before.LANs))
			}},
		{"update_decky services", domain.OpUpdateDecky, map[string]any{"decky": "web", "services": []string{"http", "ftp"}},
			[]materializer.Call{{Call: "ServicesDiff", Decky: "web", Added: []string{"ftp"}}},
			func(t *testing.T, _, h *domain.Hydrated) {
				require.Equal(t, []string{"http", "ftp"}, deckyByName(h, "web").Services)
			}},
		{"update_decky patch and coordinates", domain.OpUpdateDecky, map[string]any{"decky": "web", "patch": map[string]any{"archetype": "web-server", "service_config": map[string]any{}}, "x": 5},
			nil,
			func(t *testing.T, _, h *domain.Hydrated) {
				d := deckyByName(h, "web")
				require.Equal(t, "web-server", d.Config["archetype"])
				require.Equal(t, map[string]any{}, d.Config["service_config"])
				require.Equal(t, map[string]string{"lan-a": "172.16.0.2"}, d.IPsByLAN())
				require.Equal(t, 5.0, *d.X)
			}},
		{"update_decky forced flip", domain.OpUpdateDecky, map[string]any{"decky": "gw", "patch": map[string]any{"forwards_l3": false}, "force": true},
			[]materializer.Call{{Call: "RecreateBase", Decky: "gw"}},
			func(t *testing.T, _, h *domain.Hydrated) {
				require.Equal(t, false, deckyByName(h, "gw").Config["forwards_l3"])
			}},
		{"update_decky nothing to change", domain.OpUpdateDecky, map[string]any{"decky": "web", "patch": map[string]any{}},
			nil,
			func(t *testing.T, before, h *domain.Hydrated) {
				require.Equal(t, shape(t, before), shape(t, h))
			}},
		{"update_lan rename empty", domain.OpUpdateLAN, map[string]any{"name": "lan-empty", "patch": map[string]any{"name": "lan-renamed", "x": 3}, "x": 7},
			nil,
			func(t *testing.T, _, h *domain.Hydrated) {
				require.Nil(t, lanByName(h, "lan-empty"))
				l := lanByName(h, "lan-renamed")
				require.NotNil(t, l)
				require.Equal(t, "172.16.5.0/24", l.Subnet)
				require.Equal(t, 7.0, *l.X) // the top-level form wins
			}},
		{"update_lan coordinates", domain.OpUpdateLAN, map[string]any{"name": "lan-a", "y": 9},
			nil,
			func(t *testing.T, _, h *domain.Hydrated) {
				require.Equal(t, 9.0, *lanByName(h, "lan-a").Y)
			}},
		{"update_lan nothing to change", domain.OpUpdateLAN, map[string]any{"name": "lan-a"},
			nil,
			func(t *testing.T, before, h *domain.Hydrated) {
				require.Equal(t, shape(t, before), shape(t, h))
			}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := seedTopology(t, b.DB, fmt.Sprintf("ops-%d", i), domain.StatusActive)
			before := b.hydrated(f.TID)
			m := b.enqueue(f.TID, tc.op, tc.payload)
			b.drain(f.TID)
			got := b.mutation(f.TID, m.ID)
			require.Equal(t, domain.MutationApplied, got.State, "reason: %v", got.Reason)
			require.NotNil(t, got.AppliedAt)
			require.Nil(t, got.Reason)
			after := b.hydrated(f.TID)
			require.Equal(t, domain.StatusActive, after.Topology.Status)
			require.Equal(t, before.Topology.Version, after.Topology.Version, "applying never bumps the version")
			tc.check(t, before, after)
			require.Equal(t, tc.calls, b.calls(f.TID))
			require.Equal(t, []string{domain.EventEnqueued, domain.EventApplying, domain.EventApplied}, eventNames(b.streamEntries(f.TID)))
		})
	}
}

// A Spawn the materializer reports as failed leaves the decky pending; the
// mutation is still applied (DOMAIN §6.4).
func TestAddDeckySpawnFailure(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.Mat.Config.FailSpawn = true
	f := b.seed("spawnfail", domain.StatusActive)
	m := b.enqueue(f.TID, domain.OpAddDecky, map[string]any{"name": "db", "lan": "lan-a"})
	b.drain(f.TID)
	require.Equal(t, domain.MutationApplied, b.mutation(f.TID, m.ID).State)
	require.Equal(t, "pending", deckyByName(b.hydrated(f.TID), "db").State)
}

// An agent-pinned topology is never materialised (DOMAIN §15).
func TestAgentTopologyNotMaterialised(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := b.seed("agent", domain.StatusActive)
	_, err := b.DB.ExecContext(b.ctx, `UPDATE topologies SET mode = 'agent', target_host_uuid = gen_random_uuid() WHERE id = $1`, f.TID)
	require.NoError(t, err)
	m := b.enqueue(f.TID, domain.OpAddDecky, map[string]any{"name": "db", "lan": "lan-a"})
	b.drain(f.TID)
	require.Equal(t, domain.MutationApplied, b.mutation(f.TID, m.ID).State)
	require.Empty(t, b.calls(f.TID))
	require.Equal(t, "pending", deckyByName(b.hydrated(f.TID), "db").State)
}

// Every §6 rejection, end to end: the row fails with the MutationError
// reason, nothing is written, the topology degrades.
func TestApplyOpErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cases := []struct {
		name    string
		op      domain.Op
		payload map[string]any
		reason  string
	}{
		{"add_lan duplicate", domain.OpAddLAN, map[string]any{"name": "lan-a"}, "LAN 'lan-a' already exists"},
		{"remove_lan unknown", domain.OpRemoveLAN, map[string]any{"name": "nope"}, "LAN 'nope' not found"},
		{"remove_lan home", domain.OpRemoveLAN, map[string]any{"name": "lan-a"}, "LAN 'lan-a' is the home LAN of decky '"},
		{"remove_lan dmz home", domain.OpRemoveLAN, map[string]any{"name": "dmz"}, "LAN 'dmz' is the home LAN of decky 'gw'; remove the decky first"},
		{"add_decky duplicate", domain.OpAddDecky, map[string]any{"name": "web", "lan": "nope"}, "decky 'web' already exists"},
		{"add_decky unknown lan", domain.OpAddDecky, map[string]any{"name": "db", "lan": "nope"}, "LAN 'nope' not found"},
		{"add_decky no free ip", domain.OpAddDecky, map[string]any{"name": "db", "lan": "tiny"}, "no free IPs left in 10.9.9.0/30"},
		{"attach_decky unknown lan", domain.OpAttachDecky, map[string]any{"decky": "nope", "lan": "nope"}, "LAN 'nope' not found"},
		{"attach_decky unknown decky", domain.OpAttachDecky, map[string]any{"decky": "nope", "lan": "dmz"}, "decky 'nope' not found"},
		{"attach_decky already", domain.OpAttachDecky, map[string]any{"decky": "web", "lan": "lan-a"}, "decky 'web' already on LAN 'lan-a'"},
		{"attach_decky no free ip", domain.OpAttachDecky, map[string]any{"decky": "web", "lan": "tiny"}, "no free IPs left in 10.9.9.0/30"},
		{"detach_decky unknown decky", domain.OpDetachDecky, map[string]any{"decky": "nope", "lan": "dmz"}, "decky or LAN not found"},
		{"detach_decky unknown lan", domain.OpDetachDecky, map[string]any{"decky": "web", "lan": "nope"}, "decky or LAN not found"},
		{"detach_decky no memberships", domain.OpDetachDecky, map[string]any{"decky": "ghost", "lan": "dmz"}, "decky has no LAN memberships"},
		{"detach_decky home", domain.OpDetachDecky, map[string]any{"decky": "web", "lan": "lan-a"}, "cannot detach home LAN 'lan-a'; use remove_decky"},
		{"detach_decky not attached", domain.OpDetachDecky, map[string]any{"decky": "web", "lan": "dmz"}, "decky not attached to LAN 'dmz'"},
		{"remove_decky unknown", domain.OpRemoveDecky, map[string]any{"decky": "nope"}, "decky 'nope' not found"},
		{"update_decky unknown", domain.OpUpdateDecky, map[string]any{"decky": "nope", "x": 1}, "decky 'nope' not found"},
		{"update_decky promote outside dmz", domain.OpUpdateDecky, map[string]any{"decky": "web", "patch": map[string]any{"forwards_l3": true}, "force": true},
			"cannot promote decky 'web' to gateway: home LAN 'lan-a' is not a DMZ"},
		{"update_decky flip without force", domain.OpUpdateDecky, map[string]any{"decky": "gw", "patch": map[string]any{"forwards_l3": false}},
			"forwards_l3 flip on live decky 'gw' requires force=true"},
		{"update_decky removed service keeps config", domain.OpUpdateDecky, map[string]any{"decky": "web", "services": []string{"ssh"}},
			"post-apply validation failed for %s: SERVICE_CFG_UNDECLARED"},
		{"update_lan unknown", domain.OpUpdateLAN, map[string]any{"name": "nope", "x": 1}, "LAN 'nope' not found"},
		{"update_lan live subnet", domain.OpUpdateLAN, map[string]any{"name": "lan-a", "patch": map[string]any{"subnet": "172.16.0.0/24", "is_dmz": false}},
			"cannot change ['is_dmz', 'subnet'] on a deployed LAN; teardown + redeploy required"},
		{"update_lan rename with members", domain.OpUpdateLAN, map[string]any{"name": "lan-a", "patch": map[string]any{"name": "lan-z"}},
			"post-apply validation failed for %s: IP_UNKNOWN_LAN"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := seedTopology(t, b.DB, fmt.Sprintf("err-%d", i), domain.StatusActive)
			reason := tc.reason
			if strings.Contains(reason, "%s") {
				reason = fmt.Sprintf(reason, f.TID)
			}
			expectRejected(t, b, f, tc.op, tc.payload, reason)
		})
	}
}

// expectRejected enqueues op on an active topology, drains, and checks the
// failure contract: failed row with "MutationError: <reason…>", no change to
// the view, one degrade with the same reason, and the §9.1 event order.
func expectRejected(t *testing.T, b *testBundle, f *fixture, op domain.Op, payload map[string]any, reason string) {
	t.Helper()
	before := b.hydrated(f.TID)
	m := b.enqueue(f.TID, op, payload)
	b.drain(f.TID)
	got := b.mutation(f.TID, m.ID)
	require.Equal(t, domain.MutationFailed, got.State)
	require.NotNil(t, got.AppliedAt)
	require.NotNil(t, got.Reason)
	require.True(t, strings.HasPrefix(*got.Reason, "MutationError: "+reason), "reason %q, want prefix %q", *got.Reason, "MutationError: "+reason)
	after := b.hydrated(f.TID)
	require.Equal(t, shape(t, before), shape(t, after), "a rejected op must leave no write")
	require.Equal(t, domain.StatusDegraded, after.Topology.Status)
	se := b.statusEvents(f.TID)
	require.Len(t, se, 1)
	require.Equal(t, domain.StatusActive, se[0].FromStatus)
	require.Equal(t, *got.Reason, *se[0].Reason)
	require.Empty(t, b.calls(f.TID))
	require.Equal(t, []string{domain.EventEnqueued, domain.EventApplying, domain.EventFailed, domain.EventStatus},
		eventNames(b.streamEntries(f.TID)))
}

// Every post-apply code of DOMAIN §8.2 that an op can reach rejects the op
// with no partial write. (DECKY_NAME_DUP cannot be reached through the ops:
// add_decky refuses a taken name first and update_decky cannot rename, D10;
// the domain's own tests cover the rule.)
func TestPostApplyCodes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cases := []struct {
		code    string
		op      domain.Op
		payload map[string]any
	}{
		{"LAN_NAME_DUP", domain.OpUpdateLAN, map[string]any{"name": "lan-empty", "patch": map[string]any{"name": "lan-x"}}},
		{"IP_UNKNOWN_LAN", domain.OpUpdateLAN, map[string]any{"name": "tiny", "patch": map[string]any{"name": "tiny2"}}},
		{"IP_OUT_OF_SUBNET", domain.OpAddDecky, map[string]any{"name": "db", "lan": "lan-a", "ip": "192.168.1.1"}},
		{"IP_MALFORMED", domain.OpAddDecky, map[string]any{"name": "db", "lan": "lan-a", "ip": "not-an-ip"}},
		{"IP_COLLISION", domain.OpAttachDecky, map[string]any{"decky": "web", "lan": "dmz", "ip": "10.0.0.2"}},
		{"SUBNET_MALFORMED", domain.OpAddLAN, map[string]any{"name": "bad", "subnet": "10.1.0.5/24"}},
		{"SUBNET_OVERLAP", domain.OpAddLAN, map[string]any{"name": "big", "subnet": "172.16.0.0/16"}},
		{"UNKNOWN_SERVICE", domain.OpAddDecky, map[string]any{"name": "db", "lan": "lan-a", "services": []string{"sniffer"}}},
		{"SERVICE_CFG_UNDECLARED", domain.OpUpdateDecky, map[string]any{"decky": "gw", "patch": map[string]any{"service_config": map[string]any{"ftp": map[string]any{}}}}},
	}
	for i, tc := range cases {
		t.Run(tc.code, func(t *testing.T) {
			t.Parallel()
			f := seedTopology(t, b.DB, fmt.Sprintf("post-%d", i), domain.StatusActive)
			expectRejected(t, b, f, tc.op, tc.payload, fmt.Sprintf("post-apply validation failed for %s: %s", f.TID, tc.code))
			// Exactly that code: the reason ends with it.
			m, err := b.DB.ListMutations(b.ctx, f.TID, "failed")
			require.NoError(t, err)
			require.True(t, strings.HasSuffix(*m[0].Reason, ": "+tc.code), *m[0].Reason)
		})
	}
}

// The subnet pool can run out (DOMAIN §6.2); reservation spans every
// topology that is not torn down.
func TestAddLANPoolExhausted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := b.seed("exhaust", domain.StatusActive)
	other := b.seed("hog", domain.StatusPending)
	_, err := b.DB.ExecContext(b.ctx, `
INSERT INTO lans (id, topology_id, name, subnet)
SELECT gen_random_uuid(), $1, 'hog-' || i, '172.' || (16 + i / 256) || '.' || (i % 256) || '.0/24'
  FROM generate_series(0, 4095) AS i`, other.TID)
	require.NoError(t, err)
	expectRejected(t, b, f, domain.OpAddLAN, map[string]any{"name": "lan-b"}, "no free /24s left under 172.16.0.0/12")
}

// A torn-down topology's subnets are free again (DOMAIN §7.1).
func TestAddLANSkipsReservedSubnets(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := b.seed("alloc", domain.StatusActive)
	other := b.seed("other", domain.StatusFailed)
	gone := b.seed("gone", domain.StatusTornDown)
	for _, q := range []struct{ tid, subnet string }{{other.TID, "172.16.1.0/24"}, {gone.TID, "172.16.2.0/24"}} {
		_, err := b.DB.ExecContext(b.ctx, `INSERT INTO lans (id, topology_id, name, subnet) VALUES (gen_random_uuid(), $1, 'extra', $2)`, q.tid, q.subnet)
		require.NoError(t, err)
	}
	m := b.enqueue(f.TID, domain.OpAddLAN, map[string]any{"name": "lan-b"})
	b.drain(f.TID)
	require.Equal(t, domain.MutationApplied, b.mutation(f.TID, m.ID).State)
	require.Equal(t, "172.16.2.0/24", lanByName(b.hydrated(f.TID), "lan-b").Subnet)
}

// Failure contract across passes: a failure degrades an active topology
// once and stops the pass; later mutations stay pending and the next pass
// applies them; a failure on a degraded topology adds no status row or
// event.
func TestFailureStopsPassAndDegradesOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := b.seed("fail", domain.StatusActive)
	bad1 := b.enqueue(f.TID, domain.OpRemoveLAN, map[string]any{"name": "nope"})
	ok1 := b.enqueue(f.TID, domain.OpAddLAN, map[string]any{"name": "lan-b"})
	bad2 := b.enqueue(f.TID, domain.OpRemoveDecky, map[string]any{"decky": "nope"})
	ok2 := b.enqueue(f.TID, domain.OpAddLAN, map[string]any{"name": "lan-c"})

	b.drain(f.TID)
	require.Equal(t, domain.MutationFailed, b.mutation(f.TID, bad1.ID).State)
	require.Equal(t, "MutationError: LAN 'nope' not found", *b.mutation(f.TID, bad1.ID).Reason)
	require.Equal(t, domain.MutationPending, b.mutation(f.TID, ok1.ID).State, "a failure stops the pass")
	require.Equal(t, domain.StatusDegraded, b.hydrated(f.TID).Topology.Status)
	require.Len(t, b.statusEvents(f.TID), 1)

	b.drain(f.TID) // next pass: ok1 applied, bad2 fails, ok2 waits
	require.Equal(t, domain.MutationApplied, b.mutation(f.TID, ok1.ID).State)
	require.Equal(t, domain.MutationFailed, b.mutation(f.TID, bad2.ID).State)
	require.Equal(t, domain.MutationPending, b.mutation(f.TID, ok2.ID).State)
	require.Len(t, b.statusEvents(f.TID), 1, "degraded stays degraded without a new audit row")

	b.drain(f.TID)
	require.Equal(t, domain.MutationApplied, b.mutation(f.TID, ok2.ID).State)
	require.Equal(t, domain.StatusDegraded, b.hydrated(f.TID).Topology.Status)

	got := eventNames(b.streamEntries(f.TID))
	want := []string{
		domain.EventEnqueued, domain.EventEnqueued, domain.EventEnqueued, domain.EventEnqueued,
		domain.EventApplying, domain.EventFailed, domain.EventStatus,
		domain.EventApplying, domain.EventApplied,
		domain.EventApplying, domain.EventFailed, // no second status
		domain.EventApplying, domain.EventApplied,
	}
	require.Equal(t, want, got)
	require.Equal(t, 1, slices.Index(got, domain.EventStatus)-slices.Index(got, domain.EventFailed))
}

// Only live topologies drain: a pending row of a topology that left the
// live states is never applied. (BeginTeardown ends such rows in the same
// commit as the status change; here the status is forced behind its back,
// as an older version could leave it, and the sweep ends the row as the
// teardown would have: failed, never applied.)
func TestOnlyLiveTopologiesDrain(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := b.seed("leaving", domain.StatusActive)
	m := b.enqueue(f.TID, domain.OpAddLAN, map[string]any{"name": "lan-b"})
	_, err := b.DB.ExecContext(b.ctx, `UPDATE topologies SET status = 'tearing_down' WHERE id = $1`, f.TID)
	require.NoError(t, err)
	b.drain(f.TID)
	require.Equal(t, domain.MutationPending, b.mutation(f.TID, m.ID).State, "not claimed")
	require.NoError(t, b.W.Sweep(b.ctx))
	got := b.mutation(f.TID, m.ID)
	require.Equal(t, domain.MutationFailed, got.State)
	require.Equal(t, postgres.ReasonTornDown, *got.Reason)
	require.Nil(t, lanByName(b.hydrated(f.TID), "lan-b"), "never applied")
	require.Equal(t, []materializer.Call{{Call: "Teardown"}}, b.calls(f.TID),
		"the mutation made no call; the sweep finished the teardown nobody was running")
	require.Equal(t, domain.StatusTornDown, b.hydrated(f.TID).Topology.Status)
	require.Equal(t, []string{domain.EventEnqueued, domain.EventApplying, domain.EventFailed, domain.EventStatus},
		eventNames(b.streamEntries(f.TID)))
}
