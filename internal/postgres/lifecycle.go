package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/decnet/mazenet/internal/domain"
)

// subnetLockKey is the key of the transaction-level advisory lock that
// serialises subnet allocation across every process (ASCII "mazesubn").
// Reservation is "every LAN subnet of every topology not torn_down" (DOMAIN
// §7.1), so two transactions that read the reserved set concurrently would
// both pick the same lowest free /24; holding this lock from the read until
// the LAN insert commits makes read-pick-insert atomic. It is global rather
// than per topology because the reserved set is global.
const subnetLockKey int64 = 0x6d617a6573756276

// ReservedSubnets returns the subnets of every LAN of every topology whose
// status is not torn_down (DOMAIN §7.1), keyed by their exact string. It is a
// snapshot, good for previews (GET /topologies/next-subnet); to allocate, use
// ReservedSubnetsTx inside the transaction that inserts the LAN.
func (db *DB) ReservedSubnets(ctx context.Context) (map[string]bool, error) {
	return reservedSubnets(ctx, db.DB)
}

// ReservedSubnetsTx takes the subnet allocation lock (pg_advisory_xact_lock,
// held until tx ends) and then reads the reserved set. A caller that picks a
// subnet from the result and inserts its LAN in the same tx can therefore
// never collide with a concurrent allocator: the next one blocks until this
// tx commits and then sees the new LAN (each READ COMMITTED statement takes a
// fresh snapshot). Lock order is "topology row lock, then this lock"; nothing
// takes a topology row lock while holding it, so it cannot deadlock.
func ReservedSubnetsTx(ctx context.Context, tx *sqlx.Tx) (map[string]bool, error) {
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, subnetLockKey); err != nil {
		return nil, fmt.Errorf("postgres: subnet lock: %w", err)
	}
	return reservedSubnets(ctx, tx)
}

func reservedSubnets(ctx context.Context, q queryer) (map[string]bool, error) {
	var subnets []string
	err := q.SelectContext(ctx, &subnets,
		`SELECT DISTINCT l.subnet FROM lans l JOIN topologies t ON t.id = l.topology_id WHERE t.status <> $1`,
		domain.StatusTornDown)
	if err != nil {
		return nil, fmt.Errorf("postgres: reserved subnets: %w", err)
	}
	out := make(map[string]bool, len(subnets))
	for _, s := range subnets {
		out[s] = true
	}
	return out, nil
}

// BlankTopology is what POST /topologies/blank asks for.
type BlankTopology struct {
	Name           string
	Mode           domain.Mode // "" = unihost
	TargetHostUUID *string
	// Idempotency, when set, records the request's Idempotency-Key and its
	// response in the creation's transaction (see idempotency.go).
	Idempotency *Idempotent[*domain.Topology]
}

// check enforces DOMAIN §2.1: name 1–64 characters (422), a known mode (422),
// a well-formed host UUID (422) and target_host_uuid present iff mode=agent
// (400, as the original answered a mode/host mismatch).
func (in *BlankTopology) check() error {
	if n := utf8.RuneCountInString(in.Name); n < 1 || n > 64 {
		return bodyFieldError("name", "must be 1–64 characters")
	}
	if in.Mode == "" {
		in.Mode = domain.ModeUnihost
	}
	if in.Mode != domain.ModeUnihost && in.Mode != domain.ModeAgent {
		return bodyFieldError("mode", "must be 'unihost' or 'agent'")
	}
	if in.TargetHostUUID != nil {
		if _, err := uuid.Parse(*in.TargetHostUUID); err != nil || len(*in.TargetHostUUID) != 36 {
			return bodyFieldError("target_host_uuid", "must be a UUID")
		}
	}
	switch {
	case in.Mode == domain.ModeAgent && in.TargetHostUUID == nil:
		return domain.Errorf(domain.EInvalid, "mode 'agent' requires target_host_uuid")
	case in.Mode == domain.ModeUnihost && in.TargetHostUUID != nil:
		return domain.Errorf(domain.EInvalid, "target_host_uuid must be null for mode 'unihost'")
	}
	return nil
}

// fieldError is a 422 naming the offending body field, in the shape
// api/json.go uses for type errors.
func bodyFieldError(field, problem string) *domain.Error {
	return &domain.Error{Code: domain.EUnprocessable, Message: "body." + field + ": " + problem,
		Fields: map[string]any{"field": field}}
}

// Names and coordinates of the blank topology's seed (DOMAIN §16).
const (
	blankDMZName     = "dmz"
	blankGatewayName = "dmz-gateway"
)

// CreateBlankTopology creates a pending topology (version 1) holding LAN
// `dmz` (the lowest free /24 under 10.0.0.0/16) and the gateway decky
// `dmz-gateway` (ssh, deaddeck, forwards_l3, IP .2) joined by one bridge
// edge, all in one transaction (DOMAIN §16). The subnet allocation lock is
// taken first, so concurrent creations get distinct subnets. A taken name is
// 409 `A topology named 'X' already exists.`. With an idempotency key, the
// key is recorded before anything else in the transaction (a concurrent
// retry waits for it) and its response at the end; a key already taken is
// answered as resolveKey says (a *Replay, ErrKeyReused, ErrKeyInFlight).
func (db *DB) CreateBlankTopology(ctx context.Context, in BlankTopology) (*domain.Topology, error) {
	if err := in.check(); err != nil {
		return nil, err
	}
	var t domain.Topology
	var key *IdempotencyKey
	if in.Idempotency != nil {
		key = &in.Idempotency.IdempotencyKey
	}
	err := db.keyed(ctx, key, func() error {
		return db.InTx(ctx, func(tx *sqlx.Tx) error { return createBlank(ctx, tx, in, &t) })
	})
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// createBlank is CreateBlankTopology's transaction.
func createBlank(ctx context.Context, tx *sqlx.Tx, in BlankTopology, out *domain.Topology) error {
	if in.Idempotency != nil {
		if err := insertKeyTx(ctx, tx, in.Idempotency.IdempotencyKey); err != nil {
			return err
		}
	}
	t, err := insertBlank(ctx, tx, in)
	if err != nil {
		return err
	}
	if in.Idempotency != nil {
		resp, err := in.Idempotency.Respond(t)
		if err != nil {
			return err
		}
		if err := respondKeyTx(ctx, tx, in.Idempotency.IdempotencyKey, resp); err != nil {
			return err
		}
	}
	*out = *t
	return nil
}

// insertBlank inserts the blank topology and its seed inside tx.
func insertBlank(ctx context.Context, tx *sqlx.Tx, in BlankTopology) (*domain.Topology, error) {
	reserved, err := ReservedSubnetsTx(ctx, tx)
	if err != nil {
		return nil, err
	}
	subnet, err := domain.NextSubnet(domain.PendingSubnetBase, reserved)
	if err != nil {
		return nil, err
	}
	ip, err := domain.NextIP(subnet, nil)
	if err != nil {
		return nil, err
	}
	var t domain.Topology
	err = tx.GetContext(ctx, &t, `INSERT INTO topologies (id, name, mode, target_host_uuid, config_snapshot)
		VALUES ($1, $2, $3, $4, '{"blank": true}') RETURNING `+topologyColumns,
		newID(), in.Name, in.Mode, in.TargetHostUUID)
	if isUniqueViolation(err) {
		return nil, domain.Errorf(domain.EConflict, "A topology named '%s' already exists.", in.Name)
	} else if bad := unstorableText(err); bad != nil {
		return nil, bad
	} else if err != nil {
		return nil, fmt.Errorf("postgres: create topology: %w", err)
	}
	c := &childTx{ctx: ctx, tx: tx}
	lan := &domain.LAN{ID: newID(), TopologyID: t.ID, Name: blankDMZName, Subnet: subnet, IsDMZ: true,
		X: new(40.0), Y: new(40.0)}
	if err := c.insertLAN(lan); err != nil {
		return nil, err
	}
	gw := &domain.Decky{UUID: newID(), TopologyID: t.ID, Name: blankGatewayName, HomeLANID: &lan.ID,
		Services: []string{"ssh"}, IP: &ip, State: domain.DeckyPending, X: new(20.0), Y: new(60.0),
		Config: map[string]any{"name": blankGatewayName, "archetype": "deaddeck", "forwards_l3": true}}
	gw.SetIP(lan.Name, ip)
	if err := c.insertDecky(gw); err != nil {
		return nil, err
	}
	if err := c.insertEdge(&domain.Edge{ID: newID(), TopologyID: t.ID, DeckyUUID: gw.UUID, LANID: lan.ID,
		IsBridge: true, ForwardsL3: true}); err != nil {
		return nil, err
	}
	return &t, nil
}

// TopologyFilter selects a page of topologies.
type TopologyFilter struct {
	Status domain.Status // "" = any
	Limit  int
	Offset int
}

// ListTopologySummaries returns one page of topologies, newest first, and
// the number of topologies matching the filter.
func (db *DB) ListTopologySummaries(ctx context.Context, f TopologyFilter) ([]domain.Topology, int, error) {
	var total int
	if err := db.GetContext(ctx, &total,
		`SELECT count(*) FROM topologies WHERE $1 = '' OR status = $1`, f.Status); err != nil {
		return nil, 0, fmt.Errorf("postgres: count topologies: %w", err)
	}
	out := []domain.Topology{}
	err := db.SelectContext(ctx, &out, `SELECT `+topologyColumns+` FROM topologies
		WHERE $1 = '' OR status = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3`,
		f.Status, f.Limit, f.Offset)
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: list topologies: %w", err)
	}
	return out, total, nil
}

// DeleteTopology deletes a pending, failed or torn_down topology (else 409);
// its LANs, deckies, edges, mutations, status events and outbox rows go with
// it through ON DELETE CASCADE.
func (db *DB) DeleteTopology(ctx context.Context, id string) error {
	return db.InTx(ctx, func(tx *sqlx.Tx) error {
		t, err := LockTopology(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := domain.CheckAction(domain.ActionDelete, t.Status); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM topologies WHERE id = $1`, id); err != nil {
			return fmt.Errorf("postgres: delete topology: %w", err)
		}
		return nil
	})
}

// DeployIssuesError returns nil when issues hold no error-severity finding,
// and otherwise the 422 that refuses a deploy: the detail lists the distinct
// error codes, sorted, and the extra body key "issues" carries every finding
// (warnings included) so the operator can fix them in one pass.
func DeployIssuesError(issues []domain.Issue) error {
	seen := map[string]bool{}
	var codes []string
	for _, is := range issues {
		if is.Severity == domain.SeverityError && !seen[is.Code] {
			seen[is.Code] = true
			codes = append(codes, is.Code)
		}
	}
	if len(codes) == 0 {
		return nil
	}
	sort.Strings(codes)
	return &domain.Error{Code: domain.EUnprocessable,
		Message: "Topology failed deploy validation: " + strings.Join(codes, ", "),
		Fields:  map[string]any{"issues": issues}}
}

// CheckDeployable is the API's synchronous pre-check for POST /deploy: the
// topology must exist (404) and be pending (409), and its hydrated view must
// pass the deploy-time validation of DOMAIN §8.3 (422 with the issues). It
// writes nothing; the worker re-checks under the row lock (BeginDeploy)
// because the topology may change between the two.
func (db *DB) CheckDeployable(ctx context.Context, id string) (*domain.Topology, error) {
	h, err := db.GetHydrated(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := domain.CheckAction(domain.ActionDeploy, h.Topology.Status); err != nil {
		return nil, err
	}
	if err := DeployIssuesError(domain.Validate(h, true)); err != nil {
		return nil, err
	}
	return &h.Topology, nil
}

// Deploys and teardowns hold the topology's lease (drain_owner, drain_until)
// while they run, the same lease drainers hold: one holder of a topology's
// side effects at a time, whatever its task, and the status says which kind
// of holder it is (live → a drainer; deploying or tearing_down → the
// lifecycle task). Taking it always raises the topology's fence. A teardown
// takes it from whoever holds it (a drainer mid-mutation, a deploy still
// running): the old holder's renewals then fail, its materializer calls are
// refused by fence, and its final writes are fenced on the lease or on the
// mutation row's state. The worker renews the lease while the materializer
// works; the sweep resumes a deploy or teardown whose lease expired
// (ResumeLifecycle), counting attempts in lifecycle_attempts.

// Lifecycle is a deploy or teardown that holds its topology's lease: the
// view to materialise, the lease (owner and generation: every materializer
// call carries Fence), which attempt this is (1 for the task, +1 for each
// sweep resume) and the committed events to publish, in seq order.
type Lifecycle struct {
	View    *domain.Hydrated
	Owner   string
	Fence   int64
	Attempt int
	Events  []domain.Event
}

// ErrLeaseLost means the caller no longer holds the topology's lease, or the
// topology left the status the caller was finishing: a teardown overtook a
// deploy, or the sweep resumed a deploy or teardown it took for abandoned.
// Nothing was written; the caller drops its outcome.
var ErrLeaseLost = errors.New("postgres: the topology's lease is held by someone else")

// BeginDeploy starts a deploy under the topology's row lock: the topology
// must still be pending (else the 409 of domain.CheckAction) and pass deploy
// validation (else the 422 of DeployIssuesError, with nothing written and the
// topology left pending, DOMAIN §8.3); then it moves pending→deploying and
// owner takes the topology's lease for ttl with a new fence, attempt 1. The
// view is returned as deployed (status deploying), with the status event.
func (db *DB) BeginDeploy(ctx context.Context, id, owner string, ttl time.Duration) (*Lifecycle, error) {
	return db.begin(ctx, id, owner, ttl, domain.ActionDeploy, domain.StatusDeploying, func(h *domain.Hydrated) error {
		return DeployIssuesError(domain.Validate(h, true))
	})
}

// BeginTeardown starts a teardown, in one transaction under the topology's
// row lock: the status must allow it (active, degraded, failed or deploying;
// else 409); it moves to tearing_down, owner takes the topology's lease from
// whoever held it (a drainer, a running deploy) with a new fence, and every
// open mutation ends (endOpenMutations: not yet committed → failed with
// ReasonTornDown, committed → applied). Because the queue closes in the same
// commit as the status change, a topology never has open mutations outside
// the live states, and an enqueue after it is refused (409). The events are
// the `status` event, then each mutation's, in seq order.
func (db *DB) BeginTeardown(ctx context.Context, id, owner string, ttl time.Duration) (*Lifecycle, error) {
	return db.begin(ctx, id, owner, ttl, domain.ActionTeardown, domain.StatusTearingDown, nil)
}

// begin is the shared start of a deploy or teardown: under the row lock,
// check the action against the status, run check (if any) on the view, move
// to status `to`, take the lease, and for a teardown end the open
// mutations. It runs again when Postgres aborts it to break a deadlock with
// a drainer's statement (the drain locks a mutation row, then the topology
// row; a teardown the other way round).
func (db *DB) begin(ctx context.Context, id, owner string, ttl time.Duration, action domain.Action, to domain.Status, check func(*domain.Hydrated) error) (*Lifecycle, error) {
	var l *Lifecycle
	err := db.inTxRetry(ctx, func(tx *sqlx.Tx) error {
		h, err := LoadHydratedForUpdate(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := domain.CheckAction(action, h.Topology.Status); err != nil {
			return err
		}
		if check != nil {
			if err := check(h); err != nil {
				return err
			}
		}
		ev, err := Transition(ctx, tx, id, to, nil)
		if err != nil {
			return err
		}
		h.Topology.Status = to
		fence, err := takeLease(ctx, tx, id, owner, ttl, 1)
		if err != nil {
			return err
		}
		l = &Lifecycle{View: h, Owner: owner, Fence: fence, Attempt: 1, Events: []domain.Event{ev}}
		if to == domain.StatusTearingDown {
			evs, err := endOpenMutations(ctx, tx, id)
			if err != nil {
				return err
			}
			l.Events = append(l.Events, evs...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// takeLease gives owner the topology's lease for ttl with the next fence,
// and records which lifecycle attempt holds it; the caller holds the row
// lock. It returns the new fence.
func takeLease(ctx context.Context, tx *sqlx.Tx, id, owner string, ttl time.Duration, attempt int) (int64, error) {
	var fence int64
	err := tx.GetContext(ctx, &fence, `UPDATE topologies
		   SET drain_owner = $2, drain_until = now() + $3 * interval '1 millisecond',
		       fence = fence + 1, lifecycle_attempts = $4
		 WHERE id = $1 RETURNING fence`, id, owner, ttl.Milliseconds(), attempt)
	if err != nil {
		return 0, fmt.Errorf("postgres: take lease: %w", err)
	}
	return fence, nil
}

// FinishLifecycle ends a deploy or teardown that owner holds the lease of:
// under the row lock, if the topology is still in status from and owner
// still holds its lease (possibly expired, as long as nobody took it), it
// moves to `to` (Transition: audit row and `status` event), sets the
// deckies' states that follow (setDeckyStates) and frees the lease, so
// drainers can start at once on a topology that became live. Otherwise it
// writes nothing and returns ErrLeaseLost. It returns the status event to
// publish.
func (db *DB) FinishLifecycle(ctx context.Context, id, owner string, from, to domain.Status, reason *string) (domain.Event, error) {
	if !isUUID(id) {
		return domain.Event{}, domain.ErrTopologyNotFound
	}
	var ev domain.Event
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		var row struct {
			Status domain.Status `db:"status"`
			Owner  *string       `db:"drain_owner"`
		}
		err := tx.GetContext(ctx, &row, `SELECT status, drain_owner FROM topologies WHERE id = $1 FOR UPDATE`, id)
		if errors.Is(err, sql.ErrNoRows) {
			return domain.ErrTopologyNotFound
		} else if err != nil {
			return fmt.Errorf("postgres: finish lifecycle: %w", err)
		}
		if row.Status != from || row.Owner == nil || *row.Owner != owner {
			return ErrLeaseLost
		}
		if ev, err = Transition(ctx, tx, id, to, reason); err != nil {
			return err
		}
		if err := setDeckyStates(ctx, tx, id, to); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE topologies SET drain_owner = NULL, drain_until = NULL WHERE id = $1`, id); err != nil {
			return fmt.Errorf("postgres: release lifecycle lease: %w", err)
		}
		return nil
	})
	return ev, err
}

// StrandedLifecycles returns up to limit topologies that are deploying or
// tearing_down with their lease free or expired: their worker died (or was
// paused past the lease), and the sweep resumes them.
func (db *DB) StrandedLifecycles(ctx context.Context, limit int) ([]string, error) {
	out := []string{}
	err := db.SelectContext(ctx, &out, `
SELECT id FROM topologies
 WHERE status IN ('deploying', 'tearing_down') AND (drain_until IS NULL OR drain_until < now())
 LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: stranded lifecycles: %w", err)
	}
	return out, nil
}

// ResumeLifecycle takes over an abandoned deploy or teardown: under the row
// lock, if the topology is still deploying or tearing_down and its lease is
// free or expired, owner takes the lease for ttl with a new fence and the
// attempt count goes up by one (durably, so a deploy that kills its worker
// every time is given up on, not retried forever; the caller decides when).
// For a teardown it also ends any mutation still open (endOpenMutations; a
// teardown begun by an older version may have left some). nil means there is
// nothing to resume (finished or gone meanwhile, or its lease is live).
func (db *DB) ResumeLifecycle(ctx context.Context, id, owner string, ttl time.Duration) (*Lifecycle, error) {
	var l *Lifecycle
	err := db.inTxRetry(ctx, func(tx *sqlx.Tx) error {
		l = nil
		h, err := LoadHydratedForUpdate(ctx, tx, id)
		if domain.ErrorCode(err) == domain.ENotFound {
			return nil
		} else if err != nil {
			return err
		}
		if s := h.Topology.Status; s != domain.StatusDeploying && s != domain.StatusTearingDown {
			return nil
		}
		var lease struct {
			Free     bool `db:"free"`
			Attempts int  `db:"lifecycle_attempts"`
		}
		if err := tx.GetContext(ctx, &lease, `SELECT drain_until IS NULL OR drain_until < now() AS free, lifecycle_attempts
			FROM topologies WHERE id = $1`, id); err != nil {
			return fmt.Errorf("postgres: resume lifecycle: %w", err)
		}
		if !lease.Free {
			return nil
		}
		fence, err := takeLease(ctx, tx, id, owner, ttl, lease.Attempts+1)
		if err != nil {
			return err
		}
		l = &Lifecycle{View: h, Owner: owner, Fence: fence, Attempt: lease.Attempts + 1}
		if h.Topology.Status == domain.StatusTearingDown {
			if l.Events, err = endOpenMutations(ctx, tx, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// EndOrphanedMutations ends the open mutations of up to limit topologies
// outside the live states (endOpenMutations, one transaction each) and
// returns the events to publish. BeginTeardown closes the queue in the same
// commit as the status change, so only rows left by an older version (a
// worker killed mid-apply, then a teardown) can be found here; without this
// they would read pending or applying forever, since no drain claims work of
// a topology that is not live.
func (db *DB) EndOrphanedMutations(ctx context.Context, limit int) ([]domain.Event, error) {
	var ids []string
	// Driven by the open rows (the partial index mutations_open holds only
	// those), not by a scan of every topology.
	err := db.SelectContext(ctx, &ids, `
SELECT DISTINCT m.topology_id FROM mutations m JOIN topologies t ON t.id = m.topology_id
 WHERE m.state IN ('pending', 'applying') AND t.status NOT IN `+liveStatuses+`
 LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: orphaned mutations: %w", err)
	}
	var out []domain.Event
	for _, id := range ids {
		var evs []domain.Event
		err := db.inTxRetry(ctx, func(tx *sqlx.Tx) error {
			evs = nil
			t, err := LockTopology(ctx, tx, id)
			if err != nil || t.Status.Live() {
				return err
			}
			evs, err = endOpenMutations(ctx, tx, id)
			return err
		})
		if err != nil {
			return out, err
		}
		out = append(out, evs...)
	}
	return out, nil
}

// TransitionStatus moves a topology to status `to` outside any lease:
// Transition in a transaction of its own, plus the deckies' states that
// follow from the outcome (setDeckyStates). The worker ends deploys and
// teardowns with FinishLifecycle, which is fenced on the lease; this is for
// tests and tools that need a status directly. It returns the status event
// to publish after it returns.
func (db *DB) TransitionStatus(ctx context.Context, id string, to domain.Status, reason *string) (domain.Event, error) {
	var ev domain.Event
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		if ev, err = Transition(ctx, tx, id, to, reason); err != nil {
			return err
		}
		return setDeckyStates(ctx, tx, id, to)
	})
	return ev, err
}

// setDeckyStates sets the deckies' states that follow from a deploy or
// teardown outcome: a deployed topology's pending deckies read `running`
// (the materializer brought the whole topology up), a torn-down topology's
// deckies read `torn_down`; other statuses change nothing.
func setDeckyStates(ctx context.Context, tx *sqlx.Tx, id string, to domain.Status) error {
	var state, from string
	switch to {
	case domain.StatusActive, domain.StatusDegraded:
		state, from = domain.DeckyRunning, domain.DeckyPending
	case domain.StatusTornDown:
		state, from = "torn_down", ""
	default:
		return nil
	}
	_, err := tx.ExecContext(ctx, `UPDATE deckies SET state = $2, updated_at = now()
		WHERE topology_id = $1 AND ($3 = '' OR state = $3)`, id, state, from)
	if err != nil {
		return fmt.Errorf("postgres: decky states after %s: %w", to, err)
	}
	return nil
}

// unstorableText maps the errors Postgres raises for text it cannot store
// (a NUL character in a text column or a jsonb document) to a 422, so such
// input is refused rather than answered with a 500. It returns nil for any
// other error.
func unstorableText(err error) error {
	switch pgCode(err) {
	case "22021", "22P05": // character_not_in_repertoire, untranslatable_character
		return domain.Errorf(domain.EUnprocessable, "Text values cannot contain NUL characters")
	}
	return nil
}

// marshalDecky encodes a decky's jsonb columns. A nil services list is
// stored as [] (the column must hold an array).
func marshalDecky(d *domain.Decky) (services, config []byte, err error) {
	svc := d.Services
	if svc == nil {
		svc = []string{}
	}
	cfg := d.Config
	if cfg == nil {
		cfg = map[string]any{}
	}
	if services, err = json.Marshal(svc); err != nil {
		return nil, nil, fmt.Errorf("postgres: decky services: %w", err)
	}
	if config, err = json.Marshal(cfg); err != nil {
		return nil, nil, fmt.Errorf("postgres: decky config: %w", err)
	}
	return services, config, nil
}
