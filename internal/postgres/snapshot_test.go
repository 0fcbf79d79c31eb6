package postgres_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
)

func TestTopologySnapshot(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	tid, other := uuid.NewString(), uuid.NewString()
	for _, id := range []string{tid, other} {
		_, err := db.ExecContext(ctx, `INSERT INTO topologies (id, name, status) VALUES ($1, $2, 'active')`, id, "snap-"+id[:8])
		require.NoError(t, err)
	}
	insert := func(topology string, seq int, state domain.MutationState, payload string) string {
		id := uuid.NewString()
		terminal := state == domain.MutationApplied || state == domain.MutationFailed
		var reason *string
		if state == domain.MutationFailed {
			r := "MutationError: x"
			reason = &r
		}
		_, err := db.ExecContext(ctx, `INSERT INTO mutations (id, topology_id, seq, op, payload, state, applied_at, reason)
			VALUES ($1, $2, $3, 'add_lan', $4, $5, CASE WHEN $6 THEN now() END, $7)`,
			id, topology, seq, payload, state, terminal, reason)
		require.NoError(t, err)
		return id
	}
	insert(tid, 1, domain.MutationApplied, `{}`)
	insert(tid, 2, domain.MutationFailed, `{}`)
	applying := insert(tid, 3, domain.MutationApplying, `{"name":"a"}`)
	p1 := insert(tid, 4, domain.MutationPending, `{"name":"b"}`)
	p2 := insert(tid, 5, domain.MutationPending, `{"name":"c"}`)
	insert(other, 1, domain.MutationPending, `{}`)

	snap, err := db.TopologySnapshot(ctx, tid)
	require.NoError(t, err)
	require.Equal(t, tid, snap.TopologyID)
	require.Equal(t, domain.StatusActive, snap.Status)
	var got []string
	for _, m := range snap.InFlight {
		got = append(got, m.ID)
		require.Equal(t, tid, m.TopologyID)
		require.Equal(t, byte('{'), m.Payload[0], "payload is an object")
	}
	// Pending first, then applying, each newest first (clients must not rely on it).
	require.Equal(t, []string{p2, p1, applying}, got)

	empty, err := db.TopologySnapshot(ctx, other)
	require.NoError(t, err)
	require.Len(t, empty.InFlight, 1)

	for _, bad := range []string{uuid.NewString(), "not-a-uuid"} {
		_, err = db.TopologySnapshot(ctx, bad)
		require.Equal(t, domain.ENotFound, domain.ErrorCode(err))
	}

	items, err := db.OverviewSnapshot(ctx)
	require.NoError(t, err)
	byID := map[string]int{}
	for _, it := range items {
		byID[it.ID] = it.InFlight
		require.Equal(t, domain.StatusActive, it.Status)
		require.Contains(t, it.Name, "snap-")
	}
	require.Equal(t, map[string]int{tid: 3, other: 1}, byID)
}

func TestTopologySnapshotEmptyInFlightIsArray(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	tid := uuid.NewString()
	_, err := db.ExecContext(ctx, `INSERT INTO topologies (id, name) VALUES ($1, 'snap-empty')`, tid)
	require.NoError(t, err)
	snap, err := db.TopologySnapshot(ctx, tid)
	require.NoError(t, err)
	require.NotNil(t, snap.InFlight)
	require.Empty(t, snap.InFlight)
	require.Equal(t, domain.StatusPending, snap.Status)
}
