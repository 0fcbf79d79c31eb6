package postgres_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
)

// newTopology inserts a bare topology with status and returns its id.
func newTopology(t *testing.T, db *postgres.DB, status domain.Status) string {
	t.Helper()
	id := uuid.NewString()
	_, err := db.ExecContext(context.Background(),
		`INSERT INTO topologies (id, name, status) VALUES ($1, $2, $3)`, id, "t-"+id[:8], status)
	require.NoError(t, err)
	return id
}

func intp(v int) *int { return &v }

func enqueue(t *testing.T, db *postgres.DB, tid string, op domain.Op, payload string, expected *int) (*domain.Mutation, domain.Event, error) {
	t.Helper()
	return db.EnqueueMutation(context.Background(), postgres.NewMutation{
		TopologyID: tid, Op: op, Payload: json.RawMessage(payload), ExpectedVersion: expected,
	})
}

func TestEnqueueMutation(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	tid := newTopology(t, db, domain.StatusActive)

	m, ev, err := enqueue(t, db, tid, domain.OpAddLAN, `{"name": "lan-b", "extra": [1]}`, nil)
	require.NoError(t, err)
	require.Equal(t, int64(1), m.Seq)
	require.Equal(t, domain.MutationPending, m.State)
	require.Equal(t, domain.EventEnqueued, ev.Name)
	require.Equal(t, int64(1), ev.Seq)
	var p struct {
		MutationID string         `json:"mutation_id"`
		Op         string         `json:"op"`
		Payload    map[string]any `json:"payload"`
	}
	require.NoError(t, json.Unmarshal(ev.Payload, &p))
	require.Equal(t, m.ID, p.MutationID)
	require.Equal(t, "add_lan", p.Op)
	require.Equal(t, map[string]any{"name": "lan-b", "extra": []any{1.0}}, p.Payload, "payload stored and sent as sent")

	top, err := db.GetTopology(ctx, tid)
	require.NoError(t, err)
	require.Equal(t, 1, top.Version, "no expected_version: no bump")

	m2, ev2, err := enqueue(t, db, tid, domain.OpRemoveLAN, `{"name": "x"}`, intp(1))
	require.NoError(t, err)
	require.Equal(t, int64(2), m2.Seq)
	require.Equal(t, int64(2), ev2.Seq)
	top, err = db.GetTopology(ctx, tid)
	require.NoError(t, err)
	require.Equal(t, 2, top.Version, "matching expected_version bumps")

	outbox, err := db.EventsAfter(ctx, tid, 0, 10)
	require.NoError(t, err)
	require.Len(t, outbox, 2)
	require.JSONEq(t, string(ev.Envelope()), string(outbox[0].Envelope()), "the outbox keeps the envelope (jsonb may reorder keys)")

	got, err := db.GetMutation(ctx, tid, m.ID)
	require.NoError(t, err)
	require.JSONEq(t, `{"name": "lan-b", "extra": [1]}`, string(got.Payload))
	require.Nil(t, got.AppliedAt)
	require.Nil(t, got.Reason)
}

// The §4.2 diagnostics, with nothing written on any of them.
func TestEnqueueMutationRejections(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	active := newTopology(t, db, domain.StatusActive)
	degraded := newTopology(t, db, domain.StatusDegraded)
	pending := newTopology(t, db, domain.StatusPending)

	_, _, err := enqueue(t, db, uuid.NewString(), domain.OpAddLAN, `{}`, nil)
	require.Equal(t, domain.ErrTopologyNotFound, err)
	_, _, err = enqueue(t, db, "not-a-uuid", domain.OpAddLAN, `{}`, nil)
	require.Equal(t, domain.ErrTopologyNotFound, err)

	_, _, err = enqueue(t, db, pending, domain.OpAddLAN, `{}`, nil)
	require.Equal(t, domain.EConflict, domain.ErrorCode(err))
	require.Contains(t, err.Error(), "Topology is 'pending'; the mutation queue is only open for 'active' or 'degraded' topologies.")

	_, _, err = enqueue(t, db, active, domain.OpAddLAN, `{}`, intp(5))
	require.Equal(t, domain.VersionConflict(5, 1), err)

	_, _, err = enqueue(t, db, degraded, domain.OpAddLAN, `{}`, intp(1))
	require.NoError(t, err, "degraded is live")

	var n int
	require.NoError(t, db.GetContext(ctx, &n, `SELECT count(*) FROM mutations WHERE topology_id <> $1`, degraded))
	require.Zero(t, n)
	require.NoError(t, db.GetContext(ctx, &n, `SELECT count(*) FROM events WHERE topology_id <> $1`, degraded))
	require.Zero(t, n)
	top, err := db.GetTopology(ctx, active)
	require.NoError(t, err)
	require.Equal(t, 1, top.Version)
}

// Concurrent enqueues with the same expected_version: exactly one wins.
func TestEnqueueMutationVersionRace(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	tid := newTopology(t, db, domain.StatusActive)
	const racers = 16
	var wg sync.WaitGroup
	errs := make(chan error, racers)
	for i := 0; i < racers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := enqueue(t, db, tid, domain.OpAddLAN, `{"name": "x"}`, intp(1))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	wins := 0
	for err := range errs {
		if err == nil {
			wins++
			continue
		}
		require.Equal(t, domain.VersionConflict(1, 2), err)
	}
	require.Equal(t, 1, wins)
	ms, err := db.ListMutations(context.Background(), tid, "")
	require.NoError(t, err)
	require.Len(t, ms, 1)
}

// Concurrent enqueues without a version all win, with distinct dense seqs.
func TestEnqueueMutationSeqs(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	tid := newTopology(t, db, domain.StatusActive)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := enqueue(t, db, tid, domain.OpAddLAN, `{"name": "x"}`, nil)
			require.NoError(t, err)
		}()
	}
	wg.Wait()
	ms, err := db.ListMutations(context.Background(), tid, "pending")
	require.NoError(t, err)
	require.Len(t, ms, 20)
	for i, m := range ms {
		require.Equal(t, int64(20-i), m.Seq, "newest first, dense")
	}
	evs, err := db.EventsAfter(context.Background(), tid, 0, 100)
	require.NoError(t, err)
	require.Len(t, evs, 20)
}

func TestListAndGetMutations(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	tid := newTopology(t, db, domain.StatusActive)
	other := newTopology(t, db, domain.StatusActive)
	a, _, err := enqueue(t, db, tid, domain.OpAddLAN, `{"name": "a"}`, nil)
	require.NoError(t, err)
	b, _, err := enqueue(t, db, tid, domain.OpAddLAN, `{"name": "b"}`, nil)
	require.NoError(t, err)
	o, _, err := enqueue(t, db, other, domain.OpAddLAN, `{"name": "o"}`, nil)
	require.NoError(t, err)

	ms, err := db.ListMutations(ctx, tid, "")
	require.NoError(t, err)
	require.Equal(t, []string{b.ID, a.ID}, []string{ms[0].ID, ms[1].ID})
	ms, err = db.ListMutations(ctx, tid, "applied")
	require.NoError(t, err)
	require.Equal(t, []domain.Mutation{}, ms)
	ms, err = db.ListMutations(ctx, tid, "bogus")
	require.NoError(t, err)
	require.Empty(t, ms)
	_, err = db.ListMutations(ctx, uuid.NewString(), "")
	require.Equal(t, domain.ErrTopologyNotFound, err)

	_, err = db.GetMutation(ctx, tid, o.ID)
	require.Equal(t, postgres.ErrMutationNotFound, err, "another topology's mutation")
	_, err = db.GetMutation(ctx, tid, "zzz")
	require.Equal(t, postgres.ErrMutationNotFound, err)
	_, err = db.GetMutation(ctx, uuid.NewString(), a.ID)
	require.Equal(t, domain.ErrTopologyNotFound, err)
	got, err := db.GetMutation(ctx, tid, a.ID)
	require.NoError(t, err)
	require.Equal(t, a.Seq, got.Seq)
	require.Equal(t, domain.OpAddLAN, got.Op)
}
