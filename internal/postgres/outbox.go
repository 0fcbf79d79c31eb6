package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/decnet/mazenet/internal/domain"
)

// The event outbox (SYSTEM §3.3, §3.6). Every transition writes its event to
// `events` in the transaction that makes it, with the topology's next seq
// (the `UPDATE topologies SET event_seq = …` row lock serialises a
// topology's writers, so its events commit in seq order). After commit the
// relay stamps committed events with a global, gap-free position gseq
// (StampEvents); "<gseq>-<seq>" is the event's SSE id for ever, so Redis only
// carries copies and resume is answered from here. The outbox keeps at least
// the newest 1,000 events of each topology (PruneEvents), which is the
// retention DOMAIN §10 promises.
//
// Locks, in the only order any path takes them: writers lock their topology
// row then insert; the stamper locks the relay_clock row, then the unstamped
// rows it stamps, with NOWAIT; deletions (prune, a topology's cascade) lock
// the rows they delete, then relay_clock (the events_note_pruned trigger).
// The clock holder never waits for a row, so no cycle can form; a stamper
// that meets a row locked by a topology deletion fails and is retried.

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
	GSeq       *int64 `db:"gseq"`
	Name       string `db:"name"`
	Data       []byte `db:"data"`
}

// eventColumns is the column list of every eventRow read.
const eventColumns = `topology_id, seq, gseq, name, data`

// decodeEvent turns an outbox row back into a domain.Event.
func decodeEvent(r eventRow) (domain.Event, error) {
	ev := domain.Event{TopologyID: r.TopologyID, Seq: r.Seq, Name: r.Name}
	if r.GSeq != nil {
		ev.GSeq = *r.GSeq
	}
	if err := json.Unmarshal(r.Data, &ev); err != nil {
		return ev, fmt.Errorf("postgres: decode event %s/%d: %w", r.TopologyID, r.Seq, err)
	}
	return ev, nil
}

func decodeEvents(rows []eventRow) ([]domain.Event, error) {
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

// selectEvents runs an outbox read and decodes its rows.
func (db *DB) selectEvents(ctx context.Context, what, q string, args ...any) ([]domain.Event, error) {
	var rows []eventRow
	if err := db.SelectContext(ctx, &rows, q, args...); err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, err)
	}
	return decodeEvents(rows)
}

// EventsAfter returns up to limit outbox events of a topology with seq > after,
// in seq order, stamped or not.
func (db *DB) EventsAfter(ctx context.Context, topologyID string, after int64, limit int) ([]domain.Event, error) {
	return db.selectEvents(ctx, "events after",
		`SELECT `+eventColumns+` FROM events WHERE topology_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
		topologyID, after, limit)
}

// Stamp is what one StampEvents call did: the clock before and after, and the
// events it gave positions Before+1 … After, in gseq order.
type Stamp struct {
	Before, After int64
	Events        []domain.Event
}

// StampEvents gives up to limit committed, unstamped events the next global
// positions, in (topology_id, seq) order, in one short transaction committed
// before it returns (an id must be durable before any client can see it).
// When there was nothing to stamp it rolls back, which costs no WAL flush.
//
// The transaction first locks the clock row in a statement of its own: under
// READ COMMITTED the next statement then takes a snapshot that sees every
// earlier stamper's committed work, so no event is stamped twice (one
// statement that both locked and read would keep its older snapshot and
// could). Positions are consecutive, so gseqs have no gaps. A topology's
// events commit in seq order, so a snapshot that sees seq n sees every seq
// below it: within a topology gseq order is seq order.
func (db *DB) StampEvents(ctx context.Context, limit int) (Stamp, error) {
	var st Stamp
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return st, fmt.Errorf("postgres: stamp events: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := tx.GetContext(ctx, &st.Before, `SELECT gseq FROM relay_clock FOR UPDATE`); err != nil {
		return Stamp{}, fmt.Errorf("postgres: stamp events: %w", err)
	}
	var rows []eventRow
	err = tx.SelectContext(ctx, &rows, `
WITH todo AS (
  SELECT topology_id, seq FROM events WHERE gseq IS NULL
   ORDER BY topology_id, seq LIMIT $2 FOR UPDATE NOWAIT
), n AS (
  SELECT topology_id, seq, $1::bigint + row_number() OVER (ORDER BY topology_id, seq) AS g FROM todo
), u AS (
  UPDATE events e SET gseq = n.g FROM n WHERE e.topology_id = n.topology_id AND e.seq = n.seq
  RETURNING e.topology_id, e.seq, e.gseq, e.name, e.data
), c AS (
  UPDATE relay_clock SET gseq = (SELECT max(gseq) FROM u) WHERE EXISTS (SELECT 1 FROM u)
)
SELECT `+eventColumns+` FROM u ORDER BY gseq`, st.Before, limit)
	if err != nil {
		return Stamp{}, fmt.Errorf("postgres: stamp events: %w", err)
	}
	if len(rows) == 0 {
		// Another stamper took them while this one waited for the lock. Roll
		// back: a commit would flush the WAL for the row lock alone, and
		// under load every waiting publisher would pay a flush in turn.
		return Stamp{Before: st.Before, After: st.Before}, nil
	}
	if st.Events, err = decodeEvents(rows); err != nil {
		return Stamp{}, err
	}
	if err := tx.Commit(); err != nil {
		return Stamp{}, fmt.Errorf("postgres: stamp events: commit: %w", err)
	}
	st.After = st.Before + int64(len(st.Events))
	return st, nil
}

// Clock is the relay's record in Postgres (table relay_clock).
type Clock struct {
	// GSeq is the last position handed out.
	GSeq int64 `db:"gseq"`
	// Appended is the last position the sweep confirmed in Redis.
	Appended int64 `db:"appended_gseq"`
	// Pruned is the highest position ever deleted from the outbox.
	Pruned int64 `db:"pruned_gseq"`
}

// EventClock reads the relay clock.
func (db *DB) EventClock(ctx context.Context) (Clock, error) {
	var c Clock
	if err := db.GetContext(ctx, &c, `SELECT gseq, appended_gseq, pruned_gseq FROM relay_clock`); err != nil {
		return c, fmt.Errorf("postgres: event clock: %w", err)
	}
	return c, nil
}

// MarkAppended records that Redis holds every event up to gseq (never
// lowering the record, never above the clock); pruning stays behind it.
func (db *DB) MarkAppended(ctx context.Context, gseq int64) error {
	_, err := db.ExecContext(ctx,
		`UPDATE relay_clock SET appended_gseq = GREATEST(appended_gseq, LEAST($1::bigint, gseq))`, gseq)
	if err != nil {
		return fmt.Errorf("postgres: mark appended: %w", err)
	}
	return nil
}

// EventsByGSeq returns up to limit stamped events with after < gseq <= upto,
// in gseq order: the relay's refill of Redis and the SSE reader's and the
// overview replay's read.
func (db *DB) EventsByGSeq(ctx context.Context, after, upto int64, limit int) ([]domain.Event, error) {
	return db.selectEvents(ctx, "events by gseq",
		`SELECT `+eventColumns+` FROM events WHERE gseq > $1 AND gseq <= $2 ORDER BY gseq LIMIT $3`,
		after, upto, limit)
}

// TopologyEvents returns up to limit stamped events of a topology with seq >
// afterSeq and gseq <= upto, in seq order (which is also gseq order): the
// topology stream's replay.
func (db *DB) TopologyEvents(ctx context.Context, topologyID string, afterSeq, upto int64, limit int) ([]domain.Event, error) {
	return db.selectEvents(ctx, "topology events",
		`SELECT `+eventColumns+` FROM events WHERE topology_id = $1 AND seq > $2 AND gseq <= $3 ORDER BY seq LIMIT $4`,
		topologyID, afterSeq, upto, limit)
}

// ResumePoint is what the outbox still knows about the event a resume id
// names, and about what followed it.
type ResumePoint struct {
	// Retained says whether the named event is still in the outbox
	// (stamped or not); GSeq and Seq are then its position and seq (GSeq 0
	// when not stamped yet).
	Retained  bool
	GSeq, Seq int64
	// Next is the lowest retained seq of the topology above the resume seq,
	// stamped or not; 0 when there is none (topology streams only).
	Next int64
	// Pruned is the highest position ever deleted from the outbox.
	Pruned int64
}

// TopologyResumePoint reads, in one round trip, what a resume of a topology
// stream from seq needs: the retained event (topology, seq), the next
// retained seq after it, and the clock's pruned position.
func (db *DB) TopologyResumePoint(ctx context.Context, topologyID string, seq int64) (ResumePoint, error) {
	p := ResumePoint{Seq: seq}
	var gseq *int64
	err := db.QueryRowxContext(ctx, `
SELECT EXISTS (SELECT 1 FROM events WHERE topology_id = $1 AND seq = $2),
       (SELECT gseq FROM events WHERE topology_id = $1 AND seq = $2),
       COALESCE((SELECT min(seq) FROM events WHERE topology_id = $1 AND seq > $2), 0),
       (SELECT pruned_gseq FROM relay_clock)`, topologyID, seq).Scan(&p.Retained, &gseq, &p.Next, &p.Pruned)
	if err != nil {
		return p, fmt.Errorf("postgres: resume point: %w", err)
	}
	if gseq != nil {
		p.GSeq = *gseq
	}
	return p, nil
}

// OverviewResumePoint reads what a resume of the overview stream from gseq
// needs: the retained event at that position and the clock's pruned
// position.
func (db *DB) OverviewResumePoint(ctx context.Context, gseq int64) (ResumePoint, error) {
	p := ResumePoint{GSeq: gseq}
	var seq *int64
	err := db.QueryRowxContext(ctx, `
SELECT (SELECT seq FROM events WHERE gseq = $1), (SELECT pruned_gseq FROM relay_clock)`,
		gseq).Scan(&seq, &p.Pruned)
	if err != nil {
		return p, fmt.Errorf("postgres: resume point: %w", err)
	}
	if seq != nil {
		p.Retained, p.Seq = true, *seq
	}
	return p, nil
}

// PruneEvents deletes outbox rows that are both confirmed in Redis (gseq at
// or below appended_gseq) and older than the newest keep of their topology,
// returning how many went. The events_note_pruned trigger raises
// relay_clock.pruned_gseq in the same statement, so resumes see exactly what
// retention dropped.
func (db *DB) PruneEvents(ctx context.Context, keep int) (int64, error) {
	r, err := db.ExecContext(ctx, `
DELETE FROM events e USING topologies t
 WHERE e.topology_id = t.id AND e.seq <= t.event_seq - $1
   AND e.gseq <= (SELECT appended_gseq FROM relay_clock)`, keep)
	if err != nil {
		return 0, fmt.Errorf("postgres: prune events: %w", err)
	}
	return r.RowsAffected()
}
