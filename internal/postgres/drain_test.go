package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
)

// expireLease moves a topology's drain lease deadline into the past, as
// the passing of its ttl would.
func expireLease(t *testing.T, db *postgres.DB, tid string) {
	t.Helper()
	_, err := db.ExecContext(context.Background(),
		`UPDATE topologies SET drain_until = now() - interval '1 second' WHERE id = $1`, tid)
	require.NoError(t, err)
}

// claimNext is ClaimNext with the lease the tests use; it returns the id of
// the mutation owner got ("" for none) and whether it claimed it.
func claimNext(t *testing.T, db *postgres.DB, tid, owner string) (string, bool) {
	t.Helper()
	m, claimed, err := db.ClaimNext(context.Background(), tid, owner, time.Minute)
	require.NoError(t, err)
	if m == nil {
		return "", false
	}
	if claimed {
		require.Equal(t, domain.MutationApplying, m.State, "a claimed row is returned as applying")
	}
	return m.ID, claimed
}

// The drain lease, as the worker takes it through ClaimNext: no open work,
// no lease; one holder at a time; renewal and release by the holder only;
// an expired lease is stranded and taken over; only live topologies drain.
func TestDrainLease(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	tid := newTopology(t, db, domain.StatusActive)

	id, _ := claimNext(t, db, tid, "a")
	require.Empty(t, id, "no open work, no lease")
	var owner *string
	require.NoError(t, db.GetContext(ctx, &owner, `SELECT drain_owner FROM topologies WHERE id = $1`, tid))
	require.Nil(t, owner, "nothing written")

	m1, _, err := enqueue(t, db, tid, domain.OpAddLAN, `{"name": "a"}`, nil)
	require.NoError(t, err)
	id, claimed := claimNext(t, db, tid, "a")
	require.Equal(t, m1.ID, id)
	require.True(t, claimed)
	id, _ = claimNext(t, db, tid, "b")
	require.Empty(t, id, "held by a")

	ok, err := db.RenewDrainLease(ctx, tid, "b", time.Minute)
	require.NoError(t, err)
	require.False(t, ok, "only the holder renews")
	ok, err = db.RenewDrainLease(ctx, tid, "a", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	stranded, err := db.StrandedTopologies(ctx, 10)
	require.NoError(t, err)
	require.Empty(t, stranded, "a live lease is not stranded")

	expireLease(t, db, tid)
	stranded, err = db.StrandedTopologies(ctx, 10)
	require.NoError(t, err)
	require.Equal(t, []string{tid}, stranded, "expired lease: stranded")
	id, claimed = claimNext(t, db, tid, "b")
	require.Equal(t, m1.ID, id, "an expired lease is taken over with its applying row")
	require.False(t, claimed, "the row was a's: b recovers it")

	require.NoError(t, db.ReleaseDrainLease(ctx, tid, "a"), "releasing a lost lease is a no-op")
	id, _ = claimNext(t, db, tid, "c")
	require.Empty(t, id, "still b's")
	require.NoError(t, db.ReleaseDrainLease(ctx, tid, "b"))
	id, _ = claimNext(t, db, tid, "c")
	require.Equal(t, m1.ID, id, "a released lease is free")

	require.NoError(t, db.ReleaseDrainLease(ctx, tid, "c"))
	_, err = db.ExecContext(ctx, `UPDATE topologies SET status = 'tearing_down' WHERE id = $1`, tid)
	require.NoError(t, err)
	id, _ = claimNext(t, db, tid, "d")
	require.Empty(t, id, "only live topologies drain")
}

// ClaimNext claims in seq order, one row at a time, writes no event, and
// leaves a fresh lease of the holder's as it is.
func TestClaimNext(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	tid := newTopology(t, db, domain.StatusActive)
	m1, _, err := enqueue(t, db, tid, domain.OpAddLAN, `{"name": "a"}`, nil)
	require.NoError(t, err)
	m2, _, err := enqueue(t, db, tid, domain.OpAddLAN, `{"name": "b"}`, nil)
	require.NoError(t, err)

	id, claimed := claimNext(t, db, tid, "a")
	require.Equal(t, m1.ID, id)
	require.True(t, claimed)
	var until time.Time
	require.NoError(t, db.GetContext(ctx, &until, `SELECT drain_until FROM topologies WHERE id = $1`, tid))

	id, claimed = claimNext(t, db, tid, "a")
	require.Equal(t, m1.ID, id, "the lowest open row is still the first, now applying")
	require.False(t, claimed, "claimed once")
	var again time.Time
	require.NoError(t, db.GetContext(ctx, &again, `SELECT drain_until FROM topologies WHERE id = $1`, tid))
	require.True(t, until.Equal(again), "a lease with more than half its ttl left is not rewritten")

	got, err := db.GetMutation(ctx, tid, m2.ID)
	require.NoError(t, err)
	require.Equal(t, domain.MutationPending, got.State, "one row at a time")
	evs, err := db.EventsAfter(ctx, tid, 0, 10)
	require.NoError(t, err)
	require.Len(t, evs, 2, "the claim writes no event; the op's transaction records applying")
	m, _, err := db.ClaimNext(ctx, tid, "a", time.Minute)
	require.NoError(t, err)
	require.Nil(t, m.CommittedAt)
	require.Empty(t, m.Effects)
}
