package postgres

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/decnet/mazenet/internal/domain"
)

// InsertEvent appends ev to the topology's outbox inside tx, assigning the
// next per-topology seq. The caller publishes the returned event after commit
// (see internal/relay); the outbox row is what makes that publish durable.
func InsertEvent(ctx context.Context, tx *sqlx.Tx, ev domain.Event) (domain.Event, error) {
	const q = `
WITH s AS (UPDATE topologies SET event_seq = event_seq + 1 WHERE id = $1 RETURNING event_seq)
INSERT INTO events (topology_id, seq, name, data)
SELECT $1, event_seq, $2, $3 FROM s
RETURNING seq`
	if err := tx.QueryRowxContext(ctx, q, ev.TopologyID, ev.Name, ev.Envelope()).Scan(&ev.Seq); err != nil {
		return ev, fmt.Errorf("postgres: insert event: %w", err)
	}
	return ev, nil
}

// eventRow is the outbox row as stored.
type eventRow struct {
	TopologyID string `db:"topology_id"`
	Seq        int64  `db:"seq"`
	Name       string `db:"name"`
	Data       []byte `db:"data"`
}

// EventsAfter returns up to limit outbox events of a topology with seq > after,
// in seq order.
func (db *DB) EventsAfter(ctx context.Context, topologyID string, after int64, limit int) ([]domain.Event, error) {
	var rows []eventRow
	err := db.SelectContext(ctx, &rows,
		`SELECT topology_id, seq, name, data FROM events WHERE topology_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
		topologyID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: events after: %w", err)
	}
	out := make([]domain.Event, 0, len(rows))
	for _, r := range rows {
		ev, err := decodeEvent(r)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

// UnrelayedTopologies returns the ids of topologies whose outbox holds events
// beyond the relayed watermark, with that watermark.
func (db *DB) UnrelayedTopologies(ctx context.Context, limit int) (map[string]int64, error) {
	rows, err := db.QueryxContext(ctx,
		`SELECT id, event_relayed_seq FROM topologies WHERE event_seq > event_relayed_seq LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: unrelayed topologies: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var seq int64
		if err := rows.Scan(&id, &seq); err != nil {
			return nil, fmt.Errorf("postgres: unrelayed topologies: %w", err)
		}
		out[id] = seq
	}
	return out, rows.Err()
}

// MarkRelayed raises a topology's relayed watermark to seq (never lowers it).
func (db *DB) MarkRelayed(ctx context.Context, topologyID string, seq int64) error {
	_, err := db.ExecContext(ctx,
		`UPDATE topologies SET event_relayed_seq = GREATEST(event_relayed_seq, $2) WHERE id = $1`, topologyID, seq)
	if err != nil {
		return fmt.Errorf("postgres: mark relayed: %w", err)
	}
	return nil
}
