// Package rediskey builds every Redis key mazenet uses, one function each,
// under one configurable prefix (default "decnet:"), so tests isolate
// themselves with a unique prefix and operators can share a Redis.
package rediskey

// DefaultPrefix is the prefix of every key in production.
const DefaultPrefix = "decnet:"

// Keys builds keys under Prefix.
type Keys struct {
	Prefix string
}

// New returns Keys for prefix ("" means DefaultPrefix).
func New(prefix string) Keys {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return Keys{Prefix: prefix}
}

// TopologyStream is the per-topology event stream (DOMAIN §9.1).
func (k Keys) TopologyStream(topologyID string) string {
	return k.Prefix + "stream:topology:" + topologyID
}

// AllStream is the all-topologies stream; each entry has the same id as its
// copy in the per-topology stream.
func (k Keys) AllStream() string { return k.Prefix + "stream:all" }

// RelayWatermarks is a hash: topology id → highest outbox seq appended.
func (k Keys) RelayWatermarks() string { return k.Prefix + "stream:relayed" }

// Ticket is one single-use SSE ticket (DOMAIN §11.4).
func (k Keys) Ticket(ticket string) string { return k.Prefix + "sse:ticket:" + ticket }

// SSESlots is a user's sorted set of SSE connection leases (DOMAIN §12).
func (k Keys) SSESlots(userUUID string) string { return k.Prefix + "sse:slots:" + userUUID }

// LoginByIP counts login attempts from one client IP.
func (k Keys) LoginByIP(ip string) string { return k.Prefix + "login:ip:" + ip }

// LoginByUser counts login attempts for one username.
func (k Keys) LoginByUser(username string) string { return k.Prefix + "login:user:" + username }

// MaterializerCalls is the test materializer's call log (DOMAIN §15). With
// the default prefix it is "decnet:test:materializer:calls".
func (k Keys) MaterializerCalls() string { return k.Prefix + "test:materializer:calls" }

// MaterializerFences is the test materializer's hash of the highest fence
// (lease generation) it has accepted per topology: topology id → fence.
func (k Keys) MaterializerFences() string { return k.Prefix + "test:materializer:fences" }

// SweepLeader is the lock that elects one sweeping worker at a time.
func (k Keys) SweepLeader() string { return k.Prefix + "worker:sweep-leader" }
