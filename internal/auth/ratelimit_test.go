package auth_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/rediskey"
)

func TestLoginLimiterPerIPAndPerUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rd := dbtest.NewRedis(t)
	l := auth.NewLoginLimiter(rd.Client, rediskey.New(rd.Prefix))

	for i := 1; i <= auth.LoginMaxAttempts; i++ {
		ok, _, err := l.Allow(ctx, "10.0.0.1", "alice")
		require.NoError(t, err)
		require.True(t, ok, "attempt %d", i)
	}
	ok, retry, err := l.Allow(ctx, "10.0.0.1", "alice")
	require.NoError(t, err)
	require.False(t, ok, "attempt 11 must be refused")
	require.Greater(t, retry, time.Duration(0))
	require.LessOrEqual(t, retry, auth.LoginWindow)

	ok, _, err = l.Allow(ctx, "10.0.0.2", "bob")
	require.NoError(t, err)
	require.True(t, ok, "another IP and another username are unaffected")

	ok, _, err = l.Allow(ctx, "10.0.0.3", "alice")
	require.NoError(t, err)
	require.False(t, ok, "the username limit holds from another IP")

	ok, _, err = l.Allow(ctx, "10.0.0.1", "carol")
	require.NoError(t, err)
	require.False(t, ok, "the IP limit holds for another username")
}

func TestLoginLimiterKeysExpire(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rd := dbtest.NewRedis(t)
	keys := rediskey.New(rd.Prefix)
	l := auth.NewLoginLimiter(rd.Client, keys)

	// A counter that lost its expiry (e.g. a connection dropped mid-pipeline)
	// is repaired by the next attempt instead of blocking forever.
	require.NoError(t, rd.Client.Set(ctx, keys.LoginByUser("dave"), 3, 0).Err())
	_, _, err := l.Allow(ctx, "10.0.0.9", "dave")
	require.NoError(t, err)
	for _, k := range []string{keys.LoginByUser("dave"), keys.LoginByIP("10.0.0.9")} {
		ttl, err := rd.Client.PTTL(ctx, k).Result()
		require.NoError(t, err)
		require.Greater(t, ttl, time.Duration(0), "key %s", k)
		require.LessOrEqual(t, ttl, auth.LoginWindow, "key %s", k)
	}
	n, err := rd.Client.Get(ctx, keys.LoginByUser("dave")).Int()
	require.NoError(t, err)
	require.Equal(t, 4, n)
}

func TestLoginLimiterBoundsKeyLength(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rd := dbtest.NewRedis(t)
	l := auth.NewLoginLimiter(rd.Client, rediskey.New(rd.Prefix))
	_, _, err := l.Allow(ctx, "10.0.0.1", strings.Repeat("u", 100_000))
	require.NoError(t, err)
	keys, err := rd.Client.Keys(ctx, rd.Prefix+"*").Result()
	require.NoError(t, err)
	require.Len(t, keys, 2)
	for _, k := range keys {
		require.Less(t, len(k), 200, "key %.80q…", k)
	}
}

func TestLoginLimiterRedisDownIsAnError(t *testing.T) {
	t.Parallel()
	rd := dbtest.NewRedis(t)
	l := auth.NewLoginLimiter(rd.Client, rediskey.New(rd.Prefix))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ok, _, err := l.Allow(ctx, "10.0.0.1", "erin")
	require.Error(t, err)
	require.False(t, ok, "fail closed")
	ok, _, err = l.Check(ctx, "10.0.0.1", "erin")
	require.Error(t, err)
	require.False(t, ok, "fail closed")
	require.Error(t, l.Release(ctx, "10.0.0.1", "erin"))
}

// counter reads a limiter counter (0 when missing).
func counter(t *testing.T, rd *dbtest.Redis, key string) int {
	t.Helper()
	n, err := rd.Client.Get(context.Background(), key).Int()
	if errors.Is(err, redis.Nil) {
		return 0
	}
	require.NoError(t, err)
	return n
}

// Item 9 of issue 8: successes are given back, failures stay counted.
func TestLoginLimiterCountsOnlyFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rd := dbtest.NewRedis(t)
	keys := rediskey.New(rd.Prefix)
	l := auth.NewLoginLimiter(rd.Client, keys)

	for i := 1; i <= 3*auth.LoginMaxAttempts; i++ {
		ok, _, err := l.Allow(ctx, "10.0.0.1", "alice")
		require.NoError(t, err)
		require.True(t, ok, "successful attempt %d", i)
		require.NoError(t, l.Release(ctx, "10.0.0.1", "alice"))
	}
	require.Equal(t, 0, counter(t, rd, keys.LoginByUser("alice")))
	require.Equal(t, 0, counter(t, rd, keys.LoginByIP("10.0.0.1")))

	for i := 1; i <= auth.LoginMaxAttempts; i++ {
		ok, _, err := l.Allow(ctx, "10.0.0.1", "alice")
		require.NoError(t, err)
		require.True(t, ok, "failed attempt %d", i)
	}
	ok, _, err := l.Allow(ctx, "10.0.0.1", "alice")
	require.NoError(t, err)
	require.False(t, ok, "the failures still lock the key out")
	require.Equal(t, auth.LoginMaxAttempts, counter(t, rd, keys.LoginByUser("alice")), "the refused attempt was given back")

	// A locked-out IP cannot raise the counters of other usernames.
	for range 5 {
		ok, _, err = l.Allow(ctx, "10.0.0.1", "bob")
		require.NoError(t, err)
		require.False(t, ok)
	}
	require.Equal(t, 0, counter(t, rd, keys.LoginByUser("bob")))
	require.Equal(t, auth.LoginMaxAttempts, counter(t, rd, keys.LoginByIP("10.0.0.1")))
}

func TestLoginLimiterReleaseNeverGoesBelowZero(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rd := dbtest.NewRedis(t)
	keys := rediskey.New(rd.Prefix)
	l := auth.NewLoginLimiter(rd.Client, keys)

	// Releasing a key that expired (or never existed) creates nothing: a
	// counter at -1 without an expiry would be a free attempt for ever.
	require.NoError(t, l.Release(ctx, "10.0.0.1", "carol"))
	n, err := rd.Client.Exists(ctx, keys.LoginByUser("carol"), keys.LoginByIP("10.0.0.1")).Result()
	require.NoError(t, err)
	require.Zero(t, n)

	ok, _, err := l.Allow(ctx, "10.0.0.1", "carol")
	require.NoError(t, err)
	require.True(t, ok)
	for range 3 {
		require.NoError(t, l.Release(ctx, "10.0.0.1", "carol"))
	}
	require.Equal(t, 0, counter(t, rd, keys.LoginByUser("carol")))
	ttl, err := rd.Client.PTTL(ctx, keys.LoginByUser("carol")).Result()
	require.NoError(t, err)
	require.Greater(t, ttl, time.Duration(0), "the window is kept")
}

// However many guesses race, at most max of them get to compare a password.
func TestLoginLimiterBoundHoldsUnderParallelGuessing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rd := dbtest.NewRedis(t)
	l := auth.NewLoginLimiter(rd.Client, rediskey.New(rd.Prefix))

	const guesses = 5 * auth.LoginMaxAttempts
	var allowed atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, guesses)
	for range guesses {
		wg.Go(func() {
			ok, _, err := l.Allow(ctx, "10.0.0.1", "dave")
			if err != nil {
				errs <- err
				return
			}
			if ok {
				allowed.Add(1) // a wrong password: never released
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, int64(auth.LoginMaxAttempts), allowed.Load())
}

func TestLoginLimiterCheckCountsNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rd := dbtest.NewRedis(t)
	keys := rediskey.New(rd.Prefix)
	l := auth.NewLoginLimiter(rd.Client, keys)

	for i := 1; i < auth.LoginMaxAttempts; i++ {
		ok, _, err := l.Allow(ctx, "10.0.0.1", "erin")
		require.NoError(t, err)
		require.True(t, ok)
	}
	for range 3 * auth.LoginMaxAttempts {
		ok, _, err := l.Check(ctx, "10.0.0.1", "erin")
		require.NoError(t, err)
		require.True(t, ok, "one attempt is left")
	}
	require.Equal(t, auth.LoginMaxAttempts-1, counter(t, rd, keys.LoginByUser("erin")))

	ok, _, err := l.Allow(ctx, "10.0.0.1", "erin")
	require.NoError(t, err)
	require.True(t, ok, "the last attempt")
	ok, retry, err := l.Check(ctx, "10.0.0.2", "erin")
	require.NoError(t, err)
	require.False(t, ok, "the username is locked out")
	require.Greater(t, retry, time.Duration(0))
	require.LessOrEqual(t, retry, auth.LoginWindow)
	ok, _, err = l.Check(ctx, "10.0.0.2", "frank")
	require.NoError(t, err)
	require.True(t, ok, "another IP and username are not")
}
