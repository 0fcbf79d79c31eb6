package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/decnet/mazenet/internal/domain"
)

// topologyColumns is the column list every topology read selects.
const topologyColumns = `id, name, mode, target_host_uuid, status, status_changed_at, created_at, version, config_snapshot`

// GetTopology returns one topology summary, or a 404 domain error.
func (db *DB) GetTopology(ctx context.Context, id string) (*domain.Topology, error) {
	return getTopology(ctx, db.DB, id, false)
}

// queryer is what both *sqlx.DB and *sqlx.Tx provide.
type queryer interface {
	sqlx.QueryerContext
	sqlx.ExecerContext
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
}

// getTopology reads a topology through q, optionally taking its row lock
// (forUpdate requires q to be a transaction). An id that is not a UUID is
// simply not found.
func getTopology(ctx context.Context, q queryer, id string, forUpdate bool) (*domain.Topology, error) {
	if !isUUID(id) {
		return nil, domain.ErrTopologyNotFound
	}
	query := `SELECT ` + topologyColumns + ` FROM topologies WHERE id = $1`
	if forUpdate {
		query += ` FOR UPDATE`
	}
	var t domain.Topology
	if err := q.GetContext(ctx, &t, query, id); errors.Is(err, sql.ErrNoRows) {
		return nil, domain.ErrTopologyNotFound
	} else if err != nil {
		return nil, fmt.Errorf("postgres: get topology: %w", err)
	}
	return &t, nil
}

// LockTopology takes the topology's row lock inside tx and returns it.
func LockTopology(ctx context.Context, tx *sqlx.Tx, id string) (*domain.Topology, error) {
	return getTopology(ctx, tx, id, true)
}

// Transition moves a topology to status `to` inside tx: it checks the status
// machine (DOMAIN §3), stamps status_changed_at, appends the audit row and
// appends the `status` event to the outbox (D9). It is the only function that
// changes a topology's status. The returned event is published after commit.
func Transition(ctx context.Context, tx *sqlx.Tx, id string, to domain.Status, reason *string) (domain.Event, error) {
	t, err := LockTopology(ctx, tx, id)
	if err != nil {
		return domain.Event{}, err
	}
	if err := domain.CheckTransition(t.Status, to); err != nil {
		return domain.Event{}, err
	}
	if _, err := tx.ExecContext(ctx,
		`UPDATE topologies SET status = $2, status_changed_at = now() WHERE id = $1`, id, to); err != nil {
		return domain.Event{}, fmt.Errorf("postgres: transition: %w", err)
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO status_events (topology_id, from_status, to_status, reason) VALUES ($1, $2, $3, $4)`,
		id, t.Status, to, reason); err != nil {
		return domain.Event{}, fmt.Errorf("postgres: transition audit: %w", err)
	}
	ev, err := domain.NewEvent(id, domain.EventStatus, domain.StatusPayload{State: to, From: t.Status, Reason: reason}, time.Now())
	if err != nil {
		return domain.Event{}, err
	}
	return InsertEvent(ctx, tx, ev)
}

// ListStatusEvents returns a topology's audit rows, newest first.
func (db *DB) ListStatusEvents(ctx context.Context, id string, limit int) ([]domain.StatusEvent, error) {
	if _, err := db.GetTopology(ctx, id); err != nil {
		return nil, err
	}
	out := []domain.StatusEvent{}
	err := db.SelectContext(ctx, &out,
		`SELECT id, topology_id, from_status, to_status, at, reason FROM status_events
		 WHERE topology_id = $1 ORDER BY id DESC LIMIT $2`, id, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: list status events: %w", err)
	}
	return out, nil
}

// deckyRow is a decky as stored: services and config as JSON text.
type deckyRow struct {
	domain.Decky
	ServicesJSON []byte `db:"services"`
	ConfigJSON   []byte `db:"decky_config"`
}

const deckyColumns = `uuid, topology_id, name, home_lan_id, services, decky_config, ip, state, last_error, updated_at, x, y`

func (r deckyRow) decode() (domain.Decky, error) {
	d := r.Decky
	d.Services = []string{}
	d.Config = map[string]any{}
	if err := json.Unmarshal(r.ServicesJSON, &d.Services); err != nil {
		return d, fmt.Errorf("postgres: decky %s services: %w", d.UUID, err)
	}
	if err := json.Unmarshal(r.ConfigJSON, &d.Config); err != nil {
		return d, fmt.Errorf("postgres: decky %s config: %w", d.UUID, err)
	}
	return d, nil
}

// GetHydrated returns the full view of a topology (DOMAIN §2.8).
func (db *DB) GetHydrated(ctx context.Context, id string) (*domain.Hydrated, error) {
	return loadHydrated(ctx, db.DB, id, false)
}

// LoadHydratedForUpdate locks the topology row inside tx and returns its full
// view; every op and deploy validation runs on this.
func LoadHydratedForUpdate(ctx context.Context, tx *sqlx.Tx, id string) (*domain.Hydrated, error) {
	return loadHydrated(ctx, tx, id, true)
}

func loadHydrated(ctx context.Context, q queryer, id string, forUpdate bool) (*domain.Hydrated, error) {
	t, err := getTopology(ctx, q, id, forUpdate)
	if err != nil {
		return nil, err
	}
	h := &domain.Hydrated{Topology: *t, LANs: []domain.LAN{}, Deckies: []domain.Decky{}, Edges: []domain.Edge{}}
	if err := q.SelectContext(ctx, &h.LANs,
		`SELECT id, topology_id, name, subnet, is_dmz, docker_network_id, x, y FROM lans WHERE topology_id = $1 ORDER BY name`, id); err != nil {
		return nil, fmt.Errorf("postgres: load lans: %w", err)
	}
	var rows []deckyRow
	if err := q.SelectContext(ctx, &rows,
		`SELECT `+deckyColumns+` FROM deckies WHERE topology_id = $1 ORDER BY name`, id); err != nil {
		return nil, fmt.Errorf("postgres: load deckies: %w", err)
	}
	for _, r := range rows {
		d, err := r.decode()
		if err != nil {
			return nil, err
		}
		h.Deckies = append(h.Deckies, d)
	}
	if err := q.SelectContext(ctx, &h.Edges,
		`SELECT id, topology_id, decky_uuid, lan_id, is_bridge, forwards_l3 FROM edges WHERE topology_id = $1 ORDER BY id`, id); err != nil {
		return nil, fmt.Errorf("postgres: load edges: %w", err)
	}
	return h, nil
}
