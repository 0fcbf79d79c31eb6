package worker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/materializer"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/tasks"
)

// Regression tests for the faults of issue 7 (SYSTEM §3.8): fenced side
// effects (F3), teardown coordinated with an in-flight drain (F2), deploys
// and teardowns whose worker died (F4), and recovery that does not depend
// on the current view (F6). Lease expiry is played by moving drain_until
// into the past; a paused worker by a materializer call held on a channel.

// gatedMaterializer is the bundle's test materializer, except that the
// first call named call announces itself on entered and waits for release
// before it reaches the test materializer, with a context that can no longer
// be cancelled: the request is already on its way, as a paused process's
// would be when it wakes.
type gatedMaterializer struct {
	*materializer.Test
	call     string
	entered  chan struct{}
	release  chan struct{}
	holdOnce sync.Once
}

func newGate(m *materializer.Test, call string) *gatedMaterializer {
	return &gatedMaterializer{Test: m, call: call, entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *gatedMaterializer) hold(ctx context.Context, call string) context.Context {
	if call != g.call {
		return ctx
	}
	held := false
	g.holdOnce.Do(func() { held = true })
	if !held {
		return ctx
	}
	close(g.entered)
	<-g.release
	return context.WithoutCancel(ctx)
}

// waitEntered waits until the gated call is held.
func (g *gatedMaterializer) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(30 * time.Second):
		t.Fatalf("the %s call was never made", g.call)
	}
}

func (g *gatedMaterializer) Spawn(ctx context.Context, s materializer.Scope, d *domain.Decky) (bool, error) {
	return g.Test.Spawn(g.hold(ctx, domain.CallSpawn), s, d)
}

func (g *gatedMaterializer) Deploy(ctx context.Context, s materializer.Scope, h *domain.Hydrated) (bool, error) {
	return g.Test.Deploy(g.hold(ctx, "Deploy"), s, h)
}

func (g *gatedMaterializer) Teardown(ctx context.Context, s materializer.Scope, h *domain.Hydrated) error {
	return g.Test.Teardown(g.hold(ctx, "Teardown"), s, h)
}

// expireLease moves a topology's lease deadline into the past, as the
// passing of its ttl would.
func (b *testBundle) expireLease(tid string) {
	b.t.Helper()
	_, err := b.DB.ExecContext(b.ctx, `UPDATE topologies SET drain_until = now() - interval '1 second' WHERE id = $1`, tid)
	require.NoError(b.t, err)
}

// checkFenceInvariant asserts the call-log invariant of CONTRACTS on one
// topology's log: among accepted calls, fences never decrease, seqs never
// decrease, and no mutation call follows an accepted Teardown.
func checkFenceInvariant(t *testing.T, log []materializer.Call) {
	t.Helper()
	var fence, seq int64
	tornDown := false
	for i, c := range log {
		if c.Rejected {
			continue
		}
		require.GreaterOrEqual(t, c.Fence, fence, "call %d (%s): accepted fences decreased", i, c.Call)
		fence = c.Fence
		if c.MutationID != "" {
			require.False(t, tornDown, "call %d (%s): a mutation call was accepted after Teardown", i, c.Call)
			require.GreaterOrEqual(t, c.Seq, seq, "call %d (%s): accepted seqs decreased", i, c.Call)
			seq = c.Seq
		}
		if c.Call == "Teardown" {
			tornDown = true
		}
	}
}

// call is the part of a log entry these tests compare.
type call struct {
	Name     string
	Mutation string
	Fence    int64
	Rejected bool
}

func summarize(log []materializer.Call) []call {
	out := make([]call, len(log))
	for i, c := range log {
		out[i] = call{c.Call, c.MutationID, c.Fence, c.Rejected}
	}
	return out
}

// F3: a drainer paused inside a materializer call past its lease, while a
// second worker takes over and applies mutation N+1, cannot make its stale
// call for N when it wakes: the call is refused by fence, the pass stops
// without writing, and the log shows no decky call of N after N+1's.
func TestFencePausedDrainer(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := b.seed("paused", domain.StatusActive)
	n1 := b.enqueue(f.TID, domain.OpAddDecky, map[string]any{"name": "db", "lan": "lan-a"})
	n2 := b.enqueue(f.TID, domain.OpRemoveDecky, map[string]any{"decky": "db"})

	paused := b.newWorker("paused")
	gate := newGate(b.Mat, domain.CallSpawn)
	paused.Materializer = gate
	done := make(chan error, 1)
	go func() { done <- paused.Drain(context.Background(), f.TID) }()
	gate.waitEntered(t)
	require.Equal(t, domain.MutationApplying, b.mutation(f.TID, n1.ID).State)

	b.expireLease(f.TID)
	b.drain(f.TID) // another worker takes over: recovers N, applies N+1
	require.Equal(t, domain.MutationApplied, b.mutation(f.TID, n1.ID).State)
	require.Equal(t, domain.MutationApplied, b.mutation(f.TID, n2.ID).State)
	require.Nil(t, deckyByName(b.hydrated(f.TID), "db"))

	close(gate.release)
	require.NoError(t, <-done, "a pass that lost its lease stops quietly")

	log := b.callLog(f.TID)
	checkFenceInvariant(t, log)
	stale := log[0].Fence - 1
	require.Equal(t, []call{
		{"Spawn", n1.ID, stale + 1, false}, // the new holder re-materialises N
		{"Remove", n2.ID, stale + 1, false},
		{"Spawn", n1.ID, stale, true}, // the paused drainer wakes: refused
	}, summarize(log))
	require.Nil(t, deckyByName(b.hydrated(f.TID), "db"), "the stale drainer wrote nothing")
	require.Equal(t, []string{domain.EventEnqueued, domain.EventEnqueued, domain.EventApplying, domain.EventApplied,
		domain.EventApplying, domain.EventApplied}, eventNames(b.streamEntries(f.TID)), "each event once")
}

// The cheap local check: a drainer whose own clock says its lease ran out
// (it was paused between two calls of one mutation) makes no further call
// and leaves the mutation to the next holder, which re-materialises all of
// it with a higher fence.
func TestLocalLeaseCheckStopsPausedDrainer(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := b.seed("clock", domain.StatusActive)
	m := b.enqueue(f.TID, domain.OpRemoveLAN, map[string]any{"name": "lan-x"}) // Disconnect, then RemoveNetwork

	var mu sync.Mutex
	var skew time.Duration
	paused := b.newWorker("paused")
	paused.Now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return time.Now().Add(skew)
	}
	paused.Materializer = &afterCall{Test: b.Mat, call: domain.CallDisconnect, then: func() {
		mu.Lock()
		skew = time.Hour // the process stops for an hour right after this call
		mu.Unlock()
	}}
	require.NoError(t, paused.Drain(b.ctx, f.TID))
	require.Equal(t, domain.MutationApplying, b.mutation(f.TID, m.ID).State, "left to the next holder")
	require.Equal(t, []materializer.Call{{Call: "Disconnect", Decky: "bridge", LAN: "lan-x"}}, b.calls(f.TID))

	b.expireLease(f.TID)
	b.drain(f.TID)
	require.Equal(t, domain.MutationApplied, b.mutation(f.TID, m.ID).State)
	log := b.callLog(f.TID)
	checkFenceInvariant(t, log)
	require.Equal(t, []string{"Disconnect", "Disconnect", "RemoveNetwork"},
		[]string{log[0].Call, log[1].Call, log[2].Call})
	require.Less(t, log[0].Fence, log[1].Fence)
}

// afterCall runs then after the first call named call returns.
type afterCall struct {
	*materializer.Test
	call string
	then func()
	once sync.Once
}

func (a *afterCall) Disconnect(ctx context.Context, s materializer.Scope, d *domain.Decky, l *domain.LAN) error {
	err := a.Test.Disconnect(ctx, s, d, l)
	if a.call == domain.CallDisconnect {
		a.once.Do(a.then)
	}
	return err
}

// F2: a teardown that starts while a mutation is mid-materialisation takes
// the lease with a higher fence and ends every open mutation in its own
// commit (committed → applied, pending → failed); the drainer's late call
// is refused, it marks no decky running in the torn-down topology, and it
// writes no event.
func TestTeardownDuringMaterialize(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := b.seed("td-mid", domain.StatusActive)
	n1 := b.enqueue(f.TID, domain.OpAddDecky, map[string]any{"name": "db", "lan": "lan-a"})
	n2 := b.enqueue(f.TID, domain.OpAddLAN, map[string]any{"name": "lan-b"})

	drainer := b.newWorker("drainer")
	gate := newGate(b.Mat, domain.CallSpawn)
	drainer.Materializer = gate
	done := make(chan error, 1)
	go func() { done <- drainer.Drain(context.Background(), f.TID) }()
	gate.waitEntered(t)

	require.NoError(t, b.W.handleTeardown(b.ctx, tasks.New(tasks.TypeTeardown, f.TID, b.Redis.Queue)))
	require.Equal(t, domain.StatusTornDown, b.hydrated(f.TID).Topology.Status)
	_, _, err := b.DB.EnqueueMutation(b.ctx, postgres.NewMutation{TopologyID: f.TID, Op: domain.OpAddLAN, Payload: []byte(`{"name": "late"}`)})
	require.Equal(t, domain.EConflict, domain.ErrorCode(err), "the queue is closed")

	close(gate.release)
	require.NoError(t, <-done)

	got1, got2 := b.mutation(f.TID, n1.ID), b.mutation(f.TID, n2.ID)
	require.Equal(t, domain.MutationApplied, got1.State, "its op had committed: its change is real")
	require.Equal(t, domain.MutationFailed, got2.State)
	require.Equal(t, postgres.ReasonTornDown, *got2.Reason)
	for _, d := range b.hydrated(f.TID).Deckies {
		require.Equal(t, "torn_down", d.State, "decky %s", d.Name)
	}
	log := b.callLog(f.TID)
	checkFenceInvariant(t, log)
	require.Len(t, log, 2)
	require.Equal(t, call{"Teardown", "", log[0].Fence, false}, summarize(log)[0])
	require.Equal(t, call{"Spawn", n1.ID, log[0].Fence - 1, true}, summarize(log)[1], "the drainer's late Spawn is refused")
	require.Equal(t, []string{
		domain.EventEnqueued, domain.EventEnqueued,
		domain.EventApplying,                     // n1's op committed
		domain.EventStatus,                       // tearing_down
		domain.EventApplied,                      // n1 ended by the teardown
		domain.EventApplying, domain.EventFailed, // n2 ended by the teardown
		domain.EventStatus, // torn_down
	}, eventNames(b.streamEntries(f.TID)), "the drainer wrote no event after the teardown")
}

// F2: a mutation whose worker was killed mid-apply, followed by a teardown,
// ends terminal: failed if its op never committed, applied if it did.
func TestTeardownAfterKilledApply(t *testing.T) {
	t.Parallel()
	b := setup(t)
	teardown := func(tid string) {
		t.Helper()
		require.NoError(t, b.W.handleTeardown(b.ctx, tasks.New(tasks.TypeTeardown, tid, b.Redis.Queue)))
		require.Equal(t, domain.StatusTornDown, b.hydrated(tid).Topology.Status)
	}

	f := b.seed("killed-before", domain.StatusActive)
	m := b.enqueue(f.TID, domain.OpAddLAN, map[string]any{"name": "lan-b"})
	claimed, _, err := b.DB.ClaimNext(b.ctx, f.TID, "dead", time.Minute)
	require.NoError(t, err)
	require.Equal(t, m.ID, claimed.ID)
	teardown(f.TID)
	got := b.mutation(f.TID, m.ID)
	require.Equal(t, domain.MutationFailed, got.State)
	require.Equal(t, postgres.ReasonTornDown, *got.Reason)
	require.Nil(t, lanByName(b.hydrated(f.TID), "lan-b"))

	f = b.seed("killed-after", domain.StatusActive)
	m = b.enqueue(f.TID, domain.OpAddDecky, map[string]any{"name": "db", "lan": "lan-a"})
	claimed, _, err = b.DB.ClaimNext(b.ctx, f.TID, "dead", time.Minute)
	require.NoError(t, err)
	_, err = b.DB.CommitMutation(b.ctx, &claimed.Mutation, uuid.NewString)
	require.NoError(t, err) // the op committed; the worker died before materialising
	teardown(f.TID)
	require.Equal(t, domain.MutationApplied, b.mutation(f.TID, m.ID).State)
	require.Equal(t, "torn_down", deckyByName(b.hydrated(f.TID), "db").State)
	require.Equal(t, []materializer.Call{{Call: "Teardown"}}, b.calls(f.TID))

	p, a, err := b.DB.OpenMutationCounts(b.ctx)
	require.NoError(t, err)
	require.Zero(t, p+a, "every mutation is terminal")
}

// F4: a deploy and a teardown whose worker died (started, then abandoned
// with the lease left to expire) are finished by the sweep, with a higher
// fence, and publish their status events; while the lease is live the
// sweep leaves them alone.
func TestSweepFinishesAbandonedLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	blank := func(name string) string {
		tp, err := b.DB.CreateBlankTopology(b.ctx, postgres.BlankTopology{Name: name})
		require.NoError(t, err)
		return tp.ID
	}

	tid := blank("abandoned-deploy")
	_, err := b.DB.BeginDeploy(b.ctx, tid, "dead#1", time.Minute)
	require.NoError(t, err)
	require.NoError(t, b.W.SweepLifecycle(b.ctx))
	require.Equal(t, domain.StatusDeploying, b.hydrated(tid).Topology.Status, "a live lease is left alone")
	b.expireLease(tid)
	require.NoError(t, b.W.Sweep(b.ctx))
	require.Equal(t, domain.StatusActive, b.hydrated(tid).Topology.Status)
	require.Equal(t, []call{{"Deploy", "", 2, false}}, summarize(b.callLog(tid)), "fence 1 was the dead worker's")
	require.Equal(t, []string{"running"}, deckyStates(t, b, tid))
	require.Equal(t, []string{domain.EventStatus, domain.EventStatus}, eventNames(b.streamEntries(tid)))
	var owner *string
	require.NoError(t, b.DB.GetContext(b.ctx, &owner, `SELECT drain_owner FROM topologies WHERE id = $1`, tid))
	require.Nil(t, owner, "the lease is freed with the outcome")

	tid2 := b.seed("abandoned-teardown", domain.StatusActive).TID
	_, err = b.DB.BeginTeardown(b.ctx, tid2, "dead#2", time.Minute)
	require.NoError(t, err)
	b.expireLease(tid2)
	require.NoError(t, b.W.Sweep(b.ctx))
	require.Equal(t, domain.StatusTornDown, b.hydrated(tid2).Topology.Status)
	require.Equal(t, []call{{"Teardown", "", 2, false}}, summarize(b.callLog(tid2)))
	hist := b.statusEvents(tid2)
	require.Len(t, hist, 2)
	require.Equal(t, domain.StatusTornDown, hist[0].ToStatus)
}

// F4: attempts are counted durably; a deploy abandoned every time is given
// up on after maxLifecycleAttempts with failed and a reason, a teardown with
// degraded, without another materializer call.
func TestSweepGivesUpAbandonedLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tp, err := b.DB.CreateBlankTopology(b.ctx, postgres.BlankTopology{Name: "doomed"})
	require.NoError(t, err)
	_, err = b.DB.BeginDeploy(b.ctx, tp.ID, "dead#1", time.Minute)
	require.NoError(t, err)
	for attempt := 2; attempt <= maxLifecycleAttempts; attempt++ {
		b.expireLease(tp.ID)
		l, err := b.DB.ResumeLifecycle(b.ctx, tp.ID, "dead-again", time.Minute) // resumed, and dies again
		require.NoError(t, err)
		require.Equal(t, attempt, l.Attempt)
	}
	b.expireLease(tp.ID)
	require.NoError(t, b.W.SweepLifecycle(b.ctx))
	h := b.hydrated(tp.ID)
	require.Equal(t, domain.StatusFailed, h.Topology.Status)
	se := b.statusEvents(tp.ID)
	require.Equal(t, "DeployError: gave up after 3 attempts; each time the worker stopped before finishing", *se[0].Reason)
	require.Empty(t, b.callLog(tp.ID))

	f := b.seed("doomed-teardown", domain.StatusActive)
	_, err = b.DB.BeginTeardown(b.ctx, f.TID, "dead#1", time.Minute)
	require.NoError(t, err)
	_, err = b.DB.ExecContext(b.ctx, `UPDATE topologies SET lifecycle_attempts = $2 WHERE id = $1`, f.TID, maxLifecycleAttempts)
	require.NoError(t, err)
	b.expireLease(f.TID)
	require.NoError(t, b.W.SweepLifecycle(b.ctx))
	require.Equal(t, domain.StatusDegraded, b.hydrated(f.TID).Topology.Status, "the machine's failed-teardown edge")
	require.Empty(t, b.callLog(f.TID))
}

// F4 with fencing: a deploy worker paused inside Deploy past its lease is
// resumed by the sweep; when it wakes, its Deploy is refused and its outcome
// dropped, so the topology is deployed once.
func TestPausedDeployOvertakenBySweep(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tp, err := b.DB.CreateBlankTopology(b.ctx, postgres.BlankTopology{Name: "slow-deploy"})
	require.NoError(t, err)
	paused := b.newWorker("paused")
	gate := newGate(b.Mat, "Deploy")
	paused.Materializer = gate
	done := make(chan error, 1)
	go func() {
		done <- paused.handleDeploy(context.Background(), tasks.New(tasks.TypeDeploy, tp.ID, b.Redis.Queue))
	}()
	gate.waitEntered(t)

	b.expireLease(tp.ID)
	require.NoError(t, b.W.SweepLifecycle(b.ctx))
	require.Equal(t, domain.StatusActive, b.hydrated(tp.ID).Topology.Status)
	close(gate.release)
	require.NoError(t, <-done)

	require.Equal(t, []call{{"Deploy", "", 2, false}, {"Deploy", "", 1, true}}, summarize(b.callLog(tp.ID)))
	hist := b.statusEvents(tp.ID)
	require.Len(t, hist, 2, "pending→deploying→active, once")
	require.Equal(t, domain.StatusActive, hist[0].ToStatus)
}

// F6: recovering a committed remove_lan / remove_decky calls RemoveNetwork
// and Remove with the removed objects as they were (the LAN's id and
// network id, the decky's uuid), although the current view no longer has
// them.
func TestRecoveryUsesStoredSnapshots(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := b.seed("snapshots", domain.StatusActive)
	_, err := b.DB.ExecContext(b.ctx, `UPDATE lans SET docker_network_id = 'net-x' WHERE id = $1`, f.LANs["lan-x"])
	require.NoError(t, err)
	rm1 := b.enqueue(f.TID, domain.OpRemoveLAN, map[string]any{"name": "lan-x"})
	rm2 := b.enqueue(f.TID, domain.OpRemoveDecky, map[string]any{"decky": "web"})
	for _, m := range []*domain.Mutation{rm1, rm2} {
		claimed, _, err := b.DB.ClaimNext(b.ctx, f.TID, "dead", time.Minute)
		require.NoError(t, err)
		require.Equal(t, m.ID, claimed.ID)
		_, err = b.DB.CommitMutation(b.ctx, &claimed.Mutation, uuid.NewString)
		require.NoError(t, err)
		if m == rm1 { // finish the first as its worker would, die on the second
			_, _, ok, err := b.DB.FinishMutation(b.ctx, &claimed.Mutation, nil)
			require.NoError(t, err)
			require.True(t, ok)
		}
	}
	// Recover rm1 too: re-open it as a worker that died after committing.
	_, err = b.DB.ExecContext(b.ctx, `UPDATE mutations SET state = 'applying', applied_at = NULL WHERE id = $1`, rm1.ID)
	require.NoError(t, err)
	h := b.hydrated(f.TID)
	require.Nil(t, lanByName(h, "lan-x"))
	require.Nil(t, deckyByName(h, "web"))

	rec := &recordingMaterializer{Test: b.Mat}
	w := b.newWorker("recoverer")
	w.Materializer = rec
	b.expireLease(f.TID)
	require.NoError(t, w.Drain(b.ctx, f.TID))
	require.Equal(t, domain.MutationApplied, b.mutation(f.TID, rm1.ID).State)
	require.Equal(t, domain.MutationApplied, b.mutation(f.TID, rm2.ID).State)

	netID := "net-x"
	require.Equal(t, []recorded{
		{call: "Disconnect", lanID: f.LANs["lan-x"], networkID: &netID, deckyUUID: f.Decky["bridge"]},
		{call: "RemoveNetwork", lanID: f.LANs["lan-x"], networkID: &netID},
		{call: "Remove", deckyUUID: f.Decky["web"]},
	}, rec.calls)
}

// recorded is what a materializer call was given, beyond names.
type recorded struct {
	call      string
	lanID     string
	networkID *string
	deckyUUID string
}

// recordingMaterializer records the LAN and decky objects of the calls
// recovery makes, then hands them to the test materializer.
type recordingMaterializer struct {
	*materializer.Test
	mu    sync.Mutex
	calls []recorded
}

func (r *recordingMaterializer) add(c recorded) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
}

func (r *recordingMaterializer) RemoveNetwork(ctx context.Context, s materializer.Scope, l *domain.LAN) error {
	r.add(recorded{call: "RemoveNetwork", lanID: l.ID, networkID: l.DockerNetworkID})
	return r.Test.RemoveNetwork(ctx, s, l)
}

func (r *recordingMaterializer) Disconnect(ctx context.Context, s materializer.Scope, d *domain.Decky, l *domain.LAN) error {
	r.add(recorded{call: "Disconnect", lanID: l.ID, networkID: l.DockerNetworkID, deckyUUID: d.UUID})
	return r.Test.Disconnect(ctx, s, d, l)
}

func (r *recordingMaterializer) Remove(ctx context.Context, s materializer.Scope, d *domain.Decky) error {
	r.add(recorded{call: "Remove", deckyUUID: d.UUID})
	return r.Test.Remove(ctx, s, d)
}

// deckyStates returns the state of every decky of a topology, by name.
func deckyStates(t *testing.T, b *testBundle, tid string) []string {
	t.Helper()
	var out []string
	require.NoError(t, b.DB.SelectContext(b.ctx, &out, `SELECT state FROM deckies WHERE topology_id = $1 ORDER BY name`, tid))
	return out
}

// A teardown racing several drainers: whatever the interleaving (including
// a deadlock Postgres breaks between the teardown and a drain statement),
// every mutation ends terminal exactly once with its three events, the
// call log keeps the fence invariant, and no decky of the torn-down
// topology reads running.
func TestTeardownRacesDrainers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := b.seed("race-teardown", domain.StatusActive)
	seqOf := map[string]int64{}
	for i := range 30 {
		m := b.enqueue(f.TID, domain.OpAddDecky, map[string]any{"name": fmt.Sprintf("d-%02d", i), "lan": "lan-a"})
		seqOf[m.ID] = m.Seq
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 3 {
		w := b.newWorker(fmt.Sprintf("w%d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := w.Drain(ctx, f.TID); err != nil && ctx.Err() == nil {
					t.Error(err)
				}
			}
		}()
	}
	waitFor(t, 30*time.Second, "some mutations applied", func() bool {
		var n int
		_ = b.DB.GetContext(b.ctx, &n, `SELECT count(*) FROM mutations WHERE topology_id = $1 AND state = 'applied'`, f.TID)
		return n >= 5
	})
	require.NoError(t, b.W.handleTeardown(b.ctx, tasks.New(tasks.TypeTeardown, f.TID, b.Redis.Queue)))
	cancel()
	wg.Wait()

	require.Equal(t, domain.StatusTornDown, b.hydrated(f.TID).Topology.Status)
	all, err := b.DB.ListMutations(b.ctx, f.TID, "")
	require.NoError(t, err)
	for _, m := range all {
		require.Contains(t, []domain.MutationState{domain.MutationApplied, domain.MutationFailed}, m.State)
	}
	for _, d := range b.hydrated(f.TID).Deckies {
		require.Equal(t, "torn_down", d.State, "decky %s", d.Name)
	}
	checkFenceInvariant(t, b.callLog(f.TID))
	waitFor(t, 10*time.Second, "every event relayed", func() bool {
		require.NoError(t, b.W.Sweep(b.ctx))
		return len(b.streamEntries(f.TID)) == 3*len(seqOf)+2
	})
	checkStreamOrder(t, b.streamEntries(f.TID), seqOf)
}

// A deploy's lease is renewed while the materializer works, so a long
// Deploy is not mistaken for an abandoned one.
func TestLifecycleLeaseRenewedDuringDeploy(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tp, err := b.DB.CreateBlankTopology(b.ctx, postgres.BlankTopology{Name: "long-deploy"})
	require.NoError(t, err)
	w := b.newWorker("slow")
	w.DrainLease = 3 * time.Second // renewed every second
	gate := newGate(b.Mat, "Deploy")
	w.Materializer = gate
	done := make(chan error, 1)
	go func() {
		done <- w.handleDeploy(context.Background(), tasks.New(tasks.TypeDeploy, tp.ID, b.Redis.Queue))
	}()
	gate.waitEntered(t)
	until := func() time.Time {
		var u time.Time
		require.NoError(t, b.DB.GetContext(b.ctx, &u, `SELECT drain_until FROM topologies WHERE id = $1`, tp.ID))
		return u
	}
	first := until()
	waitFor(t, 30*time.Second, "the lease renewed", func() bool { return until().After(first) })
	close(gate.release)
	require.NoError(t, <-done)
	require.Equal(t, domain.StatusActive, b.hydrated(tp.ID).Topology.Status)
	require.Equal(t, []call{{"Deploy", "", 1, false}}, summarize(b.callLog(tp.ID)))
}

// ctxDeploy is a materializer whose Deploy waits for its context to end.
type ctxDeploy struct {
	materializer.Noop
	entered chan struct{}
}

func (c *ctxDeploy) Deploy(ctx context.Context, _ materializer.Scope, _ *domain.Hydrated) (bool, error) {
	close(c.entered)
	<-ctx.Done()
	return false, ctx.Err()
}

// A worker shutting down mid-deploy does not fail the deploy: it frees the
// lease, and the next sweep resumes the deploy at once.
func TestShutdownMidDeployHandsOverToSweep(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tp, err := b.DB.CreateBlankTopology(b.ctx, postgres.BlankTopology{Name: "shutdown"})
	require.NoError(t, err)
	w := b.newWorker("stopping")
	mat := &ctxDeploy{entered: make(chan struct{})}
	w.Materializer = mat
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.handleDeploy(ctx, tasks.New(tasks.TypeDeploy, tp.ID, b.Redis.Queue)) }()
	<-mat.entered
	cancel()
	require.NoError(t, <-done)
	require.Equal(t, domain.StatusDeploying, b.hydrated(tp.ID).Topology.Status, "not failed")

	require.NoError(t, b.W.SweepLifecycle(b.ctx)) // no lease to wait for
	require.Equal(t, domain.StatusActive, b.hydrated(tp.ID).Topology.Status)
	require.Equal(t, []call{{"Deploy", "", 2, false}}, summarize(b.callLog(tp.ID)))
}
