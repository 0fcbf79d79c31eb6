package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/decnet/mazenet/internal/domain"
)

// The mutation pipeline's store (DOMAIN §4, §5; SYSTEM §3). Every event of
// a mutation is written to the outbox in the same statement or transaction
// as the change it reports, so the relay can publish it exactly once, in
// order, whatever crashes in between. The hot paths (enqueue, claim, the
// op's settlement, finish) are single statements whose CTEs do the check,
// the write, the per-topology seq bump and the outbox insert in one round
// trip; a single statement outside an explicit transaction is atomic, so
// no BEGIN/COMMIT is needed.

// mutationColumns is the column list of every domain.Mutation read.
const mutationColumns = `id, topology_id, seq, op, payload, state, requested_at, applied_at, reason`

// liveStatuses is the SQL list of the statuses whose queue is open.
const liveStatuses = `('active', 'degraded')`

// ErrMutationFenced means the mutation row was no longer in the state this
// worker expected (another worker finished it after our lease expired), so
// the transaction was rolled back and the caller must stop.
var ErrMutationFenced = errors.New("postgres: mutation handled elsewhere")

// NewMutation is an enqueue request that passed shape validation.
type NewMutation struct {
	TopologyID string
	Op         domain.Op
	// Payload is the JSON object exactly as sent.
	Payload json.RawMessage
	// ExpectedVersion, when set, is compared with the topology's version and
	// bumps it on match (DOMAIN §5); nil performs no check and no bump.
	ExpectedVersion *int
}

// mutationEventPayload is the payload of mutation.enqueued and
// mutation.applying (DOMAIN §9.1); payload is always an object (D3).
type mutationEventPayload struct {
	MutationID string          `json:"mutation_id"`
	Op         domain.Op       `json:"op"`
	Payload    json.RawMessage `json:"payload"`
}

// EnqueueMutation appends a pending mutation to a live topology's queue and
// returns it with its committed `mutation.enqueued` event, which the caller
// publishes. One statement checks liveness and version, bumps the version
// (when expected is given), hands out the mutation and event seqs and inserts
// both rows; concurrent enqueues with the same expected version therefore
// have exactly one winner, decided by the UPDATE's WHERE under the row lock.
// When no row comes back a plain read tells 404, 409 status and 409 version
// apart (DOMAIN §4.2 order).
func (db *DB) EnqueueMutation(ctx context.Context, nm NewMutation) (*domain.Mutation, domain.Event, error) {
	if !isUUID(nm.TopologyID) {
		return nil, domain.Event{}, domain.ErrTopologyNotFound
	}
	m := &domain.Mutation{ID: newID(), TopologyID: nm.TopologyID, Op: nm.Op, Payload: nm.Payload, State: domain.MutationPending}
	ev, err := domain.NewEvent(nm.TopologyID, domain.EventEnqueued,
		mutationEventPayload{MutationID: m.ID, Op: nm.Op, Payload: nm.Payload}, time.Now())
	if err != nil {
		return nil, domain.Event{}, fmt.Errorf("postgres: enqueue event: %w", err)
	}
	bump := 0
	if nm.ExpectedVersion != nil {
		bump = 1
	}
	const q = `
WITH t AS (
  UPDATE topologies
     SET version = version + $2::int, mutation_seq = mutation_seq + 1, event_seq = event_seq + 1
   WHERE id = $1 AND status IN ` + liveStatuses + ` AND ($3::int IS NULL OR version = $3::int)
  RETURNING mutation_seq, event_seq
), m AS (
  INSERT INTO mutations (id, topology_id, seq, op, payload)
  SELECT $4::uuid, $1::uuid, mutation_seq, $5::text, $6::jsonb FROM t
  RETURNING seq, requested_at
), e AS (
  INSERT INTO events (topology_id, seq, name, data)
  SELECT $1::uuid, event_seq, $7::text, $8::jsonb FROM t
  RETURNING seq
)
SELECT m.seq, m.requested_at, e.seq FROM m, e`
	// A status or version change between the failed statement and the
	// diagnosing read (the row matched nothing, then matches) is retried.
	for attempt := 0; attempt < 3; attempt++ {
		err = db.QueryRowxContext(ctx, q, nm.TopologyID, bump, nm.ExpectedVersion, m.ID, string(nm.Op),
			string(nm.Payload), ev.Name, string(ev.Envelope())).Scan(&m.Seq, &m.RequestedAt, &ev.Seq)
		if err == nil {
			return m, ev, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, domain.Event{}, fmt.Errorf("postgres: enqueue mutation: %w", err)
		}
		t, err := db.GetTopology(ctx, nm.TopologyID)
		if err != nil {
			return nil, domain.Event{}, err
		}
		if err := domain.CheckAction(domain.ActionEnqueue, t.Status); err != nil {
			return nil, domain.Event{}, err
		}
		if nm.ExpectedVersion != nil && t.Version != *nm.ExpectedVersion {
			return nil, domain.Event{}, domain.VersionConflict(*nm.ExpectedVersion, t.Version)
		}
	}
	return nil, domain.Event{}, domain.Errorf(domain.EConflict, "The topology changed while the mutation was enqueued; retry")
}

// ListMutations returns a topology's mutations, newest first, optionally
// only those in state (an unknown state matches nothing). 404 when the
// topology does not exist.
func (db *DB) ListMutations(ctx context.Context, topologyID, state string) ([]domain.Mutation, error) {
	if _, err := db.GetTopology(ctx, topologyID); err != nil {
		return nil, err
	}
	out := []domain.Mutation{}
	err := db.SelectContext(ctx, &out,
		`SELECT `+mutationColumns+` FROM mutations
		  WHERE topology_id = $1 AND ($2 = '' OR state = $2)
		  ORDER BY seq DESC`, topologyID, state)
	if err != nil {
		return nil, fmt.Errorf("postgres: list mutations: %w", err)
	}
	return out, nil
}

// ErrMutationNotFound is the 404 of an unknown mutation id.
var ErrMutationNotFound = domain.Errorf(domain.ENotFound, "Mutation not found")

// GetMutation returns one mutation of a topology: 404 `Topology not found`
// for an unknown topology, 404 `Mutation not found` for an unknown id or one
// that belongs to another topology.
func (db *DB) GetMutation(ctx context.Context, topologyID, mutationID string) (*domain.Mutation, error) {
	if _, err := db.GetTopology(ctx, topologyID); err != nil {
		return nil, err
	}
	if !isUUID(mutationID) {
		return nil, ErrMutationNotFound
	}
	var m domain.Mutation
	err := db.GetContext(ctx, &m,
		`SELECT `+mutationColumns+` FROM mutations WHERE topology_id = $1 AND id = $2`, topologyID, mutationID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrMutationNotFound
	} else if err != nil {
		return nil, fmt.Errorf("postgres: get mutation: %w", err)
	}
	return &m, nil
}

// --- Worker side -----------------------------------------------------------

// asyncCommit, joined into a single-statement UPDATE, turns off
// synchronous_commit for that statement's implicit transaction: its commit
// does not wait for the WAL flush (a few milliseconds on common disks, and
// the queue every commit waits in under load). Only the lease statements and
// the claim use it, because losing one of them in a Postgres crash is
// harmless: a lease reverts to an older state and expires, a claim reverts
// to pending, and every drain of that moment failed with the server anyway.
// A later synchronous commit flushes the WAL up to itself, so these writes
// are never reordered after a durable change. Statements that write outbox
// events never use it: an event published to Redis must never be lost from
// the outbox, or its seq would be handed out again.
const asyncCommit = `(SELECT set_config('synchronous_commit', 'off', true)) AS async_commit`

// AcquireDrainLease makes owner the one drainer of a topology until ttl from
// now, if the topology is live, has open (pending or applying) mutations and
// its lease is free, expired or already owner's. It reports whether owner
// holds the lease. Requiring open work means a wake-up for an already drained
// topology costs one statement and no write. The worker takes the lease
// through ClaimNext, which applies the same rule; this form serves callers
// that need only the lease.
func (db *DB) AcquireDrainLease(ctx context.Context, topologyID, owner string, ttl time.Duration) (bool, error) {
	if !isUUID(topologyID) {
		return false, nil
	}
	res, err := db.ExecContext(ctx, `
UPDATE topologies SET drain_owner = $2, drain_until = now() + $3 * interval '1 millisecond'
  FROM `+asyncCommit+`
 WHERE id = $1 AND status IN `+liveStatuses+`
   AND (drain_until IS NULL OR drain_until < now() OR drain_owner = $2)
   AND EXISTS (SELECT 1 FROM mutations WHERE topology_id = $1 AND state IN ('pending', 'applying'))`,
		topologyID, owner, ttl.Milliseconds())
	if err != nil {
		return false, fmt.Errorf("postgres: acquire drain lease: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// RenewDrainLease extends owner's lease to ttl from now; false means the
// lease was lost (it expired and another worker took it).
func (db *DB) RenewDrainLease(ctx context.Context, topologyID, owner string, ttl time.Duration) (bool, error) {
	res, err := db.ExecContext(ctx,
		`UPDATE topologies SET drain_until = now() + $3 * interval '1 millisecond' FROM `+asyncCommit+`
		  WHERE id = $1 AND drain_owner = $2`,
		topologyID, owner, ttl.Milliseconds())
	if err != nil {
		return false, fmt.Errorf("postgres: renew drain lease: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// ReleaseDrainLease frees owner's lease (a no-op if it was lost).
func (db *DB) ReleaseDrainLease(ctx context.Context, topologyID, owner string) error {
	_, err := db.ExecContext(ctx,
		`UPDATE topologies SET drain_owner = NULL, drain_until = NULL FROM `+asyncCommit+`
		  WHERE id = $1 AND drain_owner = $2`,
		topologyID, owner)
	if err != nil {
		return fmt.Errorf("postgres: release drain lease: %w", err)
	}
	return nil
}

// OpenMutation is a pending or applying mutation as the worker sees it.
// CommittedAt is set once the op's changes are committed; Effects are the
// materializer calls that op produced (crash recovery re-runs them).
type OpenMutation struct {
	domain.Mutation
	CommittedAt *time.Time      `db:"committed_at"`
	EffectsJSON []byte          `db:"effects"`
	Effects     []domain.Effect `db:"-"`
}

// NextOpenMutation returns the lowest-seq pending or applying mutation of a
// topology, or nil when there is none.
func (db *DB) NextOpenMutation(ctx context.Context, topologyID string) (*OpenMutation, error) {
	var m OpenMutation
	err := db.GetContext(ctx, &m, `SELECT `+mutationColumns+`, committed_at, effects FROM mutations
		 WHERE topology_id = $1 AND state IN ('pending', 'applying') ORDER BY seq LIMIT 1`, topologyID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("postgres: next mutation: %w", err)
	}
	if len(m.EffectsJSON) > 0 {
		if err := json.Unmarshal(m.EffectsJSON, &m.Effects); err != nil {
			return nil, fmt.Errorf("postgres: mutation %s effects: %w", m.ID, err)
		}
	}
	return &m, nil
}

// ClaimMutation moves a pending mutation to applying (DOMAIN §4.4 step 1),
// fenced by the drain lease (owner must hold it) and by liveness; ok=false
// means the row was not pending any more or the lease was lost.
//
// Deviation from the reference design, for latency: the claim writes no
// event and commits asynchronously (it is visible at once, so the row reads
// `applying` in REST while the op runs; it is merely not waited for on
// disk). `mutation.applying` is written to the outbox by the transaction
// that settles the op instead: CommitMutation, or FailMutation for a
// rejected op, each of which commits at most once per mutation. The stream
// order is unchanged (enqueued, applying, then applied or failed; N+1's
// applying after N's terminal) and `applying` still precedes
// materialisation, but the claim costs no WAL flush and no outbox row, and
// "emitted exactly once" holds by construction: a claim lost in a Postgres
// crash reverts the row to pending without having emitted anything.
func (db *DB) ClaimMutation(ctx context.Context, m *domain.Mutation, owner string) (bool, error) {
	r, err := db.ExecContext(ctx, `
UPDATE mutations SET state = 'applying' FROM `+asyncCommit+`
 WHERE id = $2 AND topology_id = $1 AND state = 'pending'
   AND EXISTS (SELECT 1 FROM topologies WHERE id = $1 AND drain_owner = $3 AND status IN `+liveStatuses+`)`,
		m.TopologyID, m.ID, owner)
	if err != nil {
		return false, fmt.Errorf("postgres: claim mutation: %w", err)
	}
	n, _ := r.RowsAffected()
	return n == 1, nil
}

// ClaimNext is the drain loop's step 1 in one round trip: it takes or
// renews owner's lease (the AcquireDrainLease rule: live, open work, lease
// free, expired or owner's) and, holding it, returns the topology's
// lowest-seq open mutation, moving it from pending to applying on the way
// (claimed=true; the row is returned as applying). A row returned with
// claimed=false is already applying: a dead worker's, to recover. nil means
// owner does not hold the lease now (another drainer does, the topology is
// not live, or there is no open work). Like the other lease writes, it
// commits asynchronously and writes no event (see ClaimMutation). A lease of
// owner's with more than half its ttl left is used as it is, so a pass does
// not rewrite the hot topology row (and queue behind enqueues holding its
// lock) for every mutation; the renewal loop keeps the lease fresh.
func (db *DB) ClaimNext(ctx context.Context, topologyID, owner string, ttl time.Duration) (m *OpenMutation, claimed bool, err error) {
	if !isUUID(topologyID) {
		return nil, false, nil
	}
	var row struct {
		OpenMutation
		Claimed bool `db:"claimed"`
	}
	err = db.GetContext(ctx, &row, `
WITH held AS (
  SELECT id FROM topologies
   WHERE id = $1 AND status IN `+liveStatuses+`
     AND drain_owner = $2 AND drain_until > now() + $3 / 2 * interval '1 millisecond'
), lease AS (
  UPDATE topologies SET drain_owner = $2, drain_until = now() + $3 * interval '1 millisecond'
    FROM `+asyncCommit+`
   WHERE id = $1 AND status IN `+liveStatuses+` AND NOT EXISTS (SELECT 1 FROM held)
     AND (drain_until IS NULL OR drain_until < now() OR drain_owner = $2)
     AND EXISTS (SELECT 1 FROM mutations WHERE topology_id = $1 AND state IN ('pending', 'applying'))
  RETURNING id
), nxt AS (
  SELECT id FROM mutations
   WHERE topology_id = $1 AND state IN ('pending', 'applying')
     AND (EXISTS (SELECT 1 FROM lease) OR EXISTS (SELECT 1 FROM held))
   ORDER BY seq LIMIT 1
), upd AS (
  UPDATE mutations SET state = 'applying' FROM nxt
   WHERE mutations.id = nxt.id AND mutations.state = 'pending'
  RETURNING mutations.id
)
SELECT `+mutationColumns+`, committed_at, effects, EXISTS (SELECT 1 FROM upd) AS claimed
  FROM mutations WHERE id = (SELECT id FROM nxt)`, topologyID, owner, ttl.Milliseconds())
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	} else if err != nil {
		return nil, false, fmt.Errorf("postgres: claim next mutation: %w", err)
	}
	m = &row.OpenMutation
	if row.Claimed {
		m.State = domain.MutationApplying // the outer SELECT saw the row before the claim
	}
	if len(m.EffectsJSON) > 0 {
		if err := json.Unmarshal(m.EffectsJSON, &m.Effects); err != nil {
			return nil, false, fmt.Errorf("postgres: mutation %s effects: %w", m.ID, err)
		}
	}
	return m, row.Claimed, nil
}

// applyingEvent builds `mutation.applying` {mutation_id, op, payload}.
func applyingEvent(m *domain.Mutation) (domain.Event, error) {
	return domain.NewEvent(m.TopologyID, domain.EventApplying,
		mutationEventPayload{MutationID: m.ID, Op: m.Op, Payload: m.Payload}, time.Now())
}

// appliedPayload is the payload of `mutation.applied`.
type appliedPayload struct {
	MutationID string    `json:"mutation_id"`
	Op         domain.Op `json:"op"`
}

// FinishMutation marks an applying mutation applied and records
// `mutation.applied`, and in the same statement marks running the deckies
// whose spawn the materializer reported successful (DOMAIN §6.4), so the
// spawn's outcome and the mutation's end are one commit. age is the seconds
// since it was requested. ok=false means it was not applying any more
// (another worker finished it); then nothing is written.
func (db *DB) FinishMutation(ctx context.Context, m *domain.Mutation, running []string) (ev domain.Event, age float64, ok bool, err error) {
	ev, err = domain.NewEvent(m.TopologyID, domain.EventApplied, appliedPayload{MutationID: m.ID, Op: m.Op}, time.Now())
	if err != nil {
		return ev, 0, false, err
	}
	if running == nil {
		running = []string{}
	}
	evs := []domain.Event{ev}
	a, err := settleWith(ctx, db.DB, m, `state = 'applied', applied_at = now(), committed_at = COALESCE(committed_at, now())`,
		`state = 'applying'`, `, d AS (
  UPDATE deckies SET state = 'running', updated_at = now()
   WHERE topology_id = $1 AND uuid = ANY($6::uuid[]) AND EXISTS (SELECT 1 FROM m)
)`, evs, pq.Array(running))
	if err != nil || a == nil {
		return ev, 0, false, err
	}
	return evs[0], *a, true, nil
}

// Commit is the outcome of a mutation's op transaction.
type Commit struct {
	// Before and After are the hydrated views around the op (After is the
	// committed state). Effects are the materializer calls to make.
	Before, After *domain.Hydrated
	Effects       []domain.Effect
	// Materialize says the effects must run: there are some and the
	// topology is live and unihost (DOMAIN §15).
	Materialize bool
	// Events are the committed outbox events to publish, in seq order:
	// `mutation.applying`, then `mutation.applied` when Applied.
	Events []domain.Event
	// Applied is set when nothing remained to do after the op, so the
	// mutation was marked applied in the same transaction.
	Applied bool
	// Age is the seconds from request to applied (with Applied).
	Age float64
}

// CommitMutation runs an applying mutation's op in one transaction (DOMAIN
// §4.4 step 2): load the topology's view, run domain.ApplyOp (its
// preconditions, writes and post-apply checks), persist the difference, and
// stamp the mutation committed_at with its effects, and record
// `mutation.applying` (see ClaimMutation). Any error rolls everything back,
// so a rejected op leaves no trace; a *domain.Error is the op's
// operator-facing rejection. No version change.
//
// When the op has no effects to materialise, nothing observable can happen
// between its commit and `applied`, so the same transaction also marks the
// mutation applied and records `mutation.applied` (one round trip saved).
// ErrMutationFenced means the row was not applying and uncommitted any more.
//
// Deviation from the reference design: the view is loaded without taking
// the topology row lock (LoadHydratedForUpdate). That lock would be held
// for the whole op transaction and every enqueue to the topology (which
// updates the same row) would queue behind it. It is not needed: the drain
// lease already makes this worker the only writer of a live topology's
// LANs, deckies and edges (pending-only editing never meets a live
// topology), and the stamp below is the fence for the one remaining race, a
// worker whose lease expired mid-op: the stamp's UPDATE waits for the other
// worker's row lock and then matches nothing, so the stale op rolls back.
// The topology row is locked only by the outbox insert, at the end.
func (db *DB) CommitMutation(ctx context.Context, m *domain.Mutation, newID func() string) (*Commit, error) {
	var c Commit
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		before, err := loadView(ctx, tx, m.TopologyID)
		if err != nil {
			return err
		}
		var payload map[string]any
		if err := json.Unmarshal(m.Payload, &payload); err != nil || payload == nil {
			return domain.Errorf(domain.EUnprocessable, "payload is not a JSON object")
		}
		res, err := domain.ApplyOp(before, m.Op, payload, domain.OpEnv{
			NewID:           newID,
			ReservedSubnets: func() (map[string]bool, error) { return ReservedSubnetsTx(ctx, tx) },
		})
		if err != nil {
			return err
		}
		if res.Changed {
			if err := persistDiff(ctx, tx, before, res.After); err != nil {
				return err
			}
		}
		c = Commit{Before: before, After: res.After, Effects: res.Effects}
		t := res.After.Topology
		c.Materialize = len(res.Effects) > 0 && t.Status.Live() && t.Mode == domain.ModeUnihost
		effects, err := json.Marshal(res.Effects)
		if err != nil {
			return fmt.Errorf("postgres: effects: %w", err)
		}
		applying, err := applyingEvent(m)
		if err != nil {
			return err
		}
		c.Events = []domain.Event{applying}
		// The stamp is the fence: only one transaction ever commits it.
		set := `committed_at = now(), effects = $6::jsonb`
		if !c.Materialize {
			applied, err := domain.NewEvent(m.TopologyID, domain.EventApplied, appliedPayload{MutationID: m.ID, Op: m.Op}, time.Now())
			if err != nil {
				return err
			}
			c.Events, c.Applied = append(c.Events, applied), true
			set += `, state = 'applied', applied_at = now()`
		}
		age, err := settle(ctx, tx, m, set, `state = 'applying' AND committed_at IS NULL`, c.Events, string(effects))
		if err != nil {
			return err
		}
		if age == nil {
			return ErrMutationFenced
		}
		c.Age = *age
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// settle updates mutation m with set where cond holds and, if it did,
// appends evs to the outbox with consecutive seqs, in one statement (one
// round trip instead of one per write). It fills in the events' seqs and
// returns the seconds since m was requested, or nil when cond did not hold
// (nothing written). set and cond may use $6 onwards for extra.
func settle(ctx context.Context, q queryer, m *domain.Mutation, set, cond string, evs []domain.Event, extra ...any) (*float64, error) {
	return settleWith(ctx, q, m, set, cond, "", evs, extra...)
}

// settleWith is settle plus also, an extra data-modifying CTE (", name AS
// (...)") that runs in the same statement; it may refer to m to act only when
// the mutation was updated.
func settleWith(ctx context.Context, q queryer, m *domain.Mutation, set, cond, also string, evs []domain.Event, extra ...any) (*float64, error) {
	names := make([]string, len(evs))
	data := make([]string, len(evs))
	for i, ev := range evs {
		names[i], data[i] = ev.Name, string(ev.Envelope())
	}
	args := append([]any{m.TopologyID, m.ID, len(evs), pq.Array(names), pq.Array(data)}, extra...)
	var age *float64
	var last *int64
	err := q.QueryRowxContext(ctx, `
WITH m AS (
  UPDATE mutations SET `+set+` WHERE id = $2 AND topology_id = $1 AND `+cond+`
  RETURNING extract(epoch FROM clock_timestamp() - requested_at)::float8 AS age
), s AS (
  UPDATE topologies SET event_seq = event_seq + $3 WHERE id = $1 AND EXISTS (SELECT 1 FROM m) RETURNING event_seq
), e AS (
  INSERT INTO events (topology_id, seq, name, data)
  SELECT $1::uuid, s.event_seq - $3 + x.i, x.name, x.data::jsonb
    FROM s, unnest($4::text[], $5::text[]) WITH ORDINALITY AS x(name, data, i)
  RETURNING seq
)`+also+`
SELECT (SELECT age FROM m), (SELECT max(seq) FROM e)`, args...).Scan(&age, &last)
	if err != nil {
		return nil, fmt.Errorf("postgres: settle mutation %s: %w", m.ID, err)
	}
	if age == nil {
		return nil, nil
	}
	if last == nil && len(evs) > 0 {
		return nil, fmt.Errorf("postgres: settle mutation %s: events not written", m.ID)
	}
	for i := range evs {
		evs[i].Seq = *last - int64(len(evs)-1-i)
	}
	return age, nil
}

// loadView is loadHydrated in one round trip: the four reads become one
// statement that returns each part as JSON (same columns, same order: LANs
// and deckies by name, edges by id), which the op transaction, the hottest
// path of the pipeline, can afford better than four prepared queries.
func loadView(ctx context.Context, q queryer, id string) (*domain.Hydrated, error) {
	if !isUUID(id) {
		return nil, domain.ErrTopologyNotFound
	}
	var raw struct {
		Topology []byte `db:"topology"`
		LANs     []byte `db:"lans"`
		Deckies  []byte `db:"deckies"`
		Edges    []byte `db:"edges"`
	}
	err := q.GetContext(ctx, &raw, `
SELECT (SELECT row_to_json(t) FROM (SELECT `+topologyColumns+` FROM topologies WHERE id = $1) t) AS topology,
       (SELECT coalesce(json_agg(l ORDER BY l.name), '[]')
          FROM (SELECT id, topology_id, name, subnet, is_dmz, docker_network_id, x, y FROM lans WHERE topology_id = $1) l) AS lans,
       (SELECT coalesce(json_agg(d ORDER BY d.name), '[]')
          FROM (SELECT `+deckyColumns+` FROM deckies WHERE topology_id = $1) d) AS deckies,
       (SELECT coalesce(json_agg(e ORDER BY e.id), '[]')
          FROM (SELECT id, topology_id, decky_uuid, lan_id, is_bridge, forwards_l3 FROM edges WHERE topology_id = $1) e) AS edges`, id)
	if err != nil {
		return nil, fmt.Errorf("postgres: load view: %w", err)
	}
	if raw.Topology == nil {
		return nil, domain.ErrTopologyNotFound
	}
	h := &domain.Hydrated{LANs: []domain.LAN{}, Deckies: []domain.Decky{}, Edges: []domain.Edge{}}
	// home_lan_id is decoded explicitly rather than through domain.Decky's
	// JSON tag, so the store never depends on how the API chooses to expose
	// it: losing it here would be written back as NULL by persistDiff.
	var deckies []struct {
		domain.Decky
		HomeLANID *string `json:"home_lan_id"`
	}
	for _, part := range []struct {
		what string
		raw  []byte
		dst  any
	}{{"topology", raw.Topology, &h.Topology}, {"lans", raw.LANs, &h.LANs}, {"deckies", raw.Deckies, &deckies}, {"edges", raw.Edges, &h.Edges}} {
		if err := json.Unmarshal(part.raw, part.dst); err != nil {
			return nil, fmt.Errorf("postgres: load view %s: %w", part.what, err)
		}
	}
	for _, d := range deckies {
		d.Decky.HomeLANID = d.HomeLANID
		if d.Decky.Services == nil {
			d.Decky.Services = []string{}
		}
		if d.Decky.Config == nil {
			d.Decky.Config = map[string]any{}
		}
		h.Deckies = append(h.Deckies, d.Decky)
	}
	return h, nil
}

// failedPayload is the payload of `mutation.failed`.
type failedPayload struct {
	MutationID string    `json:"mutation_id"`
	Op         domain.Op `json:"op"`
	Reason     string    `json:"reason"`
}

// FailMutation marks an applying mutation failed with reason and records
// `mutation.applying` and `mutation.failed`; if the topology is active it also degrades it with the
// same reason (audit row and `status` event, DOMAIN §4.4). An already
// degraded topology gets nothing more. All in one transaction; the events
// are returned in seq order for publishing. It returns no events when the
// row was not applying any more, or when its op had already committed (a
// worker whose lease expired must not fail what its successor applied).
func (db *DB) FailMutation(ctx context.Context, m *domain.Mutation, reason string) ([]domain.Event, error) {
	var out []domain.Event
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		out = nil
		t, err := LockTopology(ctx, tx, m.TopologyID)
		if err != nil {
			return err
		}
		// The op's transaction rolled back, so `mutation.applying` was never
		// written (see ClaimMutation): it goes out here, just before the
		// failure.
		applying, err := applyingEvent(m)
		if err != nil {
			return err
		}
		failed, err := domain.NewEvent(m.TopologyID, domain.EventFailed,
			failedPayload{MutationID: m.ID, Op: m.Op, Reason: reason}, time.Now())
		if err != nil {
			return err
		}
		evs := []domain.Event{applying, failed}
		age, err := settle(ctx, tx, m, `state = 'failed', applied_at = now(), reason = $6`,
			`state = 'applying' AND committed_at IS NULL`, evs, reason)
		if err != nil || age == nil {
			return err
		}
		out = evs
		if t.Status == domain.StatusActive {
			st, err := Transition(ctx, tx, m.TopologyID, domain.StatusDegraded, &reason)
			if err != nil {
				return err
			}
			out = append(out, st)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// StrandedTopologies returns up to limit live topologies that have open
// mutations and nobody draining them (lease free or expired): lost wake-ups
// and dead workers, for the sweep.
func (db *DB) StrandedTopologies(ctx context.Context, limit int) ([]string, error) {
	out := []string{}
	err := db.SelectContext(ctx, &out, `
SELECT t.id FROM topologies t
 WHERE t.status IN `+liveStatuses+`
   AND (t.drain_until IS NULL OR t.drain_until < now())
   AND EXISTS (SELECT 1 FROM mutations m WHERE m.topology_id = t.id AND m.state IN ('pending', 'applying'))
 LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: stranded topologies: %w", err)
	}
	return out, nil
}

// OpenMutationCounts returns how many mutations are pending and applying
// across all topologies (the queue-depth metric).
func (db *DB) OpenMutationCounts(ctx context.Context) (pending, applying int64, err error) {
	err = db.QueryRowxContext(ctx, `
SELECT count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state = 'applying')
  FROM mutations WHERE state IN ('pending', 'applying')`).Scan(&pending, &applying)
	if err != nil {
		return 0, 0, fmt.Errorf("postgres: open mutation counts: %w", err)
	}
	return pending, applying, nil
}
