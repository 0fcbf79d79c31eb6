package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/rediskey"
)

// Login rate limit of DOMAIN §11.2: at most LoginMaxAttempts failed attempts
// per LoginWindow, counted separately per client IP and per username (see
// LoginLimiter for why failures only, and docs/DECISIONS.md).
const (
	LoginMaxAttempts = 10
	LoginWindow      = 5 * time.Minute
)

// maxUsernameKeyBytes bounds the username part of a limiter key. Longer
// usernames (which can never exist: the column allows 64 characters) are
// keyed by their SHA-256, so a client cannot make Redis store huge keys.
const maxUsernameKeyBytes = 64

// LoginLimiter counts failed login attempts in Redis, so the limit holds
// across every api process (D8). Every password check goes through it: POST
// /auth/login, POST /auth/change-password (the old password) and the HTTP
// Basic credentials of /monitoring.
//
// It is a fixed window per key: the first attempt creates the counter with a
// LoginWindow expiry and later attempts only increment it. The worst case is
// therefore 2×max failures around a window boundary, which still bounds
// online guessing to a few per minute.
//
// Only failures count (issue 8, item 9): an operator who logs in from
// several tabs must not lock themselves out. To keep the bound under
// parallel guessing, Allow reserves the attempt (INCR) before the password
// is compared and Release gives it back (a decrement that never goes below
// zero) once the password proved right. A counter therefore holds the
// failures of its window plus the checks still in flight, and a check only
// starts when that sum stays within max: however many guesses race, at most
// max wrong passwords are ever compared per key and window. A refused attempt
// gives its reservation back at once, so an IP that is locked out cannot
// keep raising the counters of other usernames; the window itself never
// moves, so a client that keeps hammering stays locked out until it ends.
type LoginLimiter struct {
	rdb    redis.UniversalClient
	keys   rediskey.Keys
	max    int64
	window time.Duration
}

// NewLoginLimiter returns the DOMAIN §11.2 limiter (10 failures per 5
// minutes).
func NewLoginLimiter(rdb redis.UniversalClient, keys rediskey.Keys) *LoginLimiter {
	return &LoginLimiter{rdb: rdb, keys: keys, max: LoginMaxAttempts, window: LoginWindow}
}

// releaseScript decrements one counter unless it is missing or already zero:
// a plain DECR on an expired key would create it at -1 without an expiry and
// hand out a free attempt for ever. DECR keeps the key's expiry. One script
// per key keeps it valid when the keys live in different cluster slots.
var releaseScript = redis.NewScript(`
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v and v > 0 then return redis.call('DECR', KEYS[1]) end
return 0`)

// Allow reserves one attempt from ip for username, before the password is
// compared. When either counter is over the limit it gives the reservation
// back and returns false and how long until the blocking window ends (at
// least one second). An empty ip or username is not counted. A reservation
// that Allow granted stays counted as a failure unless the caller hands it
// back with Release after the password proved right.
//
// All counters are updated in one round trip: INCR, then EXPIRE … NX, then
// PTTL per key. NX (Redis ≥ 7) only sets the expiry when the key has none,
// so a counter left without one by a dropped connection is repaired by the
// next attempt instead of blocking forever. Plain pipelining rather than
// MULTI keeps it working when the two keys live in different cluster slots.
func (l *LoginLimiter) Allow(ctx context.Context, ip, username string) (bool, time.Duration, error) {
	keys := l.keyList(ip, username)
	if len(keys) == 0 {
		return true, 0, nil
	}
	counts := make([]*redis.IntCmd, len(keys))
	ttls := make([]*redis.DurationCmd, len(keys))
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			counts[i] = p.Incr(ctx, k)
			p.ExpireNX(ctx, k, l.window)
			ttls[i] = p.PTTL(ctx, k)
		}
		return nil
	})
	if err != nil {
		return false, 0, fmt.Errorf("auth: login rate limit: %w", err)
	}
	var retry time.Duration
	allowed := true
	for i := range keys {
		if counts[i].Val() <= l.max {
			continue
		}
		allowed = false
		if d := ttls[i].Val(); d > retry {
			retry = d
		}
	}
	if allowed {
		return true, 0, nil
	}
	if err := l.release(ctx, keys); err != nil {
		return false, 0, err
	}
	return false, max(retry, time.Second), nil
}

// Check reports, without counting anything, whether an attempt from ip for
// username would be refused right now, and for how long. It serves requests
// that present credentials already verified (the /monitoring cache): they
// are successes, which do not count, but they must still be refused while a
// key is locked out, or a cached credential would answer 200 to an attacker
// who guesses it while every other guess gets 429.
func (l *LoginLimiter) Check(ctx context.Context, ip, username string) (bool, time.Duration, error) {
	keys := l.keyList(ip, username)
	if len(keys) == 0 {
		return true, 0, nil
	}
	counts := make([]*redis.StringCmd, len(keys))
	ttls := make([]*redis.DurationCmd, len(keys))
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			counts[i] = p.Get(ctx, k)
			ttls[i] = p.PTTL(ctx, k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, 0, fmt.Errorf("auth: login rate limit: %w", err)
	}
	var retry time.Duration
	allowed := true
	for i := range keys {
		n, err := counts[i].Int64()
		if errors.Is(err, redis.Nil) || (err == nil && n < l.max) {
			continue
		} else if err != nil {
			return false, 0, fmt.Errorf("auth: login rate limit: %w", err)
		}
		allowed = false
		if d := ttls[i].Val(); d > retry {
			retry = d
		}
	}
	if allowed {
		return true, 0, nil
	}
	return false, max(retry, time.Second), nil
}

// Release gives back an attempt Allow granted, once the password proved
// right, so successes never count against the limit. Callers that cannot
// release (Redis failed) should log and carry on: the counter then keeps one
// attempt too many, which only errs on the safe side.
func (l *LoginLimiter) Release(ctx context.Context, ip, username string) error {
	return l.release(ctx, l.keyList(ip, username))
}

// release runs releaseScript on each key in one round trip.
func (l *LoginLimiter) release(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			releaseScript.Eval(ctx, p, []string{k})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("auth: login rate limit release: %w", err)
	}
	return nil
}

// keyList is the limiter keys of an attempt from ip for username.
func (l *LoginLimiter) keyList(ip, username string) []string {
	var keys []string
	if ip != "" {
		keys = append(keys, l.keys.LoginByIP(ip))
	}
	if username != "" {
		keys = append(keys, l.keys.LoginByUser(usernameKey(username)))
	}
	return keys
}

// usernameKey is the username as it appears in its limiter key.
func usernameKey(username string) string {
	if len(username) <= maxUsernameKeyBytes {
		return username
	}
	sum := sha256.Sum256([]byte(username))
	return "sha256:" + hex.EncodeToString(sum[:])
}
