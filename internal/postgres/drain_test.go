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

// fenceOf reads a topology's lease generation.
func fenceOf(t *testing.T, db *postgres.DB, tid string) int64 {
	t.Helper()
	var f int64
	require.NoError(t, db.GetContext(context.Background(), &f, `SELECT fence FROM topologies WHERE id = $1`, tid))
	return f
}

// The fence only grows: ClaimNext raises it when it takes the lease from
// anyone else (free, expired, another holder's), never when the holder
// keeps or renews its own; ConfirmDrainLease confirms only the holder's
// current generation.
func TestClaimNextFence(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	tid := newTopology(t, db, domain.StatusActive)
	for _, name := range []string{"a", "b", "c"} {
		_, _, err := enqueue(t, db, tid, domain.OpAddLAN, `{"name": "`+name+`"}`, nil)
		require.NoError(t, err)
	}
	claim := func(owner string) *postgres.OpenMutation {
		t.Helper()
		m, _, err := db.ClaimNext(ctx, tid, owner, time.Minute)
		require.NoError(t, err)
		return m
	}
	require.Zero(t, fenceOf(t, db, tid))
	m := claim("a")
	require.Equal(t, int64(1), m.Fence, "a free lease taken")
	require.Equal(t, int64(1), claim("a").Fence, "kept")
	require.NoError(t, db.GetContext(ctx, new(bool), `UPDATE topologies SET drain_until = now() + interval '1 second' WHERE id = $1 RETURNING true`, tid))
	require.Equal(t, int64(1), claim("a").Fence, "renewed by its holder (less than half its ttl left)")
	require.Nil(t, claim("b"), "held by a")

	top, err := db.ConfirmDrainLease(ctx, tid, "a", 1, time.Minute)
	require.NoError(t, err)
	require.Equal(t, tid, top.ID)
	top, err = db.ConfirmDrainLease(ctx, tid, "a", 0, time.Minute)
	require.NoError(t, err)
	require.Nil(t, top, "another generation is not confirmed")

	expireLease(t, db, tid)
	require.Equal(t, int64(2), claim("b").Fence, "an expired lease taken over")
	top, err = db.ConfirmDrainLease(ctx, tid, "a", 1, time.Minute)
	require.NoError(t, err)
	require.Nil(t, top, "a lost lease is not confirmed")
	require.NoError(t, db.ReleaseDrainLease(ctx, tid, "b"))
	require.Equal(t, int64(3), claim("b2").Fence, "a released lease taken")
	require.Equal(t, int64(3), fenceOf(t, db, tid))
}

// BeginTeardown ends every open mutation in its own commit: one whose op
// never committed fails with ReasonTornDown (applying + failed events), one
// whose op committed is applied (applied event); it takes the lease from
// the drainer with a higher fence, after which the drainer's steps find
// nothing to do.
func TestBeginTeardownEndsOpenMutations(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	tp := newBlank(t, db, "closing")
	forceStatus(t, db, tp.ID, domain.StatusActive)
	committed, _, err := enqueue(t, db, tp.ID, domain.OpAddLAN, `{"name": "a"}`, nil)
	require.NoError(t, err)
	claimedOnly, _, err := enqueue(t, db, tp.ID, domain.OpAddLAN, `{"name": "b"}`, nil)
	require.NoError(t, err)
	pending, _, err := enqueue(t, db, tp.ID, domain.OpAddLAN, `{"name": "c"}`, nil)
	require.NoError(t, err)

	m, _, err := db.ClaimNext(ctx, tp.ID, "drainer", time.Minute)
	require.NoError(t, err)
	// A stand-in for a worker that commits an op with materialisation left:
	// the stamp without `applied`.
	_, err = db.ExecContext(ctx, `UPDATE mutations SET committed_at = now(), effects = '[]' WHERE id = $1`, m.ID)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `UPDATE mutations SET state = 'applying' WHERE id = $1`, claimedOnly.ID)
	require.NoError(t, err)
	before := readState(t, db, tp.ID).OutboxEvents

	l, err := db.BeginTeardown(ctx, tp.ID, "teardown", time.Minute)
	require.NoError(t, err)
	require.Equal(t, m.Fence+1, l.Fence)
	var names []string
	for _, ev := range l.Events {
		names = append(names, ev.Name)
	}
	require.Equal(t, []string{domain.EventStatus, domain.EventApplied, domain.EventApplying, domain.EventFailed,
		domain.EventApplying, domain.EventFailed}, names)
	require.Equal(t, before+len(names), readState(t, db, tp.ID).OutboxEvents)
	for i := 1; i < len(l.Events); i++ {
		require.Equal(t, l.Events[i-1].Seq+1, l.Events[i].Seq)
	}
	for id, want := range map[string]domain.MutationState{committed.ID: domain.MutationApplied,
		claimedOnly.ID: domain.MutationFailed, pending.ID: domain.MutationFailed} {
		got, err := db.GetMutation(ctx, tp.ID, id)
		require.NoError(t, err)
		require.Equal(t, want, got.State)
		require.NotNil(t, got.AppliedAt)
		if want == domain.MutationFailed {
			require.Equal(t, postgres.ReasonTornDown, *got.Reason)
		}
	}

	// The drainer's later steps: nothing to do, nothing written.
	ev, _, ok, err := db.FinishMutation(ctx, &m.Mutation, []string{})
	require.NoError(t, err)
	require.False(t, ok, "finish finds the row terminal")
	require.Empty(t, ev.Seq)
	evs, err := db.FailMutation(ctx, claimedOnly, "MutationError: x")
	require.NoError(t, err)
	require.Empty(t, evs)
	ok, err = db.RenewDrainLease(ctx, tp.ID, "drainer", time.Minute)
	require.NoError(t, err)
	require.False(t, ok, "the drainer's lease is gone")
	require.Equal(t, before+len(names), readState(t, db, tp.ID).OutboxEvents)
	p, a, err := db.OpenMutationCounts(ctx)
	require.NoError(t, err)
	require.Zero(t, p+a)
}

// FinishLifecycle writes only for the lease's holder, while the topology is
// still in the status being finished, and frees the lease.
func TestFinishLifecycleFenced(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	tp := newBlank(t, db, "finish")
	l, err := db.BeginDeploy(ctx, tp.ID, "first", time.Minute)
	require.NoError(t, err)
	require.Equal(t, 1, l.Attempt)

	_, err = db.FinishLifecycle(ctx, tp.ID, "someone-else", domain.StatusDeploying, domain.StatusActive, nil)
	require.ErrorIs(t, err, postgres.ErrLeaseLost)
	r, err := db.ResumeLifecycle(ctx, tp.ID, "sweeper", time.Minute)
	require.NoError(t, err)
	require.Nil(t, r, "a live lease is not resumed")

	expireLease(t, db, tp.ID)
	r, err = db.ResumeLifecycle(ctx, tp.ID, "sweeper", time.Minute)
	require.NoError(t, err)
	require.Equal(t, 2, r.Attempt)
	require.Equal(t, l.Fence+1, r.Fence)
	_, err = db.FinishLifecycle(ctx, tp.ID, "first", domain.StatusDeploying, domain.StatusActive, nil)
	require.ErrorIs(t, err, postgres.ErrLeaseLost, "the first holder's outcome is dropped")
	require.Equal(t, domain.StatusDeploying, readState(t, db, tp.ID).Status)

	ev, err := db.FinishLifecycle(ctx, tp.ID, "sweeper", domain.StatusDeploying, domain.StatusActive, nil)
	require.NoError(t, err)
	require.Equal(t, domain.EventStatus, ev.Name)
	require.Equal(t, domain.StatusActive, readState(t, db, tp.ID).Status)
	var owner *string
	require.NoError(t, db.GetContext(ctx, &owner, `SELECT drain_owner FROM topologies WHERE id = $1`, tp.ID))
	require.Nil(t, owner)
	_, err = db.FinishLifecycle(ctx, tp.ID, "sweeper", domain.StatusDeploying, domain.StatusActive, nil)
	require.ErrorIs(t, err, postgres.ErrLeaseLost, "finished once")
	stranded, err := db.StrandedLifecycles(ctx, 10)
	require.NoError(t, err)
	require.Empty(t, stranded)
}
