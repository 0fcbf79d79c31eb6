package sse

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/rediskey"
)

// Slot defaults (DOMAIN §12, SYSTEM §3.5).
const (
	DefaultMaxPerUser = 5
	// DefaultSlotLease is how long a slot outlives its last refresh. The
	// keeper refreshes every lease/3, so a SIGKILLed process's slots are
	// free again within one lease (45 s ≤ the 60 s SYSTEM §3.5 allows).
	DefaultSlotLease = 45 * time.Second
)

// acquireScript takes a slot if the user holds fewer than cap live ones.
// Expired leases are pruned first, and the whole check-and-add runs inside
// Redis, so concurrent handshakes on any number of processes can never
// overshoot the cap. Time comes from Redis (TIME), not from each process's
// clock, so skewed hosts agree on what has expired.
// KEYS[1]: the user's slot set. ARGV: cap, lease ms, connection id.
var acquireScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// refreshScript extends the leases of a user's live slots held by this
// process and returns the ids whose lease had already run out (a process
// stalled past its lease): those slots may have been handed to someone else,
// so their streams must end to keep the cap exact.
// KEYS[1]: the user's slot set. ARGV: lease ms, connection ids...
var refreshScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local exp = now + tonumber(ARGV[1])
local lost = {}
for i = 2, #ARGV do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if s and tonumber(s) > now then
    redis.call('ZADD', KEYS[1], exp, ARGV[i])
  else
    redis.call('ZREM', KEYS[1], ARGV[i])
    table.insert(lost, ARGV[i])
  end
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return lost
`)

// Slots enforces the per-user SSE connection cap across every SSE process
// (DOMAIN §12). It is the "expiring per-connection lease" the spec prefers
// over a bare INCR/DECR counter: each user has a Redis sorted set of
// connection ids scored by lease expiry. Acquire prunes expired members and
// adds one only below the cap, atomically (acquireScript); the process's
// keeper refreshes all of its leases in one pipelined round trip every
// lease/3, however many connections it holds; Release removes the member
// exactly once. A counter leaks forever when a process dies between INCR and
// DECR; a lease simply expires, so a SIGKILLed process's slots come back
// within one lease.
type Slots struct {
	rdb   redis.UniversalClient
	keys  rediskey.Keys
	cap   int
	lease time.Duration
	log   *slog.Logger

	mu   sync.Mutex
	held map[*Slot]struct{}
}

// newSlots returns the slot accounting for one process.
func newSlots(rdb redis.UniversalClient, keys rediskey.Keys, capacity int, lease time.Duration, log *slog.Logger) *Slots {
	if capacity <= 0 {
		capacity = DefaultMaxPerUser
	}
	if lease <= 0 {
		lease = DefaultSlotLease
	}
	return &Slots{rdb: rdb, keys: keys, cap: capacity, lease: lease, log: log, held: map[*Slot]struct{}{}}
}

// Slot is one acquired connection lease.
type Slot struct {
	slots *Slots
	user  string
	id    string
	lost  chan struct{} // closed when a refresh finds the lease expired
	once  sync.Once     // release
	gone  sync.Once     // close(lost)
	hook  func()        // called when lost; guarded by slots.mu
}

// onLost registers f to run when the lease is found expired.
func (sl *Slot) onLost(f func()) {
	sl.slots.mu.Lock()
	sl.hook = f
	sl.slots.mu.Unlock()
	select {
	case <-sl.lost:
		f()
	default:
	}
}

// errSlotLimit builds the 429 of DOMAIN §10 step 3.
func errSlotLimit(capacity int) error {
	return domain.Errorf(domain.ERateLimited, "SSE connection limit (%d) reached", capacity)
}

// Acquire takes one of user's slots, or fails with the 429 domain error.
func (s *Slots) Acquire(ctx context.Context, user string) (*Slot, error) {
	sl := &Slot{slots: s, user: user, id: uuid.NewString(), lost: make(chan struct{})}
	ok, err := acquireScript.Run(ctx, s.rdb, []string{s.keys.SSESlots(user)}, s.cap, s.lease.Milliseconds(), sl.id).Int()
	if err != nil {
		return nil, fmt.Errorf("sse: acquire slot: %w", err)
	}
	if ok != 1 {
		return nil, errSlotLimit(s.cap)
	}
	s.mu.Lock()
	s.held[sl] = struct{}{}
	s.mu.Unlock()
	return sl, nil
}

// Lost is closed when the lease could not be renewed in time; the stream
// must then end (the client reconnects and competes for a slot again).
func (sl *Slot) Lost() <-chan struct{} { return sl.lost }

// Release gives the slot back, exactly once however often it is called. If
// Redis cannot be reached the lease simply expires.
func (sl *Slot) Release() {
	sl.once.Do(func() {
		s := sl.slots
		s.mu.Lock()
		delete(s.held, sl)
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := s.rdb.ZRem(ctx, s.keys.SSESlots(sl.user), sl.id).Err(); err != nil {
			s.log.Warn("sse: release slot (the lease will expire)", "err", err)
		}
	})
}

// snapshot returns the held slots grouped by user.
func (s *Slots) snapshot() map[string][]*Slot {
	s.mu.Lock()
	defer s.mu.Unlock()
	byUser := map[string][]*Slot{}
	for sl := range s.held {
		byUser[sl.user] = append(byUser[sl.user], sl)
	}
	return byUser
}

// Refresh renews every lease this process holds in one pipeline and ends the
// slots whose lease had run out.
func (s *Slots) Refresh(ctx context.Context) error {
	byUser := s.snapshot()
	if len(byUser) == 0 {
		return nil
	}
	type call struct {
		slots []*Slot
		cmd   *redis.Cmd
	}
	calls := make([]call, 0, len(byUser))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for user, slots := range byUser {
			args := make([]any, 0, 1+len(slots))
			args = append(args, s.lease.Milliseconds())
			for _, sl := range slots {
				args = append(args, sl.id)
			}
			// Eval, not EvalSha: a pipeline cannot fall back on NOSCRIPT.
			calls = append(calls, call{slots: slots, cmd: refreshScript.Eval(ctx, p, []string{s.keys.SSESlots(user)}, args...)})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sse: refresh slots: %w", err)
	}
	for _, c := range calls {
		lost, err := c.cmd.StringSlice()
		if err != nil {
			return fmt.Errorf("sse: refresh slots: %w", err)
		}
		for _, id := range lost {
			for _, sl := range c.slots {
				if sl.id == id {
					sl.gone.Do(func() {
						s.log.Warn("sse: slot lease expired before it was renewed; ending its stream")
						close(sl.lost)
						s.mu.Lock()
						hook := sl.hook
						s.mu.Unlock()
						if hook != nil {
							hook()
						}
					})
				}
			}
		}
	}
	return nil
}

// Keep refreshes the leases every lease/3 until ctx ends.
func (s *Slots) Keep(ctx context.Context) {
	t := time.NewTicker(s.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rctx, cancel := context.WithTimeout(ctx, s.lease/3)
			if err := s.Refresh(rctx); err != nil {
				s.log.Warn("sse: refresh slot leases", "err", err)
			}
			cancel()
		}
	}
}

// ReleaseAll releases every slot still held (shutdown), in one pipeline.
func (s *Slots) ReleaseAll(ctx context.Context) error {
	s.mu.Lock()
	var all []*Slot
	for sl := range s.held {
		all = append(all, sl)
	}
	s.mu.Unlock()
	if len(all) == 0 {
		return nil
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, sl := range all {
			sl.once.Do(func() {
				s.mu.Lock()
				delete(s.held, sl)
				s.mu.Unlock()
				p.ZRem(ctx, s.keys.SSESlots(sl.user), sl.id)
			})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sse: release slots: %w", err)
	}
	return nil
}

// Held returns how many slots this process holds.
func (s *Slots) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.held)
}
