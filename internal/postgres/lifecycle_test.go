package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
)

func TestCreateBlankTopologySeed(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	tp := newBlank(t, db, "blank")
	require.Equal(t, domain.StatusPending, tp.Status)
	require.Equal(t, 1, tp.Version)
	require.Equal(t, domain.ModeUnihost, tp.Mode)
	require.JSONEq(t, `{"blank": true}`, string(tp.ConfigSnapshot))

	h, err := db.GetHydrated(ctx, tp.ID)
	require.NoError(t, err)
	require.Len(t, h.LANs, 1)
	lan := h.LANs[0]
	require.Equal(t, "dmz", lan.Name)
	require.True(t, lan.IsDMZ)
	require.Equal(t, "10.0.0.0/24", lan.Subnet)
	require.Equal(t, 40.0, *lan.X)
	require.Equal(t, 40.0, *lan.Y)

	require.Len(t, h.Deckies, 1)
	gw := h.Deckies[0]
	require.Equal(t, "dmz-gateway", gw.Name)
	require.Equal(t, []string{"ssh"}, gw.Services)
	require.Equal(t, "10.0.0.2", *gw.IP)
	require.Equal(t, lan.ID, *gw.HomeLANID)
	require.Equal(t, map[string]any{"name": "dmz-gateway", "archetype": "deaddeck", "forwards_l3": true,
		"ips_by_lan": map[string]any{"dmz": "10.0.0.2"}}, gw.Config)
	require.Equal(t, 20.0, *gw.X)
	require.Equal(t, 60.0, *gw.Y)

	require.Len(t, h.Edges, 1)
	require.Equal(t, domain.Edge{ID: h.Edges[0].ID, TopologyID: tp.ID, DeckyUUID: gw.UUID, LANID: lan.ID,
		IsBridge: true, ForwardsL3: true}, h.Edges[0])

	require.Empty(t, domain.Validate(h, true), "a blank topology is deployable")
}

func TestCreateBlankTopologyRejects(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	newBlank(t, db, "taken")
	host := "0b0f6a51-4a3e-4c5e-9c0e-8f1f2d3c4b5a"
	bad := "nope"
	cases := []struct {
		name string
		in   postgres.BlankTopology
		code domain.Code
		msg  string
	}{
		{"duplicate", postgres.BlankTopology{Name: "taken"}, domain.EConflict, "A topology named 'taken' already exists."},
		{"empty name", postgres.BlankTopology{Name: ""}, domain.EUnprocessable, "body.name: must be 1–64 characters"},
		{"long name", postgres.BlankTopology{Name: fmt.Sprintf("%065d", 0)}, domain.EUnprocessable, "body.name: must be 1–64 characters"},
		{"unknown mode", postgres.BlankTopology{Name: "m", Mode: "cloud"}, domain.EUnprocessable, "body.mode: must be 'unihost' or 'agent'"},
		{"agent without host", postgres.BlankTopology{Name: "a", Mode: domain.ModeAgent}, domain.EInvalid, "mode 'agent' requires target_host_uuid"},
		{"unihost with host", postgres.BlankTopology{Name: "u", TargetHostUUID: &host}, domain.EInvalid, "target_host_uuid must be null for mode 'unihost'"},
		{"bad host", postgres.BlankTopology{Name: "b", Mode: domain.ModeAgent, TargetHostUUID: &bad}, domain.EUnprocessable, "body.target_host_uuid: must be a UUID"},
	}
	for _, c := range cases {
		_, err := db.CreateBlankTopology(ctx, c.in)
		require.Equal(t, c.code, domain.ErrorCode(err), c.name)
		require.Equal(t, c.msg, domain.ErrorMessage(err), c.name)
	}
	n := 0
	require.NoError(t, db.Get(&n, `SELECT count(*) FROM topologies`))
	require.Equal(t, 1, n, "rejected creations write nothing")

	agent, err := db.CreateBlankTopology(ctx, postgres.BlankTopology{Name: "pinned", Mode: domain.ModeAgent, TargetHostUUID: &host})
	require.NoError(t, err)
	require.Equal(t, domain.ModeAgent, agent.Mode)
	require.Equal(t, host, *agent.TargetHostUUID)
	// 64 characters (not bytes) is the limit.
	_, err = db.CreateBlankTopology(ctx, postgres.BlankTopology{Name: fmt.Sprintf("%063dé", 0)})
	require.NoError(t, err)
}

// Concurrent creations must not allocate the same subnet (the allocation
// lock in ReservedSubnetsTx).
func TestCreateBlankTopologyConcurrentSubnets(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	const n = 12
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = db.CreateBlankTopology(ctx, postgres.BlankTopology{Name: fmt.Sprintf("c%02d", i)})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	var subnets []string
	require.NoError(t, db.Select(&subnets, `SELECT subnet FROM lans ORDER BY subnet`))
	require.Len(t, subnets, n)
	seen := map[string]bool{}
	for _, s := range subnets {
		require.False(t, seen[s], "subnet %s allocated twice", s)
		seen[s] = true
	}
	for i := range n {
		require.True(t, seen[fmt.Sprintf("10.0.%d.0/24", i)], "the lowest %d /24s are used", n)
	}
}

func TestReservedSubnetsSkipTornDown(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	a := newBlank(t, db, "a")
	newBlank(t, db, "b")
	got, err := db.ReservedSubnets(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"10.0.0.0/24": true, "10.0.1.0/24": true}, got)

	for _, s := range []domain.Status{domain.StatusDeploying, domain.StatusActive, domain.StatusDegraded,
		domain.StatusFailed, domain.StatusTearingDown} {
		forceStatus(t, db, a.ID, s)
		got, err = db.ReservedSubnets(ctx)
		require.NoError(t, err)
		require.True(t, got["10.0.0.0/24"], "a %s topology keeps its subnet", s)
	}
	forceStatus(t, db, a.ID, domain.StatusTornDown)
	got, err = db.ReservedSubnets(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"10.0.1.0/24": true}, got)
	c := newBlank(t, db, "c")
	h, err := db.GetHydrated(ctx, c.ID)
	require.NoError(t, err)
	require.Equal(t, "10.0.0.0/24", h.LANs[0].Subnet, "a torn_down topology's subnet is reused")
}

func TestListTopologySummaries(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	var ids []string
	for i := range 5 {
		ids = append(ids, newBlank(t, db, fmt.Sprintf("l%d", i)).ID)
	}
	forceStatus(t, db, ids[1], domain.StatusActive)
	page, total, err := db.ListTopologySummaries(ctx, postgres.TopologyFilter{Limit: 2, Offset: 1})
	require.NoError(t, err)
	require.Equal(t, 5, total)
	require.Equal(t, []string{ids[3], ids[2]}, []string{page[0].ID, page[1].ID}, "newest first")
	page, total, err = db.ListTopologySummaries(ctx, postgres.TopologyFilter{Status: domain.StatusActive, Limit: 10})
	require.NoError(t, err)
	require.Equal(t, 1, total)
	require.Equal(t, ids[1], page[0].ID)
	page, total, err = db.ListTopologySummaries(ctx, postgres.TopologyFilter{Limit: 10, Offset: 50})
	require.NoError(t, err)
	require.Equal(t, 5, total)
	require.NotNil(t, page)
	require.Empty(t, page)
}

func TestDeleteTopologyCascades(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	tp := newBlank(t, db, "gone")
	keep := newBlank(t, db, "kept")
	_, err := db.TransitionStatus(ctx, tp.ID, domain.StatusTornDown, nil)
	require.NoError(t, err)
	for _, s := range []domain.Status{domain.StatusDeploying, domain.StatusActive, domain.StatusDegraded, domain.StatusTearingDown} {
		forceStatus(t, db, keep.ID, s)
		require.Equal(t, domain.EConflict, domain.ErrorCode(db.DeleteTopology(ctx, keep.ID)), s)
	}
	require.NoError(t, db.DeleteTopology(ctx, tp.ID))
	for _, table := range []string{"lans", "deckies", "edges", "status_events", "events", "mutations"} {
		var n int
		require.NoError(t, db.Get(&n, `SELECT count(*) FROM `+table+` WHERE topology_id = $1`, tp.ID))
		require.Zero(t, n, table)
	}
	require.Equal(t, domain.ENotFound, domain.ErrorCode(db.DeleteTopology(ctx, tp.ID)))
	var n int
	require.NoError(t, db.Get(&n, `SELECT count(*) FROM lans WHERE topology_id = $1`, keep.ID))
	require.Equal(t, 1, n, "other topologies are untouched")
}

func TestBeginDeployRefusesInvalid(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	tp := newBlank(t, db, "invalid")
	_, _, err := db.CreateLAN(ctx, tp.ID, nil, postgres.LANInput{Name: "island"})
	require.NoError(t, err)
	before := readState(t, db, tp.ID)

	_, err = db.CheckDeployable(ctx, tp.ID)
	require.Equal(t, domain.EUnprocessable, domain.ErrorCode(err))
	require.Equal(t, "Topology failed deploy validation: DMZ_ORPHAN", domain.ErrorMessage(err))
	_, err = db.BeginDeploy(ctx, tp.ID, "w", time.Minute)
	require.Equal(t, domain.EUnprocessable, domain.ErrorCode(err))
	var de *domain.Error
	require.ErrorAs(t, err, &de)
	issues := de.Fields["issues"].([]domain.Issue)
	require.Equal(t, domain.IssueDMZOrphan, issues[0].Code)
	require.Equal(t, before, readState(t, db, tp.ID), "a refused deploy writes nothing and stays pending")

	ok := newBlank(t, db, "valid")
	l, err := db.BeginDeploy(ctx, ok.ID, "w", time.Minute)
	require.NoError(t, err)
	require.Equal(t, domain.StatusDeploying, l.View.Topology.Status)
	require.Len(t, l.Events, 1)
	require.Equal(t, domain.EventStatus, l.Events[0].Name)
	require.Equal(t, domain.StatusDeploying, readState(t, db, ok.ID).Status)
	_, err = db.BeginDeploy(ctx, ok.ID, "w2", time.Minute)
	require.Equal(t, domain.EConflict, domain.ErrorCode(err), "only pending topologies deploy")
}

func TestBeginTeardownStatuses(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	allowed := map[domain.Status]bool{domain.StatusActive: true, domain.StatusDegraded: true,
		domain.StatusFailed: true, domain.StatusDeploying: true}
	for _, s := range domain.Statuses {
		tp := newBlank(t, db, "td-"+string(s))
		forceStatus(t, db, tp.ID, s)
		l, err := db.BeginTeardown(ctx, tp.ID, "w", time.Minute)
		if !allowed[s] {
			require.Equal(t, domain.EConflict, domain.ErrorCode(err), s)
			require.Equal(t, s, readState(t, db, tp.ID).Status)
			continue
		}
		require.NoError(t, err, s)
		require.Equal(t, domain.StatusTearingDown, l.View.Topology.Status)
		require.Len(t, l.View.Deckies, 1)
	}
}

func TestChildCRUDEditsPendingOnly(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	tp := newBlank(t, db, "live")
	h, err := db.GetHydrated(ctx, tp.ID)
	require.NoError(t, err)
	lanID, gwID, edgeID := h.LANs[0].ID, h.Deckies[0].UUID, h.Edges[0].ID
	forceStatus(t, db, tp.ID, domain.StatusActive)
	name := "x"
	before := readState(t, db, tp.ID)
	writes := map[string]error{}
	_, _, writes["create lan"] = db.CreateLAN(ctx, tp.ID, nil, postgres.LANInput{Name: "n"})
	_, _, writes["update lan"] = db.UpdateLAN(ctx, tp.ID, lanID, nil, postgres.LANPatch{Name: &name})
	_, writes["delete lan"] = db.DeleteLAN(ctx, tp.ID, lanID, nil)
	_, _, writes["create decky"] = db.CreateDecky(ctx, tp.ID, nil, postgres.DeckyInput{Name: "d", LAN: "dmz"})
	_, _, writes["update decky"] = db.UpdateDecky(ctx, tp.ID, gwID, nil, postgres.DeckyPatch{Name: &name})
	_, writes["delete decky"] = db.DeleteDecky(ctx, tp.ID, gwID, nil)
	_, _, writes["create edge"] = db.CreateEdge(ctx, tp.ID, nil, postgres.EdgeInput{DeckyUUID: gwID, LANID: lanID})
	_, writes["delete edge"] = db.DeleteEdge(ctx, tp.ID, edgeID, nil)
	for what, err := range writes {
		require.Equal(t, domain.EConflict, domain.ErrorCode(err), what)
		require.Contains(t, domain.ErrorMessage(err), "only allowed while 'pending'", what)
	}
	require.Equal(t, before, readState(t, db, tp.ID))
}

func TestChildCRUDVersionCheck(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	tp := newBlank(t, db, "v")
	one, five := 1, 5

	lan, v, err := db.CreateLAN(ctx, tp.ID, nil, postgres.LANInput{Name: "free"})
	require.NoError(t, err)
	require.Equal(t, 1, v, "no expected_version: no bump")
	require.Equal(t, "10.0.1.0/24", lan.Subnet, "auto subnet skips the DMZ's")

	_, _, err = db.CreateLAN(ctx, tp.ID, &five, postgres.LANInput{Name: "stale"})
	require.Equal(t, domain.EConflict, domain.ErrorCode(err))
	require.Equal(t, "Version conflict: expected 5, current 1", domain.ErrorMessage(err))
	h, err := db.GetHydrated(ctx, tp.ID)
	require.NoError(t, err)
	require.Len(t, h.LANs, 2, "a version conflict writes nothing")
	require.Equal(t, 1, h.Topology.Version)

	_, v, err = db.CreateLAN(ctx, tp.ID, &one, postgres.LANInput{Name: "fresh"})
	require.NoError(t, err)
	require.Equal(t, 2, v)
	require.Equal(t, 2, readState(t, db, tp.ID).Version)

	// A rejected write with a matching version rolls the bump back too.
	two := 2
	_, _, err = db.CreateLAN(ctx, tp.ID, &two, postgres.LANInput{Name: "fresh"})
	require.Equal(t, domain.EConflict, domain.ErrorCode(err))
	require.Equal(t, "LAN 'fresh' already exists", domain.ErrorMessage(err))
	require.Equal(t, 2, readState(t, db, tp.ID).Version)
}

// Concurrent writes carrying the same expected_version: exactly one wins.
func TestChildCRUDConcurrentVersion(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	tp := newBlank(t, db, "race")
	const n = 8
	one := 1
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = db.CreateLAN(ctx, tp.ID, &one, postgres.LANInput{Name: fmt.Sprintf("lan-%d", i)})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		require.Equal(t, "Version conflict: expected 1, current 2", domain.ErrorMessage(err))
	}
	require.Equal(t, 1, ok)
	h, err := db.GetHydrated(ctx, tp.ID)
	require.NoError(t, err)
	require.Len(t, h.LANs, 2)
	require.Equal(t, 2, h.Topology.Version)
}

func TestChildCRUDDeckiesAndEdges(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	tp := newBlank(t, db, "edit")
	inner, _, err := db.CreateLAN(ctx, tp.ID, nil, postgres.LANInput{Name: "inner", Subnet: "192.168.7.0/24"})
	require.NoError(t, err)

	// Bridge the gateway into the inner LAN, then home a decky there.
	h, err := db.GetHydrated(ctx, tp.ID)
	require.NoError(t, err)
	gw := h.Deckies[0]
	edge, _, err := db.CreateEdge(ctx, tp.ID, nil, postgres.EdgeInput{DeckyUUID: gw.UUID, LANID: inner.ID})
	require.NoError(t, err)
	require.True(t, edge.IsBridge)
	_, _, err = db.CreateEdge(ctx, tp.ID, nil, postgres.EdgeInput{DeckyUUID: gw.UUID, LANID: inner.ID})
	require.Equal(t, "decky 'dmz-gateway' already on LAN 'inner'", domain.ErrorMessage(err))

	web, _, err := db.CreateDecky(ctx, tp.ID, nil, postgres.DeckyInput{Name: "web", LAN: inner.ID,
		Services: []string{"http"}, Archetype: "web-server", Config: map[string]any{"note": "kept"}})
	require.NoError(t, err)
	require.Equal(t, "192.168.7.3", *web.IP, ".2 is the gateway's bridge address")
	require.Equal(t, map[string]any{"name": "web", "archetype": "web-server", "note": "kept",
		"ips_by_lan": map[string]any{"inner": "192.168.7.3"}}, web.Config)
	_, _, err = db.CreateDecky(ctx, tp.ID, nil, postgres.DeckyInput{Name: "web", LAN: "inner"})
	require.Equal(t, "decky 'web' already exists", domain.ErrorMessage(err))
	_, _, err = db.CreateDecky(ctx, tp.ID, nil, postgres.DeckyInput{Name: "x", LAN: "nowhere"})
	require.Equal(t, domain.EUnprocessable, domain.ErrorCode(err))
	_, _, err = db.CreateDecky(ctx, tp.ID, nil, postgres.DeckyInput{Name: "x", LAN: "inner",
		Config: map[string]any{"ips_by_lan": map[string]any{"inner": "192.168.7.99"}}})
	require.Equal(t, domain.EUnprocessable, domain.ErrorCode(err), "ips_by_lan is server-owned")

	h, err = db.GetHydrated(ctx, tp.ID)
	require.NoError(t, err)
	require.Empty(t, domain.Validate(h, true))

	// Home LAN and home edge are protected.
	_, err = db.DeleteLAN(ctx, tp.ID, inner.ID, nil)
	require.Equal(t, "LAN 'inner' is the home LAN of decky 'web'; remove the decky first", domain.ErrorMessage(err))
	var homeEdge string
	for _, e := range h.Edges {
		if e.DeckyUUID == web.UUID {
			homeEdge = e.ID
			require.False(t, e.IsBridge)
		}
	}
	_, err = db.DeleteEdge(ctx, tp.ID, homeEdge, nil)
	require.Equal(t, domain.EConflict, domain.ErrorCode(err))

	// Rename the LAN: members' ips_by_lan follow.
	newName := "backend"
	_, _, err = db.UpdateLAN(ctx, tp.ID, inner.ID, nil, postgres.LANPatch{Name: &newName,
		X: postgres.Coord{Set: true, Value: new(1.5)}})
	require.NoError(t, err)
	h, err = db.GetHydrated(ctx, tp.ID)
	require.NoError(t, err)
	for _, d := range h.Deckies {
		_, ok := d.IPsByLAN()["backend"]
		require.True(t, ok, d.Name)
	}
	require.Empty(t, domain.Validate(h, true))

	// Patch the decky: rename, services, config merge; managed keys refused.
	svc := []string{"ssh"}
	renamed := "web-2"
	d, _, err := db.UpdateDecky(ctx, tp.ID, web.UUID, nil, postgres.DeckyPatch{Name: &renamed, Services: &svc,
		Config: map[string]any{"note": "changed", "service_config": map[string]any{"ssh": map[string]any{}}}})
	require.NoError(t, err)
	require.Equal(t, "web-2", d.Name)
	require.Equal(t, "web-2", d.Config["name"])
	require.Equal(t, "changed", d.Config["note"])
	require.Equal(t, "web-server", d.Config["archetype"], "untouched keys survive the merge")
	require.Equal(t, []string{"ssh"}, d.Services)
	_, _, err = db.UpdateDecky(ctx, tp.ID, web.UUID, nil, postgres.DeckyPatch{Config: map[string]any{"name": "other"}})
	require.Equal(t, domain.EUnprocessable, domain.ErrorCode(err))
	_, _, err = db.UpdateDecky(ctx, tp.ID, web.UUID, nil, postgres.DeckyPatch{Config: map[string]any{"forwards_l3": "yes"}})
	require.Equal(t, domain.EUnprocessable, domain.ErrorCode(err))

	// Detach the gateway's bridge edge: its ips_by_lan entry goes with it.
	_, err = db.DeleteEdge(ctx, tp.ID, edge.ID, nil)
	require.NoError(t, err)
	h, err = db.GetHydrated(ctx, tp.ID)
	require.NoError(t, err)
	gwAfter := h.Deckies[0]
	require.Equal(t, "dmz-gateway", gwAfter.Name)
	require.Equal(t, map[string]string{"dmz": "10.0.0.2"}, gwAfter.IPsByLAN())
	require.Len(t, h.Edges, 2)

	// Remove the decky, then its LAN.
	_, err = db.DeleteDecky(ctx, tp.ID, web.UUID, nil)
	require.NoError(t, err)
	_, err = db.DeleteLAN(ctx, tp.ID, inner.ID, nil)
	require.NoError(t, err)
	h, err = db.GetHydrated(ctx, tp.ID)
	require.NoError(t, err)
	require.Len(t, h.LANs, 1)
	require.Len(t, h.Deckies, 1)
	require.Len(t, h.Edges, 1)

	// Unknown ids, malformed or not, are 404.
	for _, id := range []string{"nope", web.UUID} {
		_, err = db.DeleteDecky(ctx, tp.ID, id, nil)
		require.Equal(t, domain.ENotFound, domain.ErrorCode(err))
		_, err = db.DeleteLAN(ctx, tp.ID, id, nil)
		require.Equal(t, domain.ENotFound, domain.ErrorCode(err))
		_, err = db.DeleteEdge(ctx, tp.ID, id, nil)
		require.Equal(t, domain.ENotFound, domain.ErrorCode(err))
	}
}

func TestNextIPReusesFreedAddresses(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	tp := newBlank(t, db, "ips")
	h, err := db.GetHydrated(ctx, tp.ID)
	require.NoError(t, err)
	dmz := h.LANs[0].ID
	next := func() string {
		t.Helper()
		ip, err := db.NextIP(ctx, tp.ID, dmz)
		require.NoError(t, err)
		return ip
	}
	require.Equal(t, "10.0.0.3", next())
	a, _, err := db.CreateDecky(ctx, tp.ID, nil, postgres.DeckyInput{Name: "a", LAN: dmz})
	require.NoError(t, err)
	require.Equal(t, "10.0.0.3", *a.IP)
	_, _, err = db.CreateDecky(ctx, tp.ID, nil, postgres.DeckyInput{Name: "b", LAN: dmz})
	require.NoError(t, err)
	require.Equal(t, "10.0.0.5", next())
	_, err = db.DeleteDecky(ctx, tp.ID, a.UUID, nil)
	require.NoError(t, err)
	require.Equal(t, "10.0.0.3", next(), "a freed address is reused")

	_, err = db.NextIP(ctx, tp.ID, "nope")
	require.Equal(t, domain.ENotFound, domain.ErrorCode(err))
	bad, _, err := db.CreateLAN(ctx, tp.ID, nil, postgres.LANInput{Name: "bad", Subnet: "not-a-subnet"})
	require.NoError(t, err, "subnet syntax is not checked on write")
	_, err = db.NextIP(ctx, tp.ID, bad.ID)
	require.Equal(t, domain.EUnprocessable, domain.ErrorCode(err))
	tiny, _, err := db.CreateLAN(ctx, tp.ID, nil, postgres.LANInput{Name: "tiny", Subnet: "10.9.9.0/30"})
	require.NoError(t, err)
	_, _, err = db.CreateDecky(ctx, tp.ID, nil, postgres.DeckyInput{Name: "only", LAN: tiny.ID})
	require.NoError(t, err)
	_, err = db.NextIP(ctx, tp.ID, tiny.ID)
	require.Equal(t, "no free IPs left in 10.9.9.0/30", domain.ErrorMessage(err))
}
