package domain

import (
	"encoding/json"
	"time"
)

// Mode says where a topology runs.
type Mode string

// The two modes. Agent-pinned topologies are never materialised by the
// mutation pipeline (DOMAIN §15).
const (
	ModeUnihost Mode = "unihost"
	ModeAgent   Mode = "agent"
)

// Topology is the summary row of a topology (DOMAIN §2.1).
type Topology struct {
	ID              string          `json:"id" db:"id"`
	Name            string          `json:"name" db:"name"`
	Mode            Mode            `json:"mode" db:"mode"`
	TargetHostUUID  *string         `json:"target_host_uuid" db:"target_host_uuid"`
	Status          Status          `json:"status" db:"status"`
	StatusChangedAt time.Time       `json:"status_changed_at" db:"status_changed_at"`
	CreatedAt       time.Time       `json:"created_at" db:"created_at"`
	Version         int             `json:"version" db:"version"`
	ConfigSnapshot  json.RawMessage `json:"config_snapshot" db:"config_snapshot"`
}

// LAN is one network segment of a topology (DOMAIN §2.2).
type LAN struct {
	ID              string   `json:"id" db:"id"`
	TopologyID      string   `json:"topology_id" db:"topology_id"`
	Name            string   `json:"name" db:"name"`
	Subnet          string   `json:"subnet" db:"subnet"`
	IsDMZ           bool     `json:"is_dmz" db:"is_dmz"`
	DockerNetworkID *string  `json:"docker_network_id" db:"docker_network_id"`
	X               *float64 `json:"x" db:"x"`
	Y               *float64 `json:"y" db:"y"`
}

// Decky is a decoy host (DOMAIN §2.3). Config is decky_config: a free-form
// JSON object whose known keys are read through the accessor methods.
// HomeLANID records the home LAN explicitly (Deviation D7); the hydrated view
// exposes it as home_lan_id so clients need not guess it from the edges.
type Decky struct {
	UUID       string         `json:"uuid" db:"uuid"`
	TopologyID string         `json:"topology_id" db:"topology_id"`
	Name       string         `json:"name" db:"name"`
	HomeLANID  *string        `json:"home_lan_id" db:"home_lan_id"`
	Services   []string       `json:"services" db:"-"`
	Config     map[string]any `json:"decky_config" db:"-"`
	IP         *string        `json:"ip" db:"ip"`
	State      string         `json:"state" db:"state"`
	LastError  *string        `json:"last_error" db:"last_error"`
	UpdatedAt  time.Time      `json:"updated_at" db:"updated_at"`
	X          *float64       `json:"x" db:"x"`
	Y          *float64       `json:"y" db:"y"`
}

// Decky states.
const (
	DeckyPending = "pending"
	DeckyRunning = "running"
)

// IPsByLAN returns decky_config.ips_by_lan as a map of LAN name to IP string;
// entries that are not strings are returned as "" so validation flags them.
func (d *Decky) IPsByLAN() map[string]string {
	out := map[string]string{}
	raw, _ := d.Config["ips_by_lan"].(map[string]any)
	for k, v := range raw {
		s, _ := v.(string)
		out[k] = s
	}
	return out
}

// SetIP records ip for lan in decky_config.ips_by_lan.
func (d *Decky) SetIP(lan, ip string) {
	if d.Config == nil {
		d.Config = map[string]any{}
	}
	raw, _ := d.Config["ips_by_lan"].(map[string]any)
	if raw == nil {
		raw = map[string]any{}
	}
	raw[lan] = ip
	d.Config["ips_by_lan"] = raw
}

// DeleteIP drops lan from decky_config.ips_by_lan.
func (d *Decky) DeleteIP(lan string) {
	if raw, ok := d.Config["ips_by_lan"].(map[string]any); ok {
		delete(raw, lan)
	}
}

// ForwardsL3 reports decky_config.forwards_l3; only JSON true counts.
func (d *Decky) ForwardsL3() bool {
	v, _ := d.Config["forwards_l3"].(bool)
	return v
}

// ServiceConfig returns decky_config.service_config (nil when absent).
func (d *Decky) ServiceConfig() map[string]any {
	v, _ := d.Config["service_config"].(map[string]any)
	return v
}

// Edge is the membership of one decky in one LAN (DOMAIN §2.4).
type Edge struct {
	ID         string `json:"id" db:"id"`
	TopologyID string `json:"topology_id" db:"topology_id"`
	DeckyUUID  string `json:"decky_uuid" db:"decky_uuid"`
	LANID      string `json:"lan_id" db:"lan_id"`
	IsBridge   bool   `json:"is_bridge" db:"is_bridge"`
	ForwardsL3 bool   `json:"forwards_l3" db:"forwards_l3"`
}

// Hydrated is the full view of one topology (DOMAIN §2.8): the input of
// validation and of every op. LANs and Deckies are sorted by name.
type Hydrated struct {
	Topology Topology `json:"topology"`
	LANs     []LAN    `json:"lans"`
	Deckies  []Decky  `json:"deckies"`
	Edges    []Edge   `json:"edges"`
}

// StatusEvent is one row of the append-only status audit log (DOMAIN §2.6).
type StatusEvent struct {
	ID         int64     `json:"id" db:"id"`
	TopologyID string    `json:"topology_id" db:"topology_id"`
	FromStatus Status    `json:"from_status" db:"from_status"`
	ToStatus   Status    `json:"to_status" db:"to_status"`
	At         time.Time `json:"at" db:"at"`
	Reason     *string   `json:"reason" db:"reason"`
}
