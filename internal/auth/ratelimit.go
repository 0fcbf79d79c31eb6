package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/rediskey"
)

// Login rate limit of DOMAIN §11.2: at most LoginMaxAttempts attempts per
// LoginWindow, counted separately per client IP and per username.
const (
	LoginMaxAttempts = 10
	LoginWindow      = 5 * time.Minute
)

// maxUsernameKeyBytes bounds the username part of a limiter key. Longer
// usernames (which can never exist: the column allows 64 characters) are
// keyed by their SHA-256, so a client cannot make Redis store huge keys.
const maxUsernameKeyBytes = 64

// LoginLimiter counts login attempts in Redis, so the limit holds across
// every api process (D8).
//
// It is a fixed window per key: the first attempt creates the counter with a
// LoginWindow expiry and later attempts only increment it. The worst case is
// therefore 2×max attempts around a window boundary, which still bounds
// online guessing to a few per minute. Every attempt counts, successful or
// not, and rejected ones too: a client that keeps hammering stays locked out
// until its window ends.
type LoginLimiter struct {
	rdb    redis.UniversalClient
	keys   rediskey.Keys
	max    int64
	window time.Duration
}

// NewLoginLimiter returns the DOMAIN §11.2 limiter (10 per 5 minutes).
func NewLoginLimiter(rdb redis.UniversalClient, keys rediskey.Keys) *LoginLimiter {
	return &LoginLimiter{rdb: rdb, keys: keys, max: LoginMaxAttempts, window: LoginWindow}
}

// Allow records one attempt from ip for username. When either counter is
// over the limit it returns false and how long until the blocking window
// ends (at least one second). An empty ip or username is not counted.
//
// All counters are updated in one round trip: INCR, then EXPIRE … NX, then
// PTTL per key. NX (Redis ≥ 7) only sets the expiry when the key has none,
// so a counter left without one by a dropped connection is repaired by the
// next attempt instead of blocking forever. Plain pipelining rather than
// MULTI keeps it working when the two keys live in different cluster slots.
func (l *LoginLimiter) Allow(ctx context.Context, ip, username string) (bool, time.Duration, error) {
	var keys []string
	if ip != "" {
		keys = append(keys, l.keys.LoginByIP(ip))
	}
	if username != "" {
		keys = append(keys, l.keys.LoginByUser(usernameKey(username)))
	}
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
	if retry < time.Second {
		retry = time.Second
	}
	return false, retry, nil
}

// usernameKey is the username as it appears in its limiter key.
func usernameKey(username string) string {
	if len(username) <= maxUsernameKeyBytes {
		return username
	}
	sum := sha256.Sum256([]byte(username))
	return "sha256:" + hex.EncodeToString(sum[:])
}
