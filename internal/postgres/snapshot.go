package postgres

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/decnet/mazenet/internal/domain"
)

// TopologySnapshot is what an SSE stream sends before its events (DOMAIN §10):
// the topology's status and every mutation still in flight.
type TopologySnapshot struct {
	TopologyID string            `json:"topology_id"`
	Status     domain.Status     `json:"status"`
	InFlight   []domain.Mutation `json:"in_flight"`
}

// OverviewItem is one topology of the overview stream's snapshot (SYSTEM
// §4): its id, name, status and how many mutations are pending or applying.
type OverviewItem struct {
	ID       string        `json:"id" db:"id"`
	Name     string        `json:"name" db:"name"`
	Status   domain.Status `json:"status" db:"status"`
	InFlight int           `json:"in_flight" db:"in_flight"`
}

// snapshotTx runs fn in a read-only REPEATABLE READ transaction, so a
// snapshot's status and mutation rows come from one instant even while a
// worker commits between the two reads.
func (db *DB) snapshotTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("postgres: begin snapshot: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to keep
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("postgres: commit snapshot: %w", err)
	}
	return nil
}

// TopologySnapshot returns the topology's status and its pending and applying
// mutations (pending rows first, then applying, each newest first, as the
// original did; clients must not rely on the order). An unknown or non-UUID
// id is ErrTopologyNotFound.
func (db *DB) TopologySnapshot(ctx context.Context, id string) (*TopologySnapshot, error) {
	if !isUUID(id) {
		return nil, domain.ErrTopologyNotFound
	}
	snap := &TopologySnapshot{TopologyID: id, InFlight: []domain.Mutation{}}
	err := db.snapshotTx(ctx, func(tx *sqlx.Tx) error {
		t, err := getTopology(ctx, tx, id, false)
		if err != nil {
			return err
		}
		snap.Status = t.Status
		err = tx.SelectContext(ctx, &snap.InFlight, `
			SELECT id, topology_id, seq, op, payload, state, requested_at, applied_at, reason
			FROM mutations
			WHERE topology_id = $1 AND state IN ('pending', 'applying')
			ORDER BY state = 'applying', requested_at DESC, seq DESC`, id)
		if err != nil {
			return fmt.Errorf("postgres: snapshot mutations: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return snap, nil
}

// OverviewSnapshot returns every topology with its count of in-flight
// mutations, newest topology first.
func (db *DB) OverviewSnapshot(ctx context.Context) ([]OverviewItem, error) {
	out := []OverviewItem{}
	err := db.SelectContext(ctx, &out, `
		SELECT t.id, t.name, t.status,
		       (SELECT count(*) FROM mutations m
		        WHERE m.topology_id = t.id AND m.state IN ('pending', 'applying')) AS in_flight
		FROM topologies t
		ORDER BY t.created_at DESC, t.id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: overview snapshot: %w", err)
	}
	return out, nil
}
