package worker

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/materializer"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/stream"
	"github.com/decnet/mazenet/internal/stream/streamtest"
	"github.com/decnet/mazenet/tasks"
)

// lifecycleBundle is one test's worker with the test materializer.
type lifecycleBundle struct {
	w   *Worker
	db  *postgres.DB
	rd  *dbtest.Redis
	mat *materializer.Test
}

func newLifecycleBundle(t *testing.T, cfg materializer.TestConfig) *lifecycleBundle {
	t.Helper()
	db := dbtest.New(t)
	rd := dbtest.NewRedis(t)
	w := New(Config{RedisPrefix: rd.Prefix, Queue: rd.Queue, Materializer: MaterializerTest, TestMaterializer: cfg,
		Log: slog.New(slog.DiscardHandler)}, db, rd.Client)
	return &lifecycleBundle{w: w, db: db, rd: rd, mat: w.Materializer.(*materializer.Test)}
}

func (b *lifecycleBundle) blank(t *testing.T, in postgres.BlankTopology) string {
	t.Helper()
	tp, err := b.db.CreateBlankTopology(t.Context(), in)
	require.NoError(t, err)
	return tp.ID
}

func (b *lifecycleBundle) run(t *testing.T, typ, tid string) error {
	t.Helper()
	task := tasks.New(typ, tid, b.rd.Queue)
	switch typ {
	case tasks.TypeDeploy:
		return b.w.handleDeploy(t.Context(), task)
	case tasks.TypeTeardown:
		return b.w.handleTeardown(t.Context(), task)
	}
	t.Fatalf("unknown task type %s", typ)
	return nil
}

func (b *lifecycleBundle) status(t *testing.T, tid string) domain.Status {
	t.Helper()
	tp, err := b.db.GetTopology(t.Context(), tid)
	require.NoError(t, err)
	return tp.Status
}

// history returns the topology's status_events as "from->to" oldest first,
// and the reason of the newest.
func (b *lifecycleBundle) history(t *testing.T, tid string) ([]string, *string) {
	t.Helper()
	evs, err := b.db.ListStatusEvents(t.Context(), tid, 100)
	require.NoError(t, err)
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[len(evs)-1-i] = string(ev.FromStatus) + "->" + string(ev.ToStatus)
	}
	if len(evs) == 0 {
		return out, nil
	}
	return out, evs[0].Reason
}

// calls returns the materializer's call names for tid.
func (b *lifecycleBundle) calls(t *testing.T, tid string) []string {
	t.Helper()
	raw, err := b.rd.Client.LRange(t.Context(), b.mat.LogKey, 0, -1).Result()
	require.NoError(t, err)
	out := []string{}
	for _, r := range raw {
		var c materializer.Call
		require.NoError(t, json.Unmarshal([]byte(r), &c))
		if c.TopologyID == tid {
			out = append(out, c.Call)
		}
	}
	return out
}

// streamStates returns the `state` of every status event in the topology's
// Redis stream, in order: what SSE clients would see.
func (b *lifecycleBundle) streamStates(t *testing.T, tid string) []string {
	t.Helper()
	es, err := streamtest.Topology(t.Context(), b.w.Relay.Streams, tid, stream.ID{}, 100000)
	require.NoError(t, err)
	out := []string{}
	for _, e := range es {
		if e.Name != domain.EventStatus {
			continue
		}
		var env struct {
			Payload domain.StatusPayload `json:"payload"`
		}
		require.NoError(t, json.Unmarshal([]byte(e.Data), &env))
		out = append(out, string(env.Payload.State))
	}
	return out
}

// deckyStates returns the state of every decky of a topology, by name.
func (b *lifecycleBundle) deckyStates(t *testing.T, tid string) []string {
	t.Helper()
	var out []string
	require.NoError(t, b.db.SelectContext(t.Context(), &out, `SELECT state FROM deckies WHERE topology_id = $1 ORDER BY name`, tid))
	return out
}

func TestLifecycleDeployAndTeardown(t *testing.T) {
	t.Parallel()
	b := newLifecycleBundle(t, materializer.TestConfig{})
	tid := b.blank(t, postgres.BlankTopology{Name: "ok"})

	require.NoError(t, b.run(t, tasks.TypeDeploy, tid))
	require.Equal(t, domain.StatusActive, b.status(t, tid))
	hist, reason := b.history(t, tid)
	require.Equal(t, []string{"pending->deploying", "deploying->active"}, hist)
	require.Nil(t, reason)
	require.Equal(t, []string{"Deploy"}, b.calls(t, tid))
	require.Equal(t, []string{"deploying", "active"}, b.streamStates(t, tid), "every transition is published (D9)")
	require.Equal(t, []string{"running"}, b.deckyStates(t, tid), "a deployed topology's deckies run")

	// A duplicate deploy task is a no-op, not a failure.
	require.NoError(t, b.run(t, tasks.TypeDeploy, tid))
	hist, _ = b.history(t, tid)
	require.Len(t, hist, 2)

	require.NoError(t, b.run(t, tasks.TypeTeardown, tid))
	require.Equal(t, domain.StatusTornDown, b.status(t, tid))
	hist, _ = b.history(t, tid)
	require.Equal(t, []string{"pending->deploying", "deploying->active", "active->tearing_down", "tearing_down->torn_down"}, hist)
	require.Equal(t, []string{"Deploy", "Teardown"}, b.calls(t, tid))
	require.Equal(t, []string{"deploying", "active", "tearing_down", "torn_down"}, b.streamStates(t, tid))
	require.Equal(t, []string{"torn_down"}, b.deckyStates(t, tid))

	require.NoError(t, b.run(t, tasks.TypeTeardown, tid), "a duplicate teardown task is a no-op")
	require.Equal(t, []string{"Deploy", "Teardown"}, b.calls(t, tid))
	reserved, err := b.db.ReservedSubnets(t.Context())
	require.NoError(t, err)
	require.Empty(t, reserved, "torn_down releases the topology's subnets")
}

func TestLifecycleDeployFailure(t *testing.T) {
	t.Parallel()
	b := newLifecycleBundle(t, materializer.TestConfig{FailDeploy: true})
	tid := b.blank(t, postgres.BlankTopology{Name: "fails"})
	require.NoError(t, b.run(t, tasks.TypeDeploy, tid))
	require.Equal(t, domain.StatusFailed, b.status(t, tid))
	hist, reason := b.history(t, tid)
	require.Equal(t, []string{"pending->deploying", "deploying->failed"}, hist)
	require.NotNil(t, reason)
	require.Equal(t, "DeployError: "+materializer.ErrForced.Error(), *reason)

	// failed → teardown works.
	require.NoError(t, b.run(t, tasks.TypeTeardown, tid))
	require.Equal(t, domain.StatusTornDown, b.status(t, tid))
}

func TestLifecycleDeployInvalidStaysPending(t *testing.T) {
	t.Parallel()
	b := newLifecycleBundle(t, materializer.TestConfig{})
	tid := b.blank(t, postgres.BlankTopology{Name: "invalid"})
	// An orphan decky: homed on a LAN nothing bridges to the DMZ.
	_, _, err := b.db.CreateLAN(t.Context(), tid, nil, postgres.LANInput{Name: "island"})
	require.NoError(t, err)
	_, _, err = b.db.CreateDecky(t.Context(), tid, nil, postgres.DeckyInput{Name: "castaway", LAN: "island"})
	require.NoError(t, err)

	require.NoError(t, b.run(t, tasks.TypeDeploy, tid), "validation failure is not a task failure")
	require.Equal(t, domain.StatusPending, b.status(t, tid))
	hist, _ := b.history(t, tid)
	require.Empty(t, hist, "nothing is recorded")
	require.Empty(t, b.calls(t, tid), "nothing is materialised")
}

func TestLifecycleAgentModeSkipsMaterializer(t *testing.T) {
	t.Parallel()
	b := newLifecycleBundle(t, materializer.TestConfig{FailDeploy: true})
	host := "0b0f6a51-4a3e-4c5e-9c0e-8f1f2d3c4b5a"
	tid := b.blank(t, postgres.BlankTopology{Name: "agent", Mode: domain.ModeAgent, TargetHostUUID: &host})
	require.NoError(t, b.run(t, tasks.TypeDeploy, tid))
	require.Equal(t, domain.StatusActive, b.status(t, tid), "agent-pinned: straight to active")
	require.NoError(t, b.run(t, tasks.TypeTeardown, tid))
	require.Equal(t, domain.StatusTornDown, b.status(t, tid))
	require.Empty(t, b.calls(t, tid))
}

// scriptedMaterializer overrides the whole-topology calls and records the
// fences they carry, in call order.
type scriptedMaterializer struct {
	materializer.Noop
	deploy    func(ctx context.Context) (bool, error)
	teardowns chan struct{}
	teardown  error

	mu     sync.Mutex
	fences []int64
}

func (m *scriptedMaterializer) fenced(s materializer.Scope) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fences = append(m.fences, s.Fence)
}

func (m *scriptedMaterializer) Deploy(ctx context.Context, s materializer.Scope, _ *domain.Hydrated) (bool, error) {
	m.fenced(s)
	return m.deploy(ctx)
}

func (m *scriptedMaterializer) Teardown(_ context.Context, s materializer.Scope, _ *domain.Hydrated) error {
	m.fenced(s)
	if m.teardowns != nil {
		m.teardowns <- struct{}{}
	}
	return m.teardown
}

func TestLifecycleDegradedOutcomes(t *testing.T) {
	t.Parallel()
	b := newLifecycleBundle(t, materializer.TestConfig{})
	m := &scriptedMaterializer{deploy: func(context.Context) (bool, error) { return true, nil },
		teardown: errors.New("network busy")}
	b.w.Materializer = m
	tid := b.blank(t, postgres.BlankTopology{Name: "sick"})

	require.NoError(t, b.run(t, tasks.TypeDeploy, tid))
	require.Equal(t, domain.StatusDegraded, b.status(t, tid), "unhealthy units → degraded")

	require.NoError(t, b.run(t, tasks.TypeTeardown, tid))
	require.Equal(t, domain.StatusDegraded, b.status(t, tid), "failed teardown → degraded")
	hist, reason := b.history(t, tid)
	require.Equal(t, []string{"pending->deploying", "deploying->degraded", "degraded->tearing_down", "tearing_down->degraded"}, hist)
	require.Equal(t, "TeardownError: network busy", *reason)

	m.teardown = nil
	require.NoError(t, b.run(t, tasks.TypeTeardown, tid), "a degraded topology can be torn down again")
	require.Equal(t, domain.StatusTornDown, b.status(t, tid))
}

// A teardown that overtakes a running deploy wins: it takes the lease (with
// a higher fence), and the deploy's outcome is dropped. The deploy does not
// call Teardown again: a fenced materializer either ran its Deploy before
// the Teardown (which then removed it) or refuses it (package materializer).
func TestLifecycleTeardownOvertakesDeploy(t *testing.T) {
	t.Parallel()
	b := newLifecycleBundle(t, materializer.TestConfig{})
	inDeploy, release := make(chan struct{}), make(chan struct{})
	m := &scriptedMaterializer{teardowns: make(chan struct{}, 4), deploy: func(ctx context.Context) (bool, error) {
		close(inDeploy)
		<-release
		return false, nil
	}}
	b.w.Materializer = m
	tid := b.blank(t, postgres.BlankTopology{Name: "slow"})

	done := make(chan error, 1)
	go func() { done <- b.w.handleDeploy(context.Background(), tasks.New(tasks.TypeDeploy, tid, b.rd.Queue)) }()
	select {
	case <-inDeploy:
	case <-time.After(10 * time.Second):
		t.Fatal("deploy never reached the materializer")
	}
	require.Equal(t, domain.StatusDeploying, b.status(t, tid))
	require.NoError(t, b.run(t, tasks.TypeTeardown, tid))
	require.Equal(t, domain.StatusTornDown, b.status(t, tid))
	close(release)
	require.NoError(t, <-done)
	require.Equal(t, domain.StatusTornDown, b.status(t, tid), "the teardown wins")
	require.Len(t, m.teardowns, 1, "only the teardown tears down")
	require.Equal(t, []int64{1, 2}, m.fences, "the deploy's fence, then the teardown's higher one")
	hist, _ := b.history(t, tid)
	require.Equal(t, []string{"pending->deploying", "deploying->tearing_down", "tearing_down->torn_down"}, hist)
}

func TestLifecycleTaskErrors(t *testing.T) {
	t.Parallel()
	b := newLifecycleBundle(t, materializer.TestConfig{})
	err := b.w.handleDeploy(t.Context(), asynq.NewTask(tasks.TypeDeploy, []byte(`{}`)))
	require.ErrorIs(t, err, asynq.SkipRetry, "a malformed payload can never succeed")
	err = b.w.handleTeardown(t.Context(), asynq.NewTask(tasks.TypeTeardown, []byte(`nope`)))
	require.ErrorIs(t, err, asynq.SkipRetry)
	require.NoError(t, b.run(t, tasks.TypeDeploy, "6f0c1f7e-5d55-4a8f-9d7e-2b8d5c1f0a11"), "a deleted topology is skipped")
	require.NoError(t, b.run(t, tasks.TypeTeardown, "not-a-uuid"))

	tid := b.blank(t, postgres.BlankTopology{Name: "pending"})
	require.NoError(t, b.run(t, tasks.TypeTeardown, tid), "teardown of a pending topology is skipped")
	require.Equal(t, domain.StatusPending, b.status(t, tid))
}
