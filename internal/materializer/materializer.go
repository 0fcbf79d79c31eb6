// Package materializer is the boundary between mazenet's database state and
// running infrastructure (DOMAIN §15). The worker calls it only after an op's
// transaction commits, only for live unihost topologies; its errors are
// logged, never fail a mutation. Implementations must be idempotent.
//
// Two implementations ship: Noop (the default, DECNET_MATERIALIZER=noop) and
// Test (DECNET_MATERIALIZER=test), which acceptance tests drive through the
// DECNET_TEST_MAT_* knobs and read back through a Redis list.
//
// # Fencing (SYSTEM §3.8)
//
// Every call carries a Scope whose Fence is the generation of the topology
// lease its caller held when it decided to make the call. Generations of a
// topology only grow (the store hands out a higher one to every new drain
// lease holder, every deploy start, every teardown start and every sweep
// that resumes an abandoned deploy or teardown), so a worker that lost its
// lease (paused past it, partitioned, or overtaken by a teardown) holds a
// fence below the current one. The worker checks its lease before each call,
// but that check cannot close the gap between the check and the call (a
// process can stop for any length of time in between); the fence does, and
// only the infrastructure side can enforce it. An implementation that
// changes real infrastructure MUST therefore:
//
//  1. keep, per topology, the highest fence it has accepted, in a store that
//     sits with the infrastructure and that every caller's request passes
//     through (for one Docker host: a state file on that host, or the
//     host's agent; never the worker's memory, which a paused worker still
//     believes);
//  2. on each call, under a per-topology lock held for the whole call:
//     refuse the call if its fence is below that highest fence, with an
//     error wrapping ErrFenced and without touching anything; otherwise
//     record the fence (if higher) and do the work. Holding the lock for the
//     whole call is what orders calls, not just admits them: a call that was
//     admitted with fence f finishes before any call with a fence above f
//     starts, so mutation N's Spawn can never land after N+1's Remove or
//     after the topology's Teardown;
//  3. accept a call whose fence equals the highest one: it is the same
//     holder continuing (a holder makes many calls under one fence).
//
// Noop ignores fences (it changes nothing). Test enforces them exactly as
// above, with one Lua script per call (check, record, log), and logs refused
// calls with `rejected: true` so fault tests can check the invariant.
//
// Health (heal, DOMAIN §3 and D12) changes nothing, but it is fenced like
// the rest: its answer is only worth something to the holder of the
// topology's lease, and a heal that lost its lease must not act on it.
package materializer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/config"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/rediskey"
)

// Scope says on whose behalf a call is made: the topology, the lease
// generation (fence) the caller holds, and, for calls a mutation makes, that
// mutation's id and per-topology seq (empty and 0 for Deploy and Teardown).
type Scope struct {
	Topology   *domain.Topology
	Fence      int64
	MutationID string
	Seq        int64
}

// ErrFenced is returned (possibly wrapped) by a call whose fence is below the
// highest one the materializer has accepted for the topology: the caller has
// lost its lease and must stop; the call changed nothing.
var ErrFenced = errors.New("materializer: call refused: a newer lease holder has acted on this topology")

// Materializer turns DB state into infrastructure. Every call is fenced by
// its Scope (see the package documentation).
type Materializer interface {
	CreateNetwork(ctx context.Context, s Scope, lan *domain.LAN) error
	RemoveNetwork(ctx context.Context, s Scope, lan *domain.LAN) error
	// Spawn starts a decky's units; ok reports a successful spawn (the decky
	// then reads `running`).
	Spawn(ctx context.Context, s Scope, d *domain.Decky) (ok bool, err error)
	Remove(ctx context.Context, s Scope, d *domain.Decky) error
	Connect(ctx context.Context, s Scope, d *domain.Decky, lan *domain.LAN, ip string) error
	Disconnect(ctx context.Context, s Scope, d *domain.Decky, lan *domain.LAN) error
	ServicesDiff(ctx context.Context, s Scope, d *domain.Decky, added, removed []string) error
	RecreateBase(ctx context.Context, s Scope, d *domain.Decky) error
	// Deploy materialises a whole topology; degraded=true means it came up
	// with some units unhealthy.
	Deploy(ctx context.Context, s Scope, h *domain.Hydrated) (degraded bool, err error)
	Teardown(ctx context.Context, s Scope, h *domain.Hydrated) error
	// Health reports the units of a deployed topology that are not healthy
	// (none: every running unit is healthy). It changes nothing.
	Health(ctx context.Context, s Scope, h *domain.Hydrated) (unhealthy []Unit, err error)
}

// Unit is one unhealthy unit a Health check reports: a decky (its base or
// one of its service containers) or a LAN's network, and why. The heal
// endpoint returns them as they are, in its 409 "unhealthy" list.
type Unit struct {
	Decky  string `json:"decky,omitempty"`
	LAN    string `json:"lan,omitempty"`
	Reason string `json:"reason"`
}

// DECNET_MATERIALIZER's values (DOMAIN §15).
const (
	KindNoop = "noop"
	KindTest = "test"
)

// ParseEnv reads DECNET_MATERIALIZER and the test materializer's knobs
// (DECNET_TEST_MAT_*), which every process reads at start (DOMAIN §15): the
// worker materialises, the api asks for health (heal).
func ParseEnv(e *config.Env) (kind string, tc TestConfig) {
	kind = e.OneOf("DECNET_MATERIALIZER", KindNoop, KindNoop, KindTest)
	tc = TestConfig{
		Delay:      e.Duration("DECNET_TEST_MAT_DELAY", 0, 0, time.Minute),
		FailSpawn:  e.Bool("DECNET_TEST_MAT_FAIL_SPAWN", false),
		FailDeploy: e.Bool("DECNET_TEST_MAT_FAIL_DEPLOY", false),
		Unhealthy:  e.List("DECNET_TEST_MAT_UNHEALTHY"),
	}
	return kind, tc
}

// New returns the materializer kind names: Test (with tc, its log and
// fences under keys on rdb) for KindTest, Noop otherwise.
func New(kind string, tc TestConfig, rdb redis.UniversalClient, keys rediskey.Keys) Materializer {
	if kind == KindTest {
		return NewTest(tc, rdb, keys)
	}
	return Noop{}
}

// Noop succeeds at everything instantly. It changes nothing, so it has
// nothing to fence.
type Noop struct{}

var _ Materializer = Noop{}

func (Noop) CreateNetwork(context.Context, Scope, *domain.LAN) error   { return nil }
func (Noop) RemoveNetwork(context.Context, Scope, *domain.LAN) error   { return nil }
func (Noop) Spawn(context.Context, Scope, *domain.Decky) (bool, error) { return true, nil }
func (Noop) Remove(context.Context, Scope, *domain.Decky) error        { return nil }
func (Noop) Connect(context.Context, Scope, *domain.Decky, *domain.LAN, string) error {
	return nil
}
func (Noop) Disconnect(context.Context, Scope, *domain.Decky, *domain.LAN) error { return nil }
func (Noop) ServicesDiff(context.Context, Scope, *domain.Decky, []string, []string) error {
	return nil
}
func (Noop) RecreateBase(context.Context, Scope, *domain.Decky) error      { return nil }
func (Noop) Deploy(context.Context, Scope, *domain.Hydrated) (bool, error) { return false, nil }
func (Noop) Teardown(context.Context, Scope, *domain.Hydrated) error       { return nil }
func (Noop) Health(context.Context, Scope, *domain.Hydrated) ([]Unit, error) {
	return nil, nil
}

// TestConfig holds the test materializer's knobs (DECNET_TEST_MAT_*).
type TestConfig struct {
	Delay      time.Duration // applied to every call
	FailSpawn  bool          // Spawn reports failure
	FailDeploy bool          // Deploy fails
	// Unhealthy names deckies (DECNET_TEST_MAT_UNHEALTHY, comma-separated)
	// that Health reports unhealthy, and whose presence makes Deploy report
	// the topology degraded.
	Unhealthy []string
}

// Test is the acceptance-test materializer: it sleeps Delay, then, in one
// Lua script, checks the call's fence against the highest one accepted for
// the topology (FenceKey), records it, and RPUSHes one JSON object per call
// to a Redis list (LogKey) so tests in other processes can read what
// happened; then it fails where told. A refused call is logged with
// `rejected: true` and returns ErrFenced without reaching the knobs.
type Test struct {
	Config   TestConfig
	Redis    redis.UniversalClient
	LogKey   string
	FenceKey string
}

var _ Materializer = (*Test)(nil)

// NewTest returns the test materializer on rdb with its log and fence keys
// under keys' prefix.
func NewTest(cfg TestConfig, rdb redis.UniversalClient, keys rediskey.Keys) *Test {
	return &Test{Config: cfg, Redis: rdb, LogKey: keys.MaterializerCalls(), FenceKey: keys.MaterializerFences()}
}

// Call is one entry of the test materializer's log (DOMAIN §15, with the
// fencing fields of CONTRACTS: fence always; mutation_id and seq on calls
// made for a mutation; rejected only on refused calls).
type Call struct {
	Call       string   `json:"call"`
	TopologyID string   `json:"topology_id,omitempty"`
	LAN        string   `json:"lan,omitempty"`
	Decky      string   `json:"decky,omitempty"`
	IP         string   `json:"ip,omitempty"`
	Added      []string `json:"added,omitempty"`
	Removed    []string `json:"removed,omitempty"`
	Fence      int64    `json:"fence"`
	MutationID string   `json:"mutation_id,omitempty"`
	Seq        int64    `json:"seq,omitempty"`
	Rejected   bool     `json:"rejected,omitempty"`
}

// ErrForced is the failure the knobs inject.
var ErrForced = errors.New("materializer: forced failure (test materializer)")

// fenceScript is one fenced call: compare the call's fence with the highest
// accepted for its topology, record it when higher, and log the call, all
// atomically, so concurrent callers on any number of processes are admitted
// in an order whose fences never decrease. Returns 1 if accepted, 0 if
// refused (then the rejected entry is logged instead).
// KEYS[1]: fence hash, KEYS[2]: call log.
// ARGV: topology id, fence, accepted entry, rejected entry.
var fenceScript = redis.NewScript(`
local max = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local fence = tonumber(ARGV[2])
if fence < max then
  redis.call('RPUSH', KEYS[2], ARGV[4])
  return 0
end
if fence > max then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('RPUSH', KEYS[2], ARGV[3])
return 1
`)

// record applies the delay, then admits and logs c under s's fence. It
// returns ErrFenced when the call is refused.
func (m *Test) record(ctx context.Context, s Scope, c Call) error {
	if m.Config.Delay > 0 {
		select {
		case <-time.After(m.Config.Delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if s.Topology != nil {
		c.TopologyID = s.Topology.ID
	}
	c.Fence, c.MutationID, c.Seq = s.Fence, s.MutationID, s.Seq
	accepted, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("materializer: log entry: %w", err)
	}
	c.Rejected = true
	rejected, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("materializer: log entry: %w", err)
	}
	ok, err := fenceScript.Run(ctx, m.Redis, []string{m.FenceKey, m.LogKey},
		c.TopologyID, s.Fence, accepted, rejected).Int()
	if err != nil {
		return fmt.Errorf("materializer: record %s: %w", c.Call, err)
	}
	if ok != 1 {
		return fmt.Errorf("%s with fence %d: %w", c.Call, s.Fence, ErrFenced)
	}
	return nil
}

func (m *Test) CreateNetwork(ctx context.Context, s Scope, l *domain.LAN) error {
	return m.record(ctx, s, Call{Call: domain.CallCreateNetwork, LAN: l.Name})
}
func (m *Test) RemoveNetwork(ctx context.Context, s Scope, l *domain.LAN) error {
	return m.record(ctx, s, Call{Call: domain.CallRemoveNetwork, LAN: l.Name})
}
func (m *Test) Spawn(ctx context.Context, s Scope, d *domain.Decky) (bool, error) {
	if err := m.record(ctx, s, Call{Call: domain.CallSpawn, Decky: d.Name}); err != nil {
		return false, err
	}
	if m.Config.FailSpawn {
		return false, ErrForced
	}
	return true, nil
}
func (m *Test) Remove(ctx context.Context, s Scope, d *domain.Decky) error {
	return m.record(ctx, s, Call{Call: domain.CallRemove, Decky: d.Name})
}
func (m *Test) Connect(ctx context.Context, s Scope, d *domain.Decky, l *domain.LAN, ip string) error {
	return m.record(ctx, s, Call{Call: domain.CallConnect, Decky: d.Name, LAN: l.Name, IP: ip})
}
func (m *Test) Disconnect(ctx context.Context, s Scope, d *domain.Decky, l *domain.LAN) error {
	return m.record(ctx, s, Call{Call: domain.CallDisconnect, Decky: d.Name, LAN: l.Name})
}
func (m *Test) ServicesDiff(ctx context.Context, s Scope, d *domain.Decky, added, removed []string) error {
	return m.record(ctx, s, Call{Call: domain.CallServicesDiff, Decky: d.Name, Added: added, Removed: removed})
}
func (m *Test) RecreateBase(ctx context.Context, s Scope, d *domain.Decky) error {
	return m.record(ctx, s, Call{Call: domain.CallRecreateBase, Decky: d.Name})
}
func (m *Test) Deploy(ctx context.Context, s Scope, h *domain.Hydrated) (bool, error) {
	if s.Topology == nil {
		s.Topology = &h.Topology
	}
	if err := m.record(ctx, s, Call{Call: "Deploy"}); err != nil {
		return false, err
	}
	if m.Config.FailDeploy {
		return false, ErrForced
	}
	return len(m.unhealthy(h)) > 0, nil
}
func (m *Test) Teardown(ctx context.Context, s Scope, h *domain.Hydrated) error {
	if s.Topology == nil {
		s.Topology = &h.Topology
	}
	return m.record(ctx, s, Call{Call: "Teardown"})
}

// Health logs a `Health` call (fenced like every other) and reports the
// topology's deckies named in Config.Unhealthy, in the view's order.
func (m *Test) Health(ctx context.Context, s Scope, h *domain.Hydrated) ([]Unit, error) {
	if s.Topology == nil {
		s.Topology = &h.Topology
	}
	if err := m.record(ctx, s, Call{Call: CallHealth}); err != nil {
		return nil, err
	}
	return m.unhealthy(h), nil
}

// CallHealth is the call log name of Health.
const CallHealth = "Health"

// unhealthy is the Unhealthy knob applied to h.
func (m *Test) unhealthy(h *domain.Hydrated) []Unit {
	var out []Unit
	for _, d := range h.Deckies {
		if slices.Contains(m.Config.Unhealthy, d.Name) {
			out = append(out, Unit{Decky: d.Name, Reason: "unhealthy (DECNET_TEST_MAT_UNHEALTHY)"})
		}
	}
	return out
}
