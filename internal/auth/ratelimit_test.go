package auth_test

import (
	"context"
	"strings"
	"testing"
	"time"

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
}
