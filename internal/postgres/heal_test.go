package postgres_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
)

// degradedBlank is a valid blank topology forced to degraded.
func degradedBlank(t *testing.T, db *postgres.DB, name string) string {
	t.Helper()
	tp := newBlank(t, db, name)
	forceStatus(t, db, tp.ID, domain.StatusDegraded)
	return tp.ID
}

// leaseOwner reads a topology's drain_owner.
func leaseOwner(t *testing.T, db *postgres.DB, id string) *string {
	t.Helper()
	var owner *string
	require.NoError(t, db.Get(&owner, `SELECT drain_owner FROM topologies WHERE id = $1`, id))
	return owner
}

// A heal takes the lease with a new fence, holds drains off while it
// decides, and finishes degraded → active with reason `healed` (audit row
// and `status` event), freeing the lease.
func TestHeal(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	id := degradedBlank(t, db, "heal")
	before := fenceOf(t, db, id)

	hl, err := db.BeginHeal(ctx, id, "healer", time.Minute)
	require.NoError(t, err)
	require.Equal(t, before+1, hl.Fence)
	require.Equal(t, domain.StatusDegraded, hl.View.Topology.Status)
	require.Len(t, hl.View.Deckies, 1)

	m, _, err := enqueue(t, db, id, domain.OpAddLAN, `{"name": "later"}`, nil)
	require.NoError(t, err)
	got, _ := claimNext(t, db, id, "drainer")
	require.Empty(t, got, "no drain while the heal holds the lease")

	tp, ev, err := db.FinishHeal(ctx, id, "healer")
	require.NoError(t, err)
	require.Equal(t, domain.StatusActive, tp.Status)
	require.Equal(t, domain.EventStatus, ev.Name)
	var p domain.StatusPayload
	require.NoError(t, json.Unmarshal(ev.Payload, &p))
	require.Equal(t, domain.StatusActive, p.State)
	require.Equal(t, domain.StatusDegraded, p.From)
	require.Equal(t, domain.ReasonHealed, *p.Reason)
	evs, err := db.ListStatusEvents(ctx, id, 1)
	require.NoError(t, err)
	require.Equal(t, domain.ReasonHealed, *evs[0].Reason)
	require.Nil(t, leaseOwner(t, db, id), "lease freed")

	got, claimed := claimNext(t, db, id, "drainer")
	require.Equal(t, m.ID, got, "drains resume after the heal")
	require.True(t, claimed)
}

// BeginHeal refuses, writing nothing: unknown (404), not degraded (409
// naming the status), a mutation applying (even under an expired lease),
// a live drain lease.
func TestBeginHealRefuses(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()

	_, err := db.BeginHeal(ctx, "00000000-0000-0000-0000-000000000000", "h", time.Minute)
	require.Equal(t, domain.ENotFound, domain.ErrorCode(err))

	active := newBlank(t, db, "active")
	forceStatus(t, db, active.ID, domain.StatusActive)
	_, err = db.BeginHeal(ctx, active.ID, "h", time.Minute)
	require.Equal(t, domain.EConflict, domain.ErrorCode(err))
	require.Equal(t, "Topology is 'active'; only 'degraded' topologies can be healed", domain.ErrorMessage(err))

	id := degradedBlank(t, db, "busy")
	_, _, err = enqueue(t, db, id, domain.OpAddLAN, `{"name": "x"}`, nil)
	require.NoError(t, err)
	claimNext(t, db, id, "drainer")
	_, err = db.BeginHeal(ctx, id, "h", time.Minute)
	require.ErrorIs(t, err, postgres.ErrHealApplying)
	expireLease(t, db, id)
	_, err = db.BeginHeal(ctx, id, "h", time.Minute)
	require.ErrorIs(t, err, postgres.ErrHealApplying, "a dead drainer's apply is still open")

	idle := degradedBlank(t, db, "draining")
	_, err = db.ExecContext(ctx, `UPDATE topologies SET drain_owner = 'drainer', drain_until = now() + interval '1 minute' WHERE id = $1`, idle)
	require.NoError(t, err)
	fence := fenceOf(t, db, idle)
	_, err = db.BeginHeal(ctx, idle, "h", time.Minute)
	require.ErrorIs(t, err, postgres.ErrHealDraining)
	require.Equal(t, fence, fenceOf(t, db, idle), "nothing written")
	require.Equal(t, "drainer", *leaseOwner(t, db, idle))
}

// A teardown that starts during a heal takes the lease; the heal's finish
// then changes nothing, so the topology is never resurrected.
func TestHealLosesToTeardown(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	id := degradedBlank(t, db, "race")
	_, err := db.BeginHeal(ctx, id, "healer", time.Minute)
	require.NoError(t, err)
	_, err = db.BeginTeardown(ctx, id, "teardown", time.Minute)
	require.NoError(t, err)
	events := readState(t, db, id).StatusEvents

	_, _, err = db.FinishHeal(ctx, id, "healer")
	require.ErrorIs(t, err, postgres.ErrHealOvertaken)
	st := readState(t, db, id)
	require.Equal(t, domain.StatusTearingDown, st.Status)
	require.Equal(t, events, st.StatusEvents)
	require.Equal(t, "teardown", *leaseOwner(t, db, id), "the teardown keeps its lease")
}

// A heal that outlived its lease finishes only if nobody took it since; a
// drainer that took it (and drained) makes the finish refuse.
func TestHealExpiredLease(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	id := degradedBlank(t, db, "slow")
	_, err := db.BeginHeal(ctx, id, "healer", time.Minute)
	require.NoError(t, err)
	expireLease(t, db, id)
	tp, _, err := db.FinishHeal(ctx, id, "healer")
	require.NoError(t, err, "expired but not taken: still the heal's")
	require.Equal(t, domain.StatusActive, tp.Status)

	other := degradedBlank(t, db, "taken")
	_, err = db.BeginHeal(ctx, other, "healer", time.Minute)
	require.NoError(t, err)
	expireLease(t, db, other)
	_, _, err = enqueue(t, db, other, domain.OpAddLAN, `{"name": "x"}`, nil)
	require.NoError(t, err)
	got, _ := claimNext(t, db, other, "drainer")
	require.NotEmpty(t, got)
	_, _, err = db.FinishHeal(ctx, other, "healer")
	require.ErrorIs(t, err, postgres.ErrHealOvertaken)
	require.Equal(t, domain.StatusDegraded, readState(t, db, other).Status)
}
