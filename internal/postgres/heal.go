package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/decnet/mazenet/internal/domain"
)

// Heal (DOMAIN §3, D12; CONTRACTS "Heal") takes a degraded topology back to
// active when its live view passes the deploy-time validation and the
// materializer reports every unit healthy. It runs in three steps, like a
// deploy:
//
//  1. BeginHeal: under the topology's row lock, the topology must be
//     degraded (else the 409 naming its status), no mutation of it may be
//     applying, and its lease must be free or expired (else 409: a drain
//     is running); the heal then takes the lease, with a new fence, and
//     gets the view.
//  2. The caller validates the view and asks Materializer.Health with that
//     fence.
//  3. FinishHeal: under the row lock, if the heal still holds the lease and
//     the topology is still degraded, degraded → active with reason
//     `healed` (Transition: audit row and `status` event in the outbox) and
//     the lease is freed; otherwise nothing changes (409). A heal that
//     refuses frees the lease with ReleaseDrainLease.
//
// Why the lease. A drainer of a degraded topology may be mid-apply with an
// op that is about to fail; a heal that marked the topology active then
// would be followed at once by a failure (and a degradation) it should have
// waited for. So a heal only starts when nobody drains (lease free or
// expired) and no mutation is applying (an applying row with an expired
// lease is a dead or paused worker's, whose outcome is still open), and it
// holds the lease while it decides, so no drainer can claim meanwhile.
// Pending mutations do not stop it: they are applied after the heal, in
// order, and a failure among them degrades the topology again, as any
// later failure would. Anything that takes the lease from the heal (a
// teardown; a drainer, if the heal outlived its lease) makes its finish
// refuse, and its Health call is refused by fence once a newer holder has
// acted. The heal is answered synchronously, so it holds the lease for at
// most HealLease, and only for one validation and one Health call.

// HealLease is how long a heal holds its topology's lease: longer than any
// api request, short enough that a heal whose api process died holds up
// the topology's drains for no longer than a drain lease would.
const HealLease = 15 * time.Second

// Heal is a heal that holds its topology's lease (BeginHeal): the view to
// validate and check, and the lease (owner and fence, which the Health
// call carries).
type Heal struct {
	View  *domain.Hydrated
	Owner string
	Fence int64
}

// The 409s of a heal that cannot start or finish.
var (
	ErrHealDraining = domain.Errorf(domain.EConflict,
		"The topology's mutation queue is being drained; retry the heal when it is idle")
	ErrHealApplying = domain.Errorf(domain.EConflict,
		"A mutation of this topology is being applied; retry the heal when it has finished")
	ErrHealOvertaken = domain.Errorf(domain.EConflict,
		"The topology was taken over (by a teardown or a drain) while it was being healed; nothing changed")
)

// BeginHeal is step 1 of a heal (see above): 404 for an unknown topology,
// the 409 of domain.CheckAction unless it is degraded, ErrHealApplying or
// ErrHealDraining when a drain is (or may be) under way; otherwise owner
// holds the topology's lease for ttl with a new fence.
func (db *DB) BeginHeal(ctx context.Context, id, owner string, ttl time.Duration) (*Heal, error) {
	var hl *Heal
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		h, err := LoadHydratedForUpdate(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := domain.CheckAction(domain.ActionHeal, h.Topology.Status); err != nil {
			return err
		}
		var st struct {
			Draining bool `db:"draining"`
			Applying bool `db:"applying"`
		}
		if err := tx.GetContext(ctx, &st, `
SELECT drain_until IS NOT NULL AND drain_until >= now() AS draining,
       EXISTS (SELECT 1 FROM mutations WHERE topology_id = $1 AND state = 'applying') AS applying
  FROM topologies WHERE id = $1`, id); err != nil {
			return fmt.Errorf("postgres: begin heal: %w", err)
		}
		switch {
		case st.Applying:
			return ErrHealApplying
		case st.Draining:
			return ErrHealDraining
		}
		var fence int64
		if err := tx.GetContext(ctx, &fence, `UPDATE topologies
			   SET drain_owner = $2, drain_until = now() + $3 * interval '1 millisecond', fence = fence + 1
			 WHERE id = $1 RETURNING fence`, id, owner, ttl.Milliseconds()); err != nil {
			return fmt.Errorf("postgres: heal lease: %w", err)
		}
		hl = &Heal{View: h, Owner: owner, Fence: fence}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return hl, nil
}

// FinishHeal is step 3 of a heal whose view and health passed: under the
// row lock, if owner still holds the lease (expired or not, as long as
// nobody took it) and the topology is still degraded with no mutation
// applying, it moves degraded → active with reason `healed` and frees the
// lease. It returns the new summary and the `status` event to publish.
// Otherwise nothing changes: ErrHealOvertaken when the lease changed hands,
// the 409 naming the status or ErrHealApplying (the lease, still owner's,
// is freed).
func (db *DB) FinishHeal(ctx context.Context, id, owner string) (*domain.Topology, domain.Event, error) {
	if !isUUID(id) {
		return nil, domain.Event{}, domain.ErrTopologyNotFound
	}
	var (
		t       *domain.Topology
		ev      domain.Event
		refusal error
	)
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		var row struct {
			Status   domain.Status `db:"status"`
			Owner    *string       `db:"drain_owner"`
			Applying bool          `db:"applying"`
		}
		err := tx.GetContext(ctx, &row, `
SELECT status, drain_owner,
       EXISTS (SELECT 1 FROM mutations WHERE topology_id = $1 AND state = 'applying') AS applying
  FROM topologies WHERE id = $1 FOR UPDATE`, id)
		if errors.Is(err, sql.ErrNoRows) {
			return domain.ErrTopologyNotFound
		} else if err != nil {
			return fmt.Errorf("postgres: finish heal: %w", err)
		}
		if row.Owner == nil || *row.Owner != owner {
			refusal = ErrHealOvertaken
			return nil
		}
		// Neither can happen while the heal holds the lease; checked all
		// the same, since the answer must never be a resurrection.
		if err := domain.CheckAction(domain.ActionHeal, row.Status); err != nil {
			refusal = err
		} else if row.Applying {
			refusal = ErrHealApplying
		} else if ev, err = Transition(ctx, tx, id, domain.StatusActive, new(domain.ReasonHealed)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE topologies SET drain_owner = NULL, drain_until = NULL WHERE id = $1`, id); err != nil {
			return fmt.Errorf("postgres: release heal lease: %w", err)
		}
		if refusal == nil {
			t, err = getTopology(ctx, tx, id, false)
		}
		return err
	})
	if err != nil {
		return nil, domain.Event{}, err
	}
	if refusal != nil {
		return nil, domain.Event{}, refusal
	}
	return t, ev, nil
}
