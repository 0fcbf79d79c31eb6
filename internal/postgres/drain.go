package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/decnet/mazenet/internal/domain"
)

// The worker's side of the mutation pipeline (DOMAIN §4.4, SYSTEM §3.2):
// the drain lease, the claim, the op's transaction and the terminal
// writes (finish, fail), and the sweep's search for stranded work. The
// story of how they fit together is told once, in worker/apply.go; the
// enqueue side (EnqueueMutation, ListMutations, GetMutation) is in
// mutation.go.

// ErrMutationFenced means the mutation row was no longer in the state this
// worker expected (another worker finished it after our lease expired), so
// the transaction was rolled back and the caller must stop.
var ErrMutationFenced = errors.New("postgres: mutation handled elsewhere")

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

// ConfirmDrainLease is RenewDrainLease with a synchronous commit, for the
// one side effect no synchronous commit precedes: re-materialising a
// mutation whose op committed before its worker died. It extends the lease
// only if owner still holds it with generation fence on a live topology, and
// returns the topology (nil when the lease was lost). Its commit flushes the
// WAL up to itself, so the lease write that raised the fence (asynchronous,
// see ClaimNext) is durable before any call carries that fence: a Postgres
// crash can then never hand the same fence to a second holder.
func (db *DB) ConfirmDrainLease(ctx context.Context, topologyID, owner string, fence int64, ttl time.Duration) (*domain.Topology, error) {
	var t domain.Topology
	err := db.GetContext(ctx, &t,
		`UPDATE topologies SET drain_until = now() + $3 * interval '1 millisecond'
		  WHERE id = $1 AND drain_owner = $2 AND fence = $4 AND status IN `+liveStatuses+`
		  RETURNING `+topologyColumns,
		topologyID, owner, ttl.Milliseconds(), fence)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("postgres: confirm drain lease: %w", err)
	}
	return &t, nil
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
// materializer calls that op produced, with the objects they are made with
// (crash recovery re-runs them). Fence is the generation of the lease under
// which ClaimNext returned it: every materializer call made for it carries
// that fence.
type OpenMutation struct {
	domain.Mutation
	CommittedAt *time.Time      `db:"committed_at"`
	EffectsJSON []byte          `db:"effects"`
	Effects     []domain.Effect `db:"-"`
	Fence       int64           `db:"fence"`
}

// ClaimNext is the drain loop's step 1 (DOMAIN §4.4) in one round trip:
// it takes or renews owner's lease on the topology and, holding it, returns
// the topology's lowest-seq open mutation, moving it from pending to
// applying on the way (claimed=true; the row is returned as applying). The
// lease is taken only when the topology is live, has open (pending or
// applying) work and its lease is free, expired or already owner's, so a
// wake-up for an already drained topology costs one statement and no
// write. A row returned with claimed=false is already applying: a dead
// worker's, to recover. nil means owner does not hold the lease now
// (another drainer does, the topology is not live, or there is no open
// work). A lease of owner's with more than half its ttl left is used as it
// is, so a pass does not rewrite the hot topology row (and queue behind
// enqueues holding its lock) for every mutation; the renewal loop keeps the
// lease fresh.
//
// Taking the lease from anyone else (a free, expired or lifecycle-held
// lease) raises the topology's fence; keeping or renewing one's own lease
// does not (nobody else can have held it in between, since every take
// rewrites drain_owner). The returned row's Fence is the lease's generation.
// The raise commits asynchronously like the rest of the lease: it becomes
// durable with the op's synchronous commit, or with ConfirmDrainLease on the
// recovery path, before any materializer call carries it.
//
// Deviation from the reference design, for latency: the claim writes no
// event and commits asynchronously (asyncCommit: it is visible at once, so
// the row reads `applying` in REST while the op runs; it is merely not
// waited for on disk). `mutation.applying` is written to the outbox by the
// transaction that settles the op instead: CommitMutation, or FailMutation
// for a rejected op, each of which commits at most once per mutation. The
// stream order is unchanged (enqueued, applying, then applied or failed;
// N+1's applying after N's terminal) and `applying` still precedes
// materialisation, but the claim costs no WAL flush and no outbox row, and
// "emitted exactly once" holds by construction: a claim lost in a Postgres
// crash reverts the row to pending without having emitted anything.
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
  SELECT id, fence FROM topologies
   WHERE id = $1 AND status IN `+liveStatuses+`
     AND drain_owner = $2 AND drain_until > now() + $3 / 2 * interval '1 millisecond'
), lease AS (
  UPDATE topologies SET drain_owner = $2, drain_until = now() + $3 * interval '1 millisecond',
         fence = fence + CASE WHEN drain_owner IS NOT DISTINCT FROM $2 THEN 0 ELSE 1 END
    FROM `+asyncCommit+`
   WHERE id = $1 AND status IN `+liveStatuses+` AND NOT EXISTS (SELECT 1 FROM held)
     AND (drain_until IS NULL OR drain_until < now() OR drain_owner = $2)
     AND EXISTS (SELECT 1 FROM mutations WHERE topology_id = $1 AND state IN ('pending', 'applying'))
  RETURNING id, fence
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
SELECT `+mutationColumns+`, committed_at, effects, EXISTS (SELECT 1 FROM upd) AS claimed,
       COALESCE((SELECT fence FROM lease), (SELECT fence FROM held)) AS fence
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
	// After is the committed view. Effects are the materializer calls to
	// make, each with its LAN and decky snapshots (domain.ResolveEffects),
	// as stored.
	After   *domain.Hydrated
	Effects []domain.Effect
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
	// View is the committed view in the form loadView reads it, for the
	// pass's next op (CommitMutationOn); nil means load it again.
	View *domain.Hydrated
}

// CommitMutation runs an applying mutation's op in one transaction (DOMAIN
// §4.4 step 2): load the topology's view, run domain.ApplyOp (its
// preconditions, writes and post-apply checks), persist the difference, and
// stamp the mutation committed_at with its effects, and record
// `mutation.applying` (see ClaimNext). Any error rolls everything back,
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
	return db.CommitMutationOn(ctx, m, newID, nil)
}

// CommitMutationOn is CommitMutation run on view, the topology's view as
// the caller knows it, instead of one loaded in the transaction (nil means
// load it). A drain pass hands each op the View of the previous op's Commit,
// so a run of mutations costs one view load, not one each. That is sound
// only while nothing but the caller can have changed the topology's LANs,
// deckies and edges since view was read: the drain lease guarantees it for
// as long as it is held without a gap (every other writer of a live
// topology's content takes the lease first, see worker/apply.go), and the
// caller must apply to view what it writes itself outside ops (the deckies
// FinishMutation marks running: MarkRunning). A lease lost meanwhile is
// caught by the stamp, as for a loaded view.
func (db *DB) CommitMutationOn(ctx context.Context, m *domain.Mutation, newID func() string, view *domain.Hydrated) (*Commit, error) {
	var c Commit
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		before := view
		if before == nil {
			var err error
			if before, err = loadView(ctx, tx, m.TopologyID); err != nil {
				return err
			}
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
		// The effects are stored with the objects they act on (F6): a
		// recovering worker must not look removed objects up in a view that
		// no longer has them.
		c = Commit{After: res.After, Effects: domain.ResolveEffects(res.Effects, res.After, before)}
		t := res.After.Topology
		c.Materialize = len(c.Effects) > 0 && t.Status.Live() && t.Mode == domain.ModeUnihost
		effects, err := json.Marshal(c.Effects)
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
		c.View = settledView(before, res.After)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// settledView is after (an op's result on before) as loadView would read it
// back once committed: every LAN, decky and edge the op added or changed is
// passed through the JSON form loadView decodes (so a decky's config holds
// the same Go types either way), a new decky's state is what persistDiff
// stored, and the lists are in loadView's order (names and ids compare
// bytewise, as the database's C collation does). Unchanged objects are
// before's, already in that form.
func settledView(before, after *domain.Hydrated) *domain.Hydrated {
	oldDeckies := deckiesByUUID(before.Deckies)
	out := after.Clone()
	for i, d := range out.Deckies {
		if old, ok := oldDeckies[d.UUID]; ok && deckyEqual(old, d) {
			out.Deckies[i] = old
			continue
		}
		d.State = deckyState(d)
		raw, err := json.Marshal(d)
		var back struct {
			domain.Decky
			HomeLANID *string `json:"home_lan_id"`
		}
		if err != nil || json.Unmarshal(raw, &back) != nil {
			return nil // cannot happen for a decky the op built; the next op reloads
		}
		back.Decky.HomeLANID = back.HomeLANID
		if back.Decky.Services == nil {
			back.Decky.Services = []string{}
		}
		if back.Decky.Config == nil {
			back.Decky.Config = map[string]any{}
		}
		out.Deckies[i] = back.Decky
	}
	sort.SliceStable(out.LANs, func(i, j int) bool { return out.LANs[i].Name < out.LANs[j].Name })
	sort.SliceStable(out.Deckies, func(i, j int) bool { return out.Deckies[i].Name < out.Deckies[j].Name })
	sort.SliceStable(out.Edges, func(i, j int) bool { return out.Edges[i].ID < out.Edges[j].ID })
	return out
}

// MarkRunning applies FinishMutation's decky update to a view held across
// a drain pass (CommitMutationOn): the deckies in running are now running.
func MarkRunning(view *domain.Hydrated, running []string) {
	if view == nil || len(running) == 0 {
		return
	}
	for i := range view.Deckies {
		for _, u := range running {
			if view.Deckies[i].UUID == u {
				view.Deckies[i].State = domain.DeckyRunning
			}
		}
	}
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
		// written (see ClaimNext): it goes out here, just before the
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

// ReasonTornDown is the reason of every mutation a teardown finds open
// (CONTRACTS, "Teardown and open mutations").
const ReasonTornDown = "MutationError: the topology was torn down before this mutation was applied"

// endOpenMutations ends, inside tx and in seq order, every open mutation of
// a topology that is leaving (or has left) the live states; the caller holds
// the topology's row lock, so no mutation can be enqueued meanwhile. A
// mutation whose op never committed (pending, or applying with no
// committed_at) is failed with ReasonTornDown and records
// `mutation.applying` + `mutation.failed`, as any failure does. A mutation
// whose op did commit (only materialisation and `applied` were left) is
// marked applied and records `mutation.applied` (its `mutation.applying` was
// recorded by the op's transaction): its change is in the database, which
// is the source of truth, and the teardown removes whatever it materialised.
// Its spawned deckies are not marked running (the teardown is removing
// them). Each row moves only from the state it was read in (the settle
// condition), so a drainer's concurrent step and this one cannot both
// commit; the drainer's later steps find the row terminal and do nothing.
// It returns the events in seq order.
//
// The open rows are locked with NOWAIT. A drain statement that settles a
// mutation locks the mutation row and then the topology row, the reverse of
// this order; waiting for it would deadlock (Postgres would break the cycle
// after a second by aborting one side). Instead a row found locked fails
// this transaction at once with lock_not_available, the caller rolls back
// (releasing the topology row, so the drain statement commits) and runs
// again (inTxRetry), and then sees the row as the drain left it.
func endOpenMutations(ctx context.Context, tx *sqlx.Tx, topologyID string) ([]domain.Event, error) {
	var open []OpenMutation
	err := tx.SelectContext(ctx, &open, `SELECT `+mutationColumns+`, committed_at, effects, 0 AS fence
		FROM mutations WHERE topology_id = $1 AND state IN ('pending', 'applying') ORDER BY seq
		FOR UPDATE NOWAIT`, topologyID)
	if err != nil {
		return nil, fmt.Errorf("postgres: open mutations: %w", err)
	}
	var out []domain.Event
	for i := range open {
		m := &open[i].Mutation
		var evs []domain.Event
		var age *float64
		if open[i].CommittedAt != nil {
			applied, err := domain.NewEvent(m.TopologyID, domain.EventApplied, appliedPayload{MutationID: m.ID, Op: m.Op}, time.Now())
			if err != nil {
				return nil, err
			}
			evs = []domain.Event{applied}
			age, err = settle(ctx, tx, m, `state = 'applied', applied_at = now()`,
				`state = 'applying' AND committed_at IS NOT NULL`, evs)
			if err != nil {
				return nil, err
			}
		} else {
			applying, err := applyingEvent(m)
			if err != nil {
				return nil, err
			}
			failed, err := domain.NewEvent(m.TopologyID, domain.EventFailed,
				failedPayload{MutationID: m.ID, Op: m.Op, Reason: ReasonTornDown}, time.Now())
			if err != nil {
				return nil, err
			}
			evs = []domain.Event{applying, failed}
			age, err = settle(ctx, tx, m, `state = 'failed', applied_at = now(), reason = $6`,
				`state IN ('pending', 'applying') AND committed_at IS NULL`, evs, ReasonTornDown)
			if err != nil {
				return nil, err
			}
		}
		if age == nil {
			// Locked rows cannot change; this is a safety net. Read again.
			return nil, errRetryEnd
		}
		out = append(out, evs...)
	}
	return out, nil
}

// errRetryEnd makes the transaction that ends a topology's open mutations
// start over (see inTxRetry): a row changed between its read and its update.
var errRetryEnd = errors.New("postgres: an open mutation changed while the teardown ended it")

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
