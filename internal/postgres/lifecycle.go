package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
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
// 409 `A topology named 'X' already exists.`.
func (db *DB) CreateBlankTopology(ctx context.Context, in BlankTopology) (*domain.Topology, error) {
	if err := in.check(); err != nil {
		return nil, err
	}
	var t domain.Topology
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		reserved, err := ReservedSubnetsTx(ctx, tx)
		if err != nil {
			return err
		}
		subnet, err := domain.NextSubnet(domain.PendingSubnetBase, reserved)
		if err != nil {
			return err
		}
		ip, err := domain.NextIP(subnet, nil)
		if err != nil {
			return err
		}
		err = tx.GetContext(ctx, &t, `INSERT INTO topologies (id, name, mode, target_host_uuid, config_snapshot)
			VALUES ($1, $2, $3, $4, '{"blank": true}') RETURNING `+topologyColumns,
			newID(), in.Name, in.Mode, in.TargetHostUUID)
		if isUniqueViolation(err) {
			return domain.Errorf(domain.EConflict, "A topology named '%s' already exists.", in.Name)
		} else if bad := unstorableText(err); bad != nil {
			return bad
		} else if err != nil {
			return fmt.Errorf("postgres: create topology: %w", err)
		}
		c := &childTx{ctx: ctx, tx: tx}
		lan := &domain.LAN{ID: newID(), TopologyID: t.ID, Name: blankDMZName, Subnet: subnet, IsDMZ: true,
			X: new(40.0), Y: new(40.0)}
		if err := c.insertLAN(lan); err != nil {
			return err
		}
		gw := &domain.Decky{UUID: newID(), TopologyID: t.ID, Name: blankGatewayName, HomeLANID: &lan.ID,
			Services: []string{"ssh"}, IP: &ip, State: domain.DeckyPending, X: new(20.0), Y: new(60.0),
			Config: map[string]any{"name": blankGatewayName, "archetype": "deaddeck", "forwards_l3": true}}
		gw.SetIP(lan.Name, ip)
		if err := c.insertDecky(gw); err != nil {
			return err
		}
		return c.insertEdge(&domain.Edge{ID: newID(), TopologyID: t.ID, DeckyUUID: gw.UUID, LANID: lan.ID,
			IsBridge: true, ForwardsL3: true})
	})
	if err != nil {
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

// BeginDeploy starts a deploy under the topology's row lock: the topology
// must still be pending (else the 409 of domain.CheckAction) and pass deploy
// validation (else the 422 of DeployIssuesError, with nothing written and the
// topology left pending, DOMAIN §8.3); then it moves pending→deploying. It
// returns the hydrated view as deployed (status deploying) and the status
// event to publish after this call.
func (db *DB) BeginDeploy(ctx context.Context, id string) (*domain.Hydrated, domain.Event, error) {
	return db.begin(ctx, id, domain.ActionDeploy, domain.StatusDeploying, func(h *domain.Hydrated) error {
		return DeployIssuesError(domain.Validate(h, true))
	})
}

// BeginTeardown starts a teardown under the topology's row lock: the status
// must allow it (active, degraded, failed or deploying; else 409) and it
// moves to tearing_down. It returns the hydrated view to tear down and the
// status event to publish.
func (db *DB) BeginTeardown(ctx context.Context, id string) (*domain.Hydrated, domain.Event, error) {
	return db.begin(ctx, id, domain.ActionTeardown, domain.StatusTearingDown, nil)
}

// begin is the shared start of a deploy or teardown: under the row lock,
// check the action against the status, run check (if any) on the view, then
// move to status `to`.
func (db *DB) begin(ctx context.Context, id string, action domain.Action, to domain.Status, check func(*domain.Hydrated) error) (*domain.Hydrated, domain.Event, error) {
	var h *domain.Hydrated
	var ev domain.Event
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		if h, err = LoadHydratedForUpdate(ctx, tx, id); err != nil {
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
		if ev, err = Transition(ctx, tx, id, to, nil); err != nil {
			return err
		}
		h.Topology.Status = to
		return nil
	})
	if err != nil {
		return nil, domain.Event{}, err
	}
	return h, ev, nil
}

// TransitionStatus ends a deploy or teardown: Transition in a transaction of
// its own, plus the deckies' states that follow from the outcome — a
// deployed topology's pending deckies read `running` (the materializer brought
// the whole topology up), a torn-down topology's deckies read `torn_down`. It
// returns the status event to publish after it returns.
func (db *DB) TransitionStatus(ctx context.Context, id string, to domain.Status, reason *string) (domain.Event, error) {
	var ev domain.Event
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		if ev, err = Transition(ctx, tx, id, to, reason); err != nil {
			return err
		}
		var state, from string
		switch to {
		case domain.StatusActive, domain.StatusDegraded:
			state, from = domain.DeckyRunning, domain.DeckyPending
		case domain.StatusTornDown:
			state, from = "torn_down", ""
		default:
			return nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE deckies SET state = $2, updated_at = now()
			WHERE topology_id = $1 AND ($3 = '' OR state = $3)`, id, state, from)
		if err != nil {
			return fmt.Errorf("postgres: decky states after %s: %w", to, err)
		}
		return nil
	})
	return ev, err
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
