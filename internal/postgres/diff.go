package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"

	"github.com/jmoiron/sqlx"

	"github.com/decnet/mazenet/internal/domain"
)

// persistDiff writes inside tx whatever differs between before (the view
// loaded in the op's transaction; the drain lease, not a row lock, makes
// its worker the only writer: see CommitMutation) and after (an op's
// result): LANs and edges
// by id, deckies by uuid. Statements are ordered so every foreign key and
// unique constraint holds at each step: deletes first (edges, deckies, then
// LANs, since a decky's home_lan_id points at its LAN), then updates (LANs
// before deckies), then inserts (LANs, deckies, edges). Ops touch a handful
// of rows, so one statement per changed row is cheap and keeps the SQL
// plain. Decky services and decky_config are written as jsonb; home_lan_id
// is kept as the op set it.
func persistDiff(ctx context.Context, tx *sqlx.Tx, before, after *domain.Hydrated) error {
	tid := after.Topology.ID
	oldLANs, newLANs := lansByID(before.LANs), lansByID(after.LANs)
	oldDeckies, newDeckies := deckiesByUUID(before.Deckies), deckiesByUUID(after.Deckies)
	oldEdges, newEdges := edgesByID(before.Edges), edgesByID(after.Edges)

	exec := func(what, q string, args ...any) error {
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("postgres: %s: %w", what, err)
		}
		return nil
	}

	for _, e := range before.Edges {
		if _, ok := newEdges[e.ID]; !ok {
			if err := exec("delete edge", `DELETE FROM edges WHERE id = $1 AND topology_id = $2`, e.ID, tid); err != nil {
				return err
			}
		}
	}
	for _, d := range before.Deckies {
		if _, ok := newDeckies[d.UUID]; !ok {
			if err := exec("delete decky", `DELETE FROM deckies WHERE uuid = $1 AND topology_id = $2`, d.UUID, tid); err != nil {
				return err
			}
		}
	}
	for _, l := range before.LANs {
		if _, ok := newLANs[l.ID]; !ok {
			if err := exec("delete lan", `DELETE FROM lans WHERE id = $1 AND topology_id = $2`, l.ID, tid); err != nil {
				return err
			}
		}
	}

	for _, l := range after.LANs {
		if old, ok := oldLANs[l.ID]; ok && !reflect.DeepEqual(old, l) {
			if err := exec("update lan", `UPDATE lans SET name = $3, subnet = $4, is_dmz = $5, docker_network_id = $6, x = $7, y = $8
				 WHERE id = $1 AND topology_id = $2`,
				l.ID, tid, l.Name, l.Subnet, l.IsDMZ, l.DockerNetworkID, l.X, l.Y); err != nil {
				return err
			}
		}
	}
	for _, d := range after.Deckies {
		old, ok := oldDeckies[d.UUID]
		if !ok || deckyEqual(old, d) {
			continue
		}
		services, config, err := deckyJSON(d)
		if err != nil {
			return err
		}
		if err := exec("update decky", `UPDATE deckies SET name = $3, home_lan_id = $4, services = $5::jsonb, decky_config = $6::jsonb,
			   ip = $7, state = $8, last_error = $9, x = $10, y = $11, updated_at = now()
			 WHERE uuid = $1 AND topology_id = $2`,
			d.UUID, tid, d.Name, d.HomeLANID, services, config, d.IP, deckyState(d), d.LastError, d.X, d.Y); err != nil {
			return err
		}
	}
	for _, e := range after.Edges {
		if old, ok := oldEdges[e.ID]; ok && old != e {
			if err := exec("update edge", `UPDATE edges SET is_bridge = $3, forwards_l3 = $4 WHERE id = $1 AND topology_id = $2`,
				e.ID, tid, e.IsBridge, e.ForwardsL3); err != nil {
				return err
			}
		}
	}

	for _, l := range after.LANs {
		if _, ok := oldLANs[l.ID]; !ok {
			if err := exec("insert lan", `INSERT INTO lans (id, topology_id, name, subnet, is_dmz, docker_network_id, x, y)
				 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				l.ID, tid, l.Name, l.Subnet, l.IsDMZ, l.DockerNetworkID, l.X, l.Y); err != nil {
				return err
			}
		}
	}
	for _, d := range after.Deckies {
		if _, ok := oldDeckies[d.UUID]; ok {
			continue
		}
		services, config, err := deckyJSON(d)
		if err != nil {
			return err
		}
		if err := exec("insert decky", `INSERT INTO deckies (uuid, topology_id, name, home_lan_id, services, decky_config, ip, state, last_error, x, y)
			 VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8, $9, $10, $11)`,
			d.UUID, tid, d.Name, d.HomeLANID, services, config, d.IP, deckyState(d), d.LastError, d.X, d.Y); err != nil {
			return err
		}
	}
	for _, e := range after.Edges {
		if _, ok := oldEdges[e.ID]; !ok {
			if err := exec("insert edge", `INSERT INTO edges (id, topology_id, decky_uuid, lan_id, is_bridge, forwards_l3)
				 VALUES ($1, $2, $3, $4, $5, $6)`, e.ID, tid, e.DeckyUUID, e.LANID, e.IsBridge, e.ForwardsL3); err != nil {
				return err
			}
		}
	}
	return nil
}

func lansByID(ls []domain.LAN) map[string]domain.LAN {
	m := make(map[string]domain.LAN, len(ls))
	for _, l := range ls {
		m[l.ID] = l
	}
	return m
}

func deckiesByUUID(ds []domain.Decky) map[string]domain.Decky {
	m := make(map[string]domain.Decky, len(ds))
	for _, d := range ds {
		m[d.UUID] = d
	}
	return m
}

func edgesByID(es []domain.Edge) map[string]domain.Edge {
	m := make(map[string]domain.Edge, len(es))
	for _, e := range es {
		m[e.ID] = e
	}
	return m
}

// deckyEqual compares the persisted fields of two versions of a decky.
// updated_at is the store's, not the op's, so it is ignored. Services and
// config compare as stored: a nil list or map equals an empty one (both are
// written as [] and {}).
//
// It runs on every decky of the topology twice per mutation (persistDiff and
// settledView), so it is written out field by field: reflect.DeepEqual here
// was 38 % of the worker's CPU at 1,000 deckies (docs/BENCHMARKS.md).
func deckyEqual(a, b domain.Decky) bool {
	return a.UUID == b.UUID && a.TopologyID == b.TopologyID && a.Name == b.Name &&
		a.State == b.State && ptrEqual(a.HomeLANID, b.HomeLANID) && ptrEqual(a.IP, b.IP) &&
		ptrEqual(a.LastError, b.LastError) && ptrEqual(a.X, b.X) && ptrEqual(a.Y, b.Y) &&
		slices.Equal(a.Services, b.Services) && jsonEqual(a.Config, b.Config)
}

// ptrEqual reports whether two optional values are both absent or equal.
func ptrEqual[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// jsonEqual compares two values decoded from JSON (maps, lists, strings,
// numbers, booleans, nil) without reflection; anything else falls back to
// reflect.DeepEqual.
func jsonEqual(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, av := range a {
			bv, ok := b[k]
			if !ok || !jsonEqual(av, bv) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !jsonEqual(a[i], b[i]) {
				return false
			}
		}
		return true
	case string:
		b, ok := b.(string)
		return ok && a == b
	case float64:
		b, ok := b.(float64)
		return ok && a == b
	case bool:
		b, ok := b.(bool)
		return ok && a == b
	case nil:
		return b == nil
	}
	return reflect.DeepEqual(a, b)
}

// deckyJSON encodes a decky's jsonb columns; nil services and config are
// stored as [] and {} (the columns' CHECKs require an array and an object).
func deckyJSON(d domain.Decky) (services, config string, err error) {
	s := d.Services
	if s == nil {
		s = []string{}
	}
	c := d.Config
	if c == nil {
		c = map[string]any{}
	}
	sb, err := json.Marshal(s)
	if err != nil {
		return "", "", fmt.Errorf("postgres: decky %s services: %w", d.Name, err)
	}
	cb, err := json.Marshal(c)
	if err != nil {
		return "", "", fmt.Errorf("postgres: decky %s config: %w", d.Name, err)
	}
	return string(sb), string(cb), nil
}

// deckyState defaults an unset state to pending.
func deckyState(d domain.Decky) string {
	if d.State == "" {
		return domain.DeckyPending
	}
	return d.State
}
