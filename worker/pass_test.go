package worker

import (
	"encoding/json"
	"fmt"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/stream"
)

// A run of mutations applied by one pass (one view load; each op runs on
// the view the previous op left, postgres.CommitMutationOn) ends exactly as
// the same mutations applied one Drain each (a view loaded per op): the same
// rows, outcomes, materializer calls and events. The run covers what a
// carried view could get wrong: a decky added and spawned (its `running`
// comes from the finish, not the op) and then updated, an attach after an
// add, a decky's config rewritten twice, a removal, and a rejected op at the
// end (which stops the pass and degrades the topology).
func TestDrainRunMatchesOneByOne(t *testing.T) {
	t.Parallel()
	b := setup(t)
	run := b.seed("run", domain.StatusActive)
	single := b.seed("single", domain.StatusActive)
	ops := []struct {
		op      domain.Op
		payload map[string]any
	}{
		{domain.OpAddDecky, map[string]any{"name": "db", "lan": "lan-a", "services": []string{"mysql"}, "archetype": "database-server"}},
		{domain.OpUpdateDecky, map[string]any{"decky": "db", "x": 7}},
		{domain.OpAttachDecky, map[string]any{"decky": "db", "lan": "dmz"}},
		{domain.OpUpdateLAN, map[string]any{"name": "dmz", "x": 3}},
		{domain.OpUpdateDecky, map[string]any{"decky": "web", "services": []string{"http", "ftp"}}},
		{domain.OpUpdateDecky, map[string]any{"decky": "web", "patch": map[string]any{"archetype": "web-server"}, "y": 2}},
		{domain.OpDetachDecky, map[string]any{"decky": "bridge", "lan": "lan-x"}},
		{domain.OpAddDecky, map[string]any{"name": "db2", "lan": "lan-a"}},
		{domain.OpRemoveDecky, map[string]any{"decky": "bridge"}},
		{domain.OpUpdateDecky, map[string]any{"decky": "db2", "services": []string{"ssh"}}},
		{domain.OpAttachDecky, map[string]any{"decky": "nope", "lan": "dmz"}},
	}
	for _, o := range ops {
		b.enqueue(run.TID, o.op, o.payload)
	}
	b.drain(run.TID)
	for _, o := range ops {
		b.enqueue(single.TID, o.op, o.payload)
		b.drain(single.TID)
	}

	require.Equal(t, b.outcome(single.TID), b.outcome(run.TID))
	require.Equal(t, b.calls(single.TID), b.calls(run.TID))
	require.Equal(t, appliedEvents(b.streamEntries(single.TID)), appliedEvents(b.streamEntries(run.TID)))
	require.Equal(t, domain.StatusDegraded, b.hydrated(run.TID).Topology.Status)
}

// outcome renders what a topology's mutations left, by names rather than
// ids: every LAN, decky (with its home LAN, state and config) and edge, and
// each mutation's state and reason in seq order.
func (b *testBundle) outcome(tid string) string {
	b.t.Helper()
	h := b.hydrated(tid)
	lanName := map[string]string{}
	for _, l := range h.LANs {
		lanName[l.ID] = l.Name
	}
	deckyName := map[string]string{}
	var lines []string
	for _, l := range h.LANs {
		lines = append(lines, fmt.Sprintf("lan %s %s dmz=%v x=%v y=%v", l.Name, l.Subnet, l.IsDMZ, ptr(l.X), ptr(l.Y)))
	}
	for _, d := range h.Deckies {
		deckyName[d.UUID] = d.Name
		home := ""
		if d.HomeLANID != nil {
			home = lanName[*d.HomeLANID]
		}
		cfg, _ := json.Marshal(d.Config)
		lines = append(lines, fmt.Sprintf("decky %s home=%s ip=%v state=%s services=%v config=%s x=%v y=%v err=%v",
			d.Name, home, ptr(d.IP), d.State, d.Services, cfg, ptr(d.X), ptr(d.Y), ptr(d.LastError)))
	}
	for _, e := range h.Edges {
		lines = append(lines, fmt.Sprintf("edge %s %s bridge=%v fwd=%v", deckyName[e.DeckyUUID], lanName[e.LANID], e.IsBridge, e.ForwardsL3))
	}
	sort.Strings(lines)
	ms, err := b.DB.ListMutations(b.ctx, tid, "")
	require.NoError(b.t, err)
	for i := len(ms) - 1; i >= 0; i-- {
		lines = append(lines, fmt.Sprintf("mutation %d %s %s %v", ms[i].Seq, ms[i].Op, ms[i].State, ptr(ms[i].Reason)))
	}
	out, _ := json.MarshalIndent(lines, "", " ")
	return string(out)
}

// appliedEvents lists the event names of stream entries in order, without
// `mutation.enqueued` (the run enqueued everything first).
func appliedEvents(es []stream.Entry) []string {
	var out []string
	for _, n := range eventNames(es) {
		if n != domain.EventEnqueued {
			out = append(out, n)
		}
	}
	return out
}

// ptr renders a pointer's value, or nil.
func ptr[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
