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

// EventStream is the Redis stream every SSE process and worker tails: one
// entry per outbox event of every topology, under the event's durable id
// "<gseq>-<seq>" (internal/stream). The name is new with durable ids, so
// entries that Redis numbered itself (the old "stream:all") are never read.
func (k Keys) EventStream() string { return k.Prefix + "stream:events" }

// EventStreamTop holds the highest gseq the event stream covers: appended,
// or skipped because the outbox no longer has it (internal/stream).
func (k Keys) EventStreamTop() string { return k.Prefix + "stream:events:top" }

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

// Revocations is the pub/sub channel on which the api announces, after the
// commit, that a user's credentials changed (logout, password change or
// reset, role change, deletion); every sse process re-checks that user's
// open streams (internal/auth.Revocation).
func (k Keys) Revocations() string { return k.Prefix + "auth:revocations" }
