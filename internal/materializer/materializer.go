// Package materializer is the boundary between mazenet's database state and
// running infrastructure (DOMAIN §15). The worker calls it only after an op's
// transaction commits, only for live unihost topologies; its errors are
// logged, never fail a mutation. Implementations must be idempotent.
//
// Two implementations ship: Noop (the default, DECNET_MATERIALIZER=noop) and
// Test (DECNET_MATERIALIZER=test), which acceptance tests drive through the
// DECNET_TEST_MAT_* knobs and read back through a Redis list.
package materializer

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/domain"
)

// Materializer turns DB state into infrastructure.
type Materializer interface {
	CreateNetwork(ctx context.Context, t *domain.Topology, lan *domain.LAN) error
	RemoveNetwork(ctx context.Context, t *domain.Topology, lan *domain.LAN) error
	// Spawn starts a decky's units; ok reports a successful spawn (the decky
	// then reads `running`).
	Spawn(ctx context.Context, t *domain.Topology, d *domain.Decky) (ok bool, err error)
	Remove(ctx context.Context, t *domain.Topology, d *domain.Decky) error
	Connect(ctx context.Context, t *domain.Topology, d *domain.Decky, lan *domain.LAN, ip string) error
	Disconnect(ctx context.Context, t *domain.Topology, d *domain.Decky, lan *domain.LAN) error
	ServicesDiff(ctx context.Context, t *domain.Topology, d *domain.Decky, added, removed []string) error
	RecreateBase(ctx context.Context, t *domain.Topology, d *domain.Decky) error
	// Deploy materialises a whole topology; degraded=true means it came up
	// with some units unhealthy.
	Deploy(ctx context.Context, h *domain.Hydrated) (degraded bool, err error)
	Teardown(ctx context.Context, h *domain.Hydrated) error
}

// Noop succeeds at everything instantly.
type Noop struct{}

var _ Materializer = Noop{}

func (Noop) CreateNetwork(context.Context, *domain.Topology, *domain.LAN) error { return nil }
func (Noop) RemoveNetwork(context.Context, *domain.Topology, *domain.LAN) error { return nil }
func (Noop) Spawn(context.Context, *domain.Topology, *domain.Decky) (bool, error) {
	return true, nil
}
func (Noop) Remove(context.Context, *domain.Topology, *domain.Decky) error { return nil }
func (Noop) Connect(context.Context, *domain.Topology, *domain.Decky, *domain.LAN, string) error {
	return nil
}
func (Noop) Disconnect(context.Context, *domain.Topology, *domain.Decky, *domain.LAN) error {
	return nil
}
func (Noop) ServicesDiff(context.Context, *domain.Topology, *domain.Decky, []string, []string) error {
	return nil
}
func (Noop) RecreateBase(context.Context, *domain.Topology, *domain.Decky) error { return nil }
func (Noop) Deploy(context.Context, *domain.Hydrated) (bool, error)              { return false, nil }
func (Noop) Teardown(context.Context, *domain.Hydrated) error                    { return nil }

// TestConfig holds the test materializer's knobs (DECNET_TEST_MAT_*).
type TestConfig struct {
	Delay      time.Duration // applied to every call
	FailSpawn  bool          // Spawn reports failure
	FailDeploy bool          // Deploy fails
}

// Test is the acceptance-test materializer: it sleeps Delay, fails where told,
// and RPUSHes one JSON object per call to a Redis list (LogKey) so tests in
// other processes can read what happened.
type Test struct {
	Config TestConfig
	Redis  redis.UniversalClient
	LogKey string
}

var _ Materializer = (*Test)(nil)

// Call is one entry of the test materializer's log.
type Call struct {
	Call       string   `json:"call"`
	TopologyID string   `json:"topology_id,omitempty"`
	LAN        string   `json:"lan,omitempty"`
	Decky      string   `json:"decky,omitempty"`
	IP         string   `json:"ip,omitempty"`
	Added      []string `json:"added,omitempty"`
	Removed    []string `json:"removed,omitempty"`
}

// ErrForced is the failure the knobs inject.
var ErrForced = errors.New("materializer: forced failure (test materializer)")

func (m *Test) record(ctx context.Context, c Call) error {
	if m.Config.Delay > 0 {
		select {
		case <-time.After(m.Config.Delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	body, _ := json.Marshal(c)
	return m.Redis.RPush(ctx, m.LogKey, body).Err()
}

func (m *Test) CreateNetwork(ctx context.Context, t *domain.Topology, l *domain.LAN) error {
	return m.record(ctx, Call{Call: "CreateNetwork", TopologyID: t.ID, LAN: l.Name})
}
func (m *Test) RemoveNetwork(ctx context.Context, t *domain.Topology, l *domain.LAN) error {
	return m.record(ctx, Call{Call: "RemoveNetwork", TopologyID: t.ID, LAN: l.Name})
}
func (m *Test) Spawn(ctx context.Context, t *domain.Topology, d *domain.Decky) (bool, error) {
	if err := m.record(ctx, Call{Call: "Spawn", TopologyID: t.ID, Decky: d.Name}); err != nil {
		return false, err
	}
	if m.Config.FailSpawn {
		return false, ErrForced
	}
	return true, nil
}
func (m *Test) Remove(ctx context.Context, t *domain.Topology, d *domain.Decky) error {
	return m.record(ctx, Call{Call: "Remove", TopologyID: t.ID, Decky: d.Name})
}
func (m *Test) Connect(ctx context.Context, t *domain.Topology, d *domain.Decky, l *domain.LAN, ip string) error {
	return m.record(ctx, Call{Call: "Connect", TopologyID: t.ID, Decky: d.Name, LAN: l.Name, IP: ip})
}
func (m *Test) Disconnect(ctx context.Context, t *domain.Topology, d *domain.Decky, l *domain.LAN) error {
	return m.record(ctx, Call{Call: "Disconnect", TopologyID: t.ID, Decky: d.Name, LAN: l.Name})
}
func (m *Test) ServicesDiff(ctx context.Context, t *domain.Topology, d *domain.Decky, added, removed []string) error {
	return m.record(ctx, Call{Call: "ServicesDiff", TopologyID: t.ID, Decky: d.Name, Added: added, Removed: removed})
}
func (m *Test) RecreateBase(ctx context.Context, t *domain.Topology, d *domain.Decky) error {
	return m.record(ctx, Call{Call: "RecreateBase", TopologyID: t.ID, Decky: d.Name})
}
func (m *Test) Deploy(ctx context.Context, h *domain.Hydrated) (bool, error) {
	if err := m.record(ctx, Call{Call: "Deploy", TopologyID: h.Topology.ID}); err != nil {
		return false, err
	}
	if m.Config.FailDeploy {
		return false, ErrForced
	}
	return false, nil
}
func (m *Test) Teardown(ctx context.Context, h *domain.Hydrated) error {
	return m.record(ctx, Call{Call: "Teardown", TopologyID: h.Topology.ID})
}
