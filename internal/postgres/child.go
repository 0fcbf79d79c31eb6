package postgres

import (
	"context"
	"fmt"
	"reflect"

	"github.com/jmoiron/sqlx"

	"github.com/decnet/mazenet/internal/domain"
)

// Pending-only child CRUD (DOMAIN §3, §16): direct edits of a pending
// topology's LANs, deckies and edges, addressed by id. Every method
//
//   - locks the topology row and loads its hydrated view (so edits of one
//     topology are serialised and checks see committed state),
//   - refuses unless the topology is pending (409, domain.ActionEditPending),
//   - when given an expected version, runs the check-and-bump of DOMAIN §5 in
//     the same transaction (`UPDATE … WHERE version = $2`; 0 rows → 409
//     VersionConflict and nothing written); with none, neither checks nor bumps,
//   - returns the topology's version after the write.
//
// Decisions (documented here because the spec leaves them open):
//
//   - Unknown ids in the URL are 404; ids or names in the body that name
//     nothing in the topology are 422 (the URL's resource exists, the body is
//     wrong). Name clashes are 409 with the op texts (`LAN 'x' already
//     exists`, `decky 'x' already exists`).
//   - Writes are not validated beyond that: like the original, a pending
//     topology may pass through invalid shapes while it is edited, and the
//     deploy-time validation (DOMAIN §8.3) is the gate. Pinned IPs and
//     explicit subnets are stored verbatim (DOMAIN §2.2, §7.2).
//   - Auto subnets come from 10.0.0.0/16 under the allocation lock
//     (ReservedSubnetsTx); auto IPs are the lowest free host of the LAN,
//     where taken = every ips_by_lan entry for that LAN (DOMAIN §7.2).
//   - decky_config.name and decky_config.ips_by_lan are owned by the server
//     (D7, D10): a body may echo them back unchanged but never change them;
//     rename a decky with the top-level `name`, move addresses with edges.
//   - Renaming a LAN here also renames its key in every member's
//     ips_by_lan. The live update_lan op deliberately does not cascade
//     (DOMAIN §6.9); an editor addressing LANs by id would otherwise break
//     every member with IP_UNKNOWN_LAN, which is never what the operator meant.

// Coord is an optional coordinate in a PATCH: Set=false leaves the value
// alone; Set with a nil Value clears it.
type Coord struct {
	Set   bool
	Value *float64
}

func (c Coord) applyTo(dst **float64) {
	if c.Set {
		*dst = c.Value
	}
}

// LANInput is a new LAN of a pending topology.
type LANInput struct {
	Name   string
	Subnet string // "" = the lowest free /24 under 10.0.0.0/16
	IsDMZ  bool
	X, Y   *float64
}

// LANPatch changes a LAN of a pending topology; nil fields are left alone.
type LANPatch struct {
	Name   *string
	Subnet *string
	IsDMZ  *bool
	X, Y   Coord
}

// DeckyInput is a new decky of a pending topology.
type DeckyInput struct {
	Name string
	// LAN is the home LAN, by id or by name.
	LAN      string
	Services []string
	// Config holds extra decky_config keys, stored as given.
	Config     map[string]any
	IP         string // "" = auto
	ForwardsL3 bool
	Archetype  string // "" = none; stored verbatim, not validated
	X, Y       *float64
}

// DeckyPatch changes a decky of a pending topology; nil fields are left
// alone. Config is shallow-merged into decky_config.
type DeckyPatch struct {
	Name     *string
	Services *[]string
	Config   map[string]any
	X, Y     Coord
}

// EdgeInput attaches a decky to one more LAN of a pending topology.
type EdgeInput struct {
	DeckyUUID  string
	LANID      string // the LAN's id (or name)
	IP         string // "" = auto
	IsBridge   *bool  // nil = true
	ForwardsL3 bool
}

// CreateLAN adds a LAN to a pending topology.
func (db *DB) CreateLAN(ctx context.Context, tid string, expected *int, in LANInput) (*domain.LAN, int, error) {
	if in.Name == "" {
		return nil, 0, bodyFieldError("name", "must be a non-empty string")
	}
	var lan *domain.LAN
	version, err := db.editPending(ctx, tid, expected, func(c *childTx) error {
		if c.lanByName(in.Name) != nil {
			return domain.Errorf(domain.EConflict, "LAN '%s' already exists", in.Name)
		}
		subnet := in.Subnet
		if subnet == "" {
			reserved, err := ReservedSubnetsTx(c.ctx, c.tx)
			if err != nil {
				return err
			}
			if subnet, err = domain.NextSubnet(domain.PendingSubnetBase, reserved); err != nil {
				return err
			}
		}
		lan = &domain.LAN{ID: newID(), TopologyID: tid, Name: in.Name, Subnet: subnet, IsDMZ: in.IsDMZ, X: in.X, Y: in.Y}
		return c.insertLAN(lan)
	})
	if err != nil {
		return nil, 0, err
	}
	return lan, version, nil
}

// UpdateLAN changes a LAN of a pending topology. A rename cascades into the
// members' ips_by_lan (see the package notes above).
func (db *DB) UpdateLAN(ctx context.Context, tid, lanID string, expected *int, p LANPatch) (*domain.LAN, int, error) {
	if p.Name != nil && *p.Name == "" {
		return nil, 0, bodyFieldError("name", "must be a non-empty string")
	}
	if p.Subnet != nil && *p.Subnet == "" {
		return nil, 0, bodyFieldError("subnet", "must be a non-empty string")
	}
	var out domain.LAN
	version, err := db.editPending(ctx, tid, expected, func(c *childTx) error {
		lan := c.lan(lanID)
		if lan == nil {
			return domain.Errorf(domain.ENotFound, "LAN not found")
		}
		if p.Name != nil && *p.Name != lan.Name {
			if c.lanByName(*p.Name) != nil {
				return domain.Errorf(domain.EConflict, "LAN '%s' already exists", *p.Name)
			}
			for i := range c.h.Deckies {
				d := &c.h.Deckies[i]
				ip, ok := d.IPsByLAN()[lan.Name]
				if !ok {
					continue
				}
				d.DeleteIP(lan.Name)
				d.SetIP(*p.Name, ip)
				if err := c.saveDecky(d); err != nil {
					return err
				}
			}
			lan.Name = *p.Name
		}
		if p.Subnet != nil {
			lan.Subnet = *p.Subnet
		}
		if p.IsDMZ != nil {
			lan.IsDMZ = *p.IsDMZ
		}
		p.X.applyTo(&lan.X)
		p.Y.applyTo(&lan.Y)
		out = *lan
		return c.exec("update lan",
			`UPDATE lans SET name = $2, subnet = $3, is_dmz = $4, x = $5, y = $6 WHERE id = $1`,
			lan.ID, lan.Name, lan.Subnet, lan.IsDMZ, lan.X, lan.Y)
	})
	if err != nil {
		return nil, 0, err
	}
	return &out, version, nil
}

// DeleteLAN removes a LAN of a pending topology. A LAN that is some decky's
// home is refused with the text of DOMAIN §6.3; bridge members lose their
// ips_by_lan entry and their edge (the edge through ON DELETE CASCADE).
func (db *DB) DeleteLAN(ctx context.Context, tid, lanID string, expected *int) (int, error) {
	return db.editPending(ctx, tid, expected, func(c *childTx) error {
		lan := c.lan(lanID)
		if lan == nil {
			return domain.Errorf(domain.ENotFound, "LAN not found")
		}
		for _, d := range c.h.Deckies { // sorted by name: the first home wins
			if d.HomeLANID != nil && *d.HomeLANID == lan.ID {
				return domain.Errorf(domain.EConflict,
					"LAN '%s' is the home LAN of decky '%s'; remove the decky first", lan.Name, d.Name)
			}
		}
		for i := range c.h.Deckies {
			d := &c.h.Deckies[i]
			if _, ok := d.IPsByLAN()[lan.Name]; ok {
				d.DeleteIP(lan.Name)
				if err := c.saveDecky(d); err != nil {
					return err
				}
			}
		}
		return c.exec("delete lan", `DELETE FROM lans WHERE id = $1`, lan.ID)
	})
}

// CreateDecky adds a decky to a pending topology with its home edge
// (is_bridge=false). decky_config gets name, ips_by_lan {home: ip},
// archetype when given and forwards_l3=true when requested (DOMAIN §6.4).
func (db *DB) CreateDecky(ctx context.Context, tid string, expected *int, in DeckyInput) (*domain.Decky, int, error) {
	if in.Name == "" {
		return nil, 0, bodyFieldError("name", "must be a non-empty string")
	}
	if in.LAN == "" {
		return nil, 0, bodyFieldError("lan", "required: the home LAN's id or name")
	}
	forwards := in.ForwardsL3
	if v, ok := in.Config["forwards_l3"]; ok && v != nil {
		b, isBool := v.(bool)
		if !isBool {
			return nil, 0, bodyFieldError("decky_config.forwards_l3", "must be a boolean")
		}
		forwards = forwards || b
	}
	var out domain.Decky
	version, err := db.editPending(ctx, tid, expected, func(c *childTx) error {
		if c.deckyByName(in.Name) != nil {
			return domain.Errorf(domain.EConflict, "decky '%s' already exists", in.Name)
		}
		lan := c.resolveLAN(in.LAN)
		if lan == nil {
			return domain.Errorf(domain.EUnprocessable, "LAN '%s' not found", in.LAN)
		}
		ip, err := c.allocIP(lan, in.IP)
		if err != nil {
			return err
		}
		ips := map[string]any{lan.Name: ip}
		if err := checkManagedKeys(in.Config, in.Name, ips); err != nil {
			return err
		}
		cfg := make(map[string]any, len(in.Config)+4)
		for k, v := range in.Config {
			cfg[k] = v
		}
		cfg["name"], cfg["ips_by_lan"] = in.Name, ips
		if in.Archetype != "" {
			cfg["archetype"] = in.Archetype
		}
		if forwards {
			cfg["forwards_l3"] = true
		}
		services := append([]string{}, in.Services...)
		d := &domain.Decky{UUID: newID(), TopologyID: tid, Name: in.Name, HomeLANID: &lan.ID, Services: services,
			Config: cfg, IP: &ip, State: domain.DeckyPending, X: in.X, Y: in.Y}
		if err := c.insertDecky(d); err != nil {
			return err
		}
		out = *d
		return c.insertEdge(&domain.Edge{ID: newID(), TopologyID: tid, DeckyUUID: d.UUID, LANID: lan.ID,
			IsBridge: false, ForwardsL3: forwards})
	})
	if err != nil {
		return nil, 0, err
	}
	return &out, version, nil
}

// checkManagedKeys enforces that a decky_config from a body does not change
// the keys the server owns: name and ips_by_lan may only be echoed back.
func checkManagedKeys(cfg map[string]any, name string, ips map[string]any) error {
	if v, ok := cfg["name"]; ok && v != name {
		return bodyFieldError("decky_config.name", "is the decky's name; rename with the top-level 'name' field")
	}
	if v, ok := cfg["ips_by_lan"]; ok && !reflect.DeepEqual(v, ips) {
		return bodyFieldError("decky_config.ips_by_lan", "is managed by the server; add or remove edges to change it")
	}
	return nil
}

// UpdateDecky changes a decky of a pending topology: a rename (also written
// to decky_config.name), a new services list, a shallow merge into
// decky_config and coordinates. Edges are left as they are.
func (db *DB) UpdateDecky(ctx context.Context, tid, deckyUUID string, expected *int, p DeckyPatch) (*domain.Decky, int, error) {
	if p.Name != nil && *p.Name == "" {
		return nil, 0, bodyFieldError("name", "must be a non-empty string")
	}
	if v, ok := p.Config["forwards_l3"]; ok && v != nil {
		if _, isBool := v.(bool); !isBool {
			return nil, 0, bodyFieldError("decky_config.forwards_l3", "must be a boolean")
		}
	}
	var out domain.Decky
	version, err := db.editPending(ctx, tid, expected, func(c *childTx) error {
		d := c.decky(deckyUUID)
		if d == nil {
			return domain.Errorf(domain.ENotFound, "Decky not found")
		}
		if p.Name != nil && *p.Name != d.Name {
			if c.deckyByName(*p.Name) != nil {
				return domain.Errorf(domain.EConflict, "decky '%s' already exists", *p.Name)
			}
			d.Name = *p.Name
		}
		ips, _ := d.Config["ips_by_lan"].(map[string]any)
		if ips == nil {
			ips = map[string]any{}
		}
		if err := checkManagedKeys(p.Config, d.Name, ips); err != nil {
			return err
		}
		for k, v := range p.Config {
			if k != "name" && k != "ips_by_lan" {
				d.Config[k] = v
			}
		}
		d.Config["name"] = d.Name
		if p.Services != nil {
			d.Services = append([]string{}, (*p.Services)...)
		}
		p.X.applyTo(&d.X)
		p.Y.applyTo(&d.Y)
		if err := c.saveDecky(d); err != nil {
			return err
		}
		out = *d
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return &out, version, nil
}

// DeleteDecky removes a decky of a pending topology and (by cascade) its
// edges. Like remove_decky, nothing guards the last decky or the gateway.
func (db *DB) DeleteDecky(ctx context.Context, tid, deckyUUID string, expected *int) (int, error) {
	return db.editPending(ctx, tid, expected, func(c *childTx) error {
		d := c.decky(deckyUUID)
		if d == nil {
			return domain.Errorf(domain.ENotFound, "Decky not found")
		}
		return c.exec("delete decky", `DELETE FROM deckies WHERE uuid = $1`, d.UUID)
	})
}

// CreateEdge attaches a decky to another LAN of a pending topology, like
// attach_decky (DOMAIN §6.5): ips_by_lan gains the LAN with a pinned or
// auto IP, forwards_l3=true sets decky_config.forwards_l3 (false never
// clears it), and the edge is a bridge unless told otherwise.
func (db *DB) CreateEdge(ctx context.Context, tid string, expected *int, in EdgeInput) (*domain.Edge, int, error) {
	if in.DeckyUUID == "" {
		return nil, 0, bodyFieldError("decky_uuid", "required")
	}
	if in.LANID == "" {
		return nil, 0, bodyFieldError("lan_id", "required")
	}
	var edge *domain.Edge
	version, err := db.editPending(ctx, tid, expected, func(c *childTx) error {
		d := c.decky(in.DeckyUUID)
		if d == nil {
			return domain.Errorf(domain.EUnprocessable, "decky '%s' not found", in.DeckyUUID)
		}
		lan := c.resolveLAN(in.LANID)
		if lan == nil {
			return domain.Errorf(domain.EUnprocessable, "LAN '%s' not found", in.LANID)
		}
		for _, e := range c.h.Edges {
			if e.DeckyUUID == d.UUID && e.LANID == lan.ID {
				return domain.Errorf(domain.EConflict, "decky '%s' already on LAN '%s'", d.Name, lan.Name)
			}
		}
		ip, err := c.allocIP(lan, in.IP)
		if err != nil {
			return err
		}
		d.SetIP(lan.Name, ip)
		if in.ForwardsL3 {
			d.Config["forwards_l3"] = true
		}
		if err := c.saveDecky(d); err != nil {
			return err
		}
		bridge := in.IsBridge == nil || *in.IsBridge
		edge = &domain.Edge{ID: newID(), TopologyID: tid, DeckyUUID: d.UUID, LANID: lan.ID,
			IsBridge: bridge, ForwardsL3: in.ForwardsL3}
		return c.insertEdge(edge)
	})
	if err != nil {
		return nil, 0, err
	}
	return edge, version, nil
}

// DeleteEdge detaches a decky from a LAN of a pending topology, dropping its
// ips_by_lan entry. The home edge cannot be removed (409): delete the decky.
func (db *DB) DeleteEdge(ctx context.Context, tid, edgeID string, expected *int) (int, error) {
	return db.editPending(ctx, tid, expected, func(c *childTx) error {
		e := c.edge(edgeID)
		if e == nil {
			return domain.Errorf(domain.ENotFound, "Edge not found")
		}
		d, lan := c.decky(e.DeckyUUID), c.lan(e.LANID)
		if d == nil || lan == nil { // the FKs make this impossible
			return fmt.Errorf("postgres: edge %s has a dangling end", e.ID)
		}
		if d.HomeLANID != nil && *d.HomeLANID == lan.ID {
			return domain.Errorf(domain.EConflict, "cannot detach home LAN '%s'; delete the decky instead", lan.Name)
		}
		d.DeleteIP(lan.Name)
		if err := c.saveDecky(d); err != nil {
			return err
		}
		return c.exec("delete edge", `DELETE FROM edges WHERE id = $1`, e.ID)
	})
}

// NextIP previews the address the allocator would give the next decky or
// edge on a LAN (DOMAIN §7.2), in any status. Unknown topology or LAN → 404;
// a LAN whose subnet does not parse, or is full → 422.
func (db *DB) NextIP(ctx context.Context, tid, lanID string) (string, error) {
	h, err := db.GetHydrated(ctx, tid)
	if err != nil {
		return "", err
	}
	c := &childTx{ctx: ctx, h: h}
	lan := c.lan(lanID)
	if lan == nil {
		return "", domain.Errorf(domain.ENotFound, "LAN not found")
	}
	return c.allocIP(lan, "")
}

// editPending runs fn on a locked, pending topology after the optional
// version check-and-bump, all in one transaction, and returns the version
// the topology has after it.
func (db *DB) editPending(ctx context.Context, tid string, expected *int, fn func(c *childTx) error) (int, error) {
	var version int
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		h, err := LoadHydratedForUpdate(ctx, tx, tid)
		if err != nil {
			return err
		}
		if err := domain.CheckAction(domain.ActionEditPending, h.Topology.Status); err != nil {
			return err
		}
		version = h.Topology.Version
		if expected != nil {
			res, err := tx.ExecContext(ctx,
				`UPDATE topologies SET version = version + 1 WHERE id = $1 AND version = $2::bigint`, tid, *expected)
			if err != nil {
				return fmt.Errorf("postgres: bump version: %w", err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("postgres: bump version: %w", err)
			} else if n == 0 {
				// The row lock is held, so h's version is the current one.
				return domain.VersionConflict(*expected, h.Topology.Version)
			}
			version++
		}
		return fn(&childTx{ctx: ctx, tx: tx, h: h})
	})
	if err != nil {
		return 0, err
	}
	return version, nil
}

// childTx is one pending edit: the transaction and the hydrated view loaded
// under the row lock. Lookups return pointers into h, so changes made by an
// edit are seen by its later lookups.
type childTx struct {
	ctx context.Context
	tx  *sqlx.Tx
	h   *domain.Hydrated
}

func (c *childTx) lan(id string) *domain.LAN {
	for i := range c.h.LANs {
		if c.h.LANs[i].ID == id {
			return &c.h.LANs[i]
		}
	}
	return nil
}

func (c *childTx) lanByName(name string) *domain.LAN {
	for i := range c.h.LANs {
		if c.h.LANs[i].Name == name {
			return &c.h.LANs[i]
		}
	}
	return nil
}

// resolveLAN finds a LAN by id, then by name.
func (c *childTx) resolveLAN(ref string) *domain.LAN {
	if l := c.lan(ref); l != nil {
		return l
	}
	return c.lanByName(ref)
}

func (c *childTx) decky(id string) *domain.Decky {
	for i := range c.h.Deckies {
		if c.h.Deckies[i].UUID == id {
			return &c.h.Deckies[i]
		}
	}
	return nil
}

func (c *childTx) deckyByName(name string) *domain.Decky {
	for i := range c.h.Deckies {
		if c.h.Deckies[i].Name == name {
			return &c.h.Deckies[i]
		}
	}
	return nil
}

func (c *childTx) edge(id string) *domain.Edge {
	for i := range c.h.Edges {
		if c.h.Edges[i].ID == id {
			return &c.h.Edges[i]
		}
	}
	return nil
}

// allocIP returns pinned when set, else the lowest free host of lan, where
// taken = every decky's ips_by_lan entry for that LAN (DOMAIN §7.2).
func (c *childTx) allocIP(lan *domain.LAN, pinned string) (string, error) {
	if pinned != "" {
		return pinned, nil
	}
	taken := map[string]bool{}
	for _, d := range c.h.Deckies {
		if ip, ok := d.IPsByLAN()[lan.Name]; ok {
			taken[ip] = true
		}
	}
	ip, err := domain.NextIP(lan.Subnet, taken)
	if domain.ErrorCode(err) == domain.EInvalid {
		return "", domain.Errorf(domain.EUnprocessable,
			"LAN '%s' has a malformed subnet '%s'; fix it or pin an ip", lan.Name, lan.Subnet)
	}
	return ip, err
}

func (c *childTx) exec(what, query string, args ...any) error {
	if _, err := c.tx.ExecContext(c.ctx, query, args...); unstorableText(err) != nil {
		return unstorableText(err)
	} else if err != nil {
		return fmt.Errorf("postgres: %s: %w", what, err)
	}
	return nil
}

func (c *childTx) insertLAN(l *domain.LAN) error {
	_, err := c.tx.ExecContext(c.ctx,
		`INSERT INTO lans (id, topology_id, name, subnet, is_dmz, x, y) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		l.ID, l.TopologyID, l.Name, l.Subnet, l.IsDMZ, l.X, l.Y)
	if isUniqueViolation(err) {
		return domain.Errorf(domain.EConflict, "LAN '%s' already exists", l.Name)
	} else if bad := unstorableText(err); bad != nil {
		return bad
	} else if err != nil {
		return fmt.Errorf("postgres: insert lan: %w", err)
	}
	if c.h != nil {
		c.h.LANs = append(c.h.LANs, *l)
	}
	return nil
}

func (c *childTx) insertDecky(d *domain.Decky) error {
	services, config, err := marshalDecky(d)
	if err != nil {
		return err
	}
	err = c.tx.GetContext(c.ctx, &d.UpdatedAt, `INSERT INTO deckies
		(uuid, topology_id, name, home_lan_id, services, decky_config, ip, state, x, y)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING updated_at`,
		d.UUID, d.TopologyID, d.Name, d.HomeLANID, services, config, d.IP, d.State, d.X, d.Y)
	if isUniqueViolation(err) {
		return domain.Errorf(domain.EConflict, "decky '%s' already exists", d.Name)
	} else if bad := unstorableText(err); bad != nil {
		return bad
	} else if err != nil {
		return fmt.Errorf("postgres: insert decky: %w", err)
	}
	if c.h != nil {
		c.h.Deckies = append(c.h.Deckies, *d)
	}
	return nil
}

// saveDecky writes back the editable columns of d.
func (c *childTx) saveDecky(d *domain.Decky) error {
	services, config, err := marshalDecky(d)
	if err != nil {
		return err
	}
	err = c.tx.GetContext(c.ctx, &d.UpdatedAt, `UPDATE deckies SET name = $2, services = $3, decky_config = $4,
		ip = $5, x = $6, y = $7, updated_at = now() WHERE uuid = $1 RETURNING updated_at`,
		d.UUID, d.Name, services, config, d.IP, d.X, d.Y)
	if isUniqueViolation(err) {
		return domain.Errorf(domain.EConflict, "decky '%s' already exists", d.Name)
	} else if bad := unstorableText(err); bad != nil {
		return bad
	} else if err != nil {
		return fmt.Errorf("postgres: update decky: %w", err)
	}
	return nil
}

func (c *childTx) insertEdge(e *domain.Edge) error {
	_, err := c.tx.ExecContext(c.ctx, `INSERT INTO edges (id, topology_id, decky_uuid, lan_id, is_bridge, forwards_l3)
		VALUES ($1, $2, $3, $4, $5, $6)`, e.ID, e.TopologyID, e.DeckyUUID, e.LANID, e.IsBridge, e.ForwardsL3)
	if isUniqueViolation(err) {
		return domain.Errorf(domain.EConflict, "decky already on that LAN")
	} else if err != nil {
		return fmt.Errorf("postgres: insert edge: %w", err)
	}
	if c.h != nil {
		c.h.Edges = append(c.h.Edges, *e)
	}
	return nil
}
