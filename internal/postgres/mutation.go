package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/decnet/mazenet/internal/domain"
)

// The mutation pipeline's store (DOMAIN §4, §5; SYSTEM §3). Every event of
// a mutation is written to the outbox in the same statement or transaction
// as the change it reports, so the relay can publish it exactly once, in
// order, whatever crashes in between. The hot paths (enqueue, claim, the
// op's settlement, finish) are single statements whose CTEs do the check,
// the write, the per-topology seq bump and the outbox insert in one round
// trip; a single statement outside an explicit transaction is atomic, so
// no BEGIN/COMMIT is needed. This file is the api's side (enqueue, list,
// get); drain.go is the worker's (lease, claim, op, finish, fail).

// mutationColumns is the column list of every domain.Mutation read.
const mutationColumns = `id, topology_id, seq, op, payload, state, requested_at, applied_at, reason`

// liveStatuses is the SQL list of the statuses whose queue is open.
const liveStatuses = `('active', 'degraded')`

// NewMutation is an enqueue request that passed shape validation.
type NewMutation struct {
	TopologyID string
	Op         domain.Op
	// Payload is the JSON object exactly as sent.
	Payload json.RawMessage
	// ExpectedVersion, when set, is compared with the topology's version and
	// bumps it on match (DOMAIN §5); nil performs no check and no bump.
	ExpectedVersion *int
	// Idempotency, when set, records the request's Idempotency-Key and its
	// response in the enqueue's own statement (see idempotency.go). Respond
	// gets the mutation as it is inserted: id, topology, op, payload, state.
	Idempotency *Idempotent[*domain.Mutation]
}

// mutationEventPayload is the payload of mutation.enqueued and
// mutation.applying (DOMAIN §9.1); payload is always an object (D3).
type mutationEventPayload struct {
	MutationID string          `json:"mutation_id"`
	Op         domain.Op       `json:"op"`
	Payload    json.RawMessage `json:"payload"`
}

// enqueueStatement checks liveness and version, bumps the version (when
// $3 is given), hands out the mutation and event seqs and inserts both rows.
const enqueueStatement = `
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
)`

// enqueueKeyed is the extra part of a keyed enqueue: the key and its
// response go in with the mutation, or not at all. A key already taken
// violates the primary key and aborts the whole statement.
const enqueueKeyed = `, k AS (
  INSERT INTO idempotency_keys (user_uuid, route, key, request_hash, status, body)
  SELECT $9::uuid, $10::text, $11::text, $12::bytea, $13::int, $14::bytea FROM t
)`

// enqueueResult is the statement's answer.
const enqueueResult = `
SELECT m.seq, m.requested_at, e.seq FROM m, e`

// EnqueueSQL is the enqueue statement as EnqueueMutation runs it without an
// idempotency key. It is exported for cmd/mutbench, whose pgbench ceiling
// must run exactly the statement the api runs. Parameters: $1 topology id,
// $2 version bump (0 or 1), $3 expected version or NULL, $4 mutation id,
// $5 op, $6 payload, $7 event name, $8 event envelope.
const EnqueueSQL = enqueueStatement + enqueueResult

// EnqueueMutation appends a pending mutation to a live topology's queue and
// returns it with its committed `mutation.enqueued` event, which the caller
// publishes. One statement checks liveness and version, bumps the version
// (when expected is given), hands out the mutation and event seqs and inserts
// both rows, plus the idempotency key when one is given; concurrent enqueues
// with the same expected version therefore have exactly one winner, decided
// by the UPDATE's WHERE under the row lock. When no row comes back a plain
// read tells 404, 409 status and 409 version apart (DOMAIN §4.2 order).
//
// With an idempotency key, a key already taken (the statement's key insert
// failed, or it matched nothing because the first attempt already bumped the
// version) is answered by resolveKey before any diagnosis: a *Replay of the
// first response, ErrKeyReused or ErrKeyInFlight, and nothing is written.
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
	q := EnqueueSQL
	args := []any{nm.TopologyID, bump, nm.ExpectedVersion, m.ID, string(nm.Op), string(nm.Payload), ev.Name, string(ev.Envelope())}
	if k := nm.Idempotency; k != nil {
		resp, err := k.Respond(m)
		if err != nil {
			return nil, domain.Event{}, err
		}
		q = enqueueStatement + enqueueKeyed + enqueueResult
		args = append(args, k.UserUUID, k.Route, k.Key, k.Hash, resp.Status, resp.Body)
	}
	// A status or version change between the failed statement and the
	// diagnosing read (the row matched nothing, then matches) is retried,
	// and so is a key that expired or was freed meanwhile.
	for attempt := 0; attempt < keyAttempts; attempt++ {
		err = db.QueryRowxContext(ctx, q, args...).Scan(&m.Seq, &m.RequestedAt, &ev.Seq)
		if err == nil {
			return m, ev, nil
		}
		taken := isKeyTaken(err)
		if !taken && !errors.Is(err, sql.ErrNoRows) {
			// The request's deadline or its client's departure may have
			// hidden the answer of a statement that committed.
			if ctx.Err() != nil {
				if ok, rerr := db.enqueued(ctx, m, &ev); rerr == nil && ok {
					return m, ev, nil
				}
			}
			return nil, domain.Event{}, fmt.Errorf("postgres: enqueue mutation: %w", err)
		}
		if nm.Idempotency != nil {
			if err := db.resolveKey(ctx, nm.Idempotency.IdempotencyKey); !runAgain(err) {
				return nil, domain.Event{}, err
			} else if taken {
				continue
			}
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

// enqueuedTimeout bounds how long EnqueueMutation spends finding out what
// became of a statement whose context ended.
const enqueuedTimeout = 3 * time.Second

// enqueued reports whether the enqueue statement of m committed, filling in
// m's seq and time and ev's seq if so. EnqueueMutation asks when its context
// ended: lib/pq then reports the context's error even when the statement had
// already run (the cancel request it sends reaches an idle server, and the
// result it reads afterwards is discarded), and answering 503 for a mutation
// that exists would make a retrying client enqueue it twice. The statement
// holds its topology's row lock until it commits or rolls back, so waiting
// for that lock first (FOR SHARE conflicts with the UPDATE's lock) makes the
// answer exact; a statement that never reached the server, or was cancelled
// there, left nothing. It runs on a context of its own, since ctx has ended.
func (db *DB) enqueued(ctx context.Context, m *domain.Mutation, ev *domain.Event) (bool, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), enqueuedTimeout)
	defer cancel()
	if _, err := db.ExecContext(ctx, `SELECT FROM topologies WHERE id = $1 FOR SHARE`, m.TopologyID); err != nil {
		return false, fmt.Errorf("postgres: enqueue outcome: %w", err)
	}
	var evSeq sql.NullInt64
	err := db.QueryRowxContext(ctx, `
SELECT m.seq, m.requested_at,
       (SELECT e.seq FROM events e
         WHERE e.topology_id = m.topology_id AND e.name = $2 AND e.data->'payload'->>'mutation_id' = $3
         ORDER BY e.seq DESC LIMIT 1)
  FROM mutations m WHERE m.id = $1::uuid`, m.ID, domain.EventEnqueued, m.ID).Scan(&m.Seq, &m.RequestedAt, &evSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("postgres: enqueue outcome: %w", err)
	}
	// The event was written by the same statement; it can only be missing
	// if the outbox was pruned meanwhile, and then it is published already.
	ev.Seq = evSeq.Int64
	return true, nil
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
