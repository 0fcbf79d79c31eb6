package sse_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/config/configtest"
	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/sse"
)

// goodEnv is a valid environment for the sse process.
var goodEnv = map[string]string{
	"DECNET_JWT_SECRET": testSecret,
	"DATABASE_URL":      "postgres://127.0.0.1:1/none?sslmode=disable",
	"REDIS_URL":         "redis://127.0.0.1:1/0",
}

// getenv returns a getter over goodEnv with one variable set (or unset
// when value is "").
func getenv(name, value string) func(string) string { return configtest.With(goodEnv, name, value) }

func TestParseConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := sse.ParseConfig(getenv("", ""))
	require.NoError(t, err)
	require.Equal(t, ":8081", cfg.Addr)
	require.Equal(t, "decnet:", cfg.RedisPrefix)
	require.Equal(t, testSecret, string(cfg.JWTSecret))
	require.Equal(t, sse.DefaultMaxPerUser, cfg.MaxPerUser)
	require.Equal(t, sse.DefaultKeepalive, cfg.Keepalive)
	require.Equal(t, sse.DefaultSlotLease, cfg.SlotLease)
	require.Equal(t, 15, cfg.Redis.PoolSize)
	require.Empty(t, cfg.AllowedOrigins)
	require.Equal(t, sse.DefaultDBMaxConns, cfg.DBMaxConns)

	cfg, err = sse.ParseConfig(getenv("DECNET_ALLOWED_ORIGINS", "https://a.example, https://b.example"))
	require.NoError(t, err)
	require.Equal(t, []string{"https://a.example", "https://b.example"}, cfg.AllowedOrigins)

	cfg, err = sse.ParseConfig(getenv("DECNET_SSE_KEEPALIVE", "55s"))
	require.NoError(t, err)
	require.Equal(t, 55*time.Second, cfg.Keepalive, "the top of the range is allowed")
}

// Every bad value stops the process with an error naming its variable.
func TestParseConfigRejects(t *testing.T) {
	t.Parallel()
	configtest.Rejects(t, sse.ParseConfig, goodEnv, configtest.Shared, configtest.HTTP, []configtest.Var{
		{"DECNET_SSE_MAX_PER_USER", "five"},
		{"DECNET_SSE_MAX_PER_USER", "0"},
		{"DECNET_SSE_MAX_PER_USER", "2.5"},
		{"DECNET_SSE_MAX_PER_USER", "100001"},
		{"DECNET_SSE_KEEPALIVE", "soon"},
		{"DECNET_SSE_KEEPALIVE", "0s"},
		{"DECNET_SSE_KEEPALIVE", "999ms"},
		{"DECNET_SSE_KEEPALIVE", "56s"},
		{"DECNET_SSE_SLOT_LEASE", "1s"},
		{"DECNET_SSE_SLOT_LEASE", "61s"},
		{"DECNET_DEV", "yes please"},
	})
}

// The binary turns a bad variable into one line on stderr and exit status 1.
func TestBadConfigStopsAtStart(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(sseBin)
	cmd.Env = append(cleanEnv(), "PORT=0", "DECNET_JWT_SECRET="+testSecret,
		"DATABASE_URL="+goodEnv["DATABASE_URL"], "REDIS_URL="+goodEnv["REDIS_URL"], "DECNET_SSE_SLOT_LEASE=1s")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "exit error, got %v", err)
	require.Equal(t, 1, ee.ExitCode())
	require.Equal(t, "sse: config: DECNET_SSE_SLOT_LEASE: must be between 3s and 1m, got 1s\n", stderr.String())
}

// cleanEnv is the environment without mazenet's own variables.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DECNET_") && !strings.HasPrefix(kv, "PORT=") &&
			!strings.HasPrefix(kv, "DATABASE_URL=") && !strings.HasPrefix(kv, "REDIS_URL=") {
			out = append(out, kv)
		}
	}
	return out
}

// The process's Redis options cap its sockets at 16 whatever runs at once:
// the revocation subscription, the shared reader's blocking XREAD, plain
// commands and pipelines (the slot keeper's lease refresh). go-redis v9 otherwise sends pipelines through a
// pool of its own and the process had 17 sockets under load (issue 9).
func TestRedisConnectionsCapped(t *testing.T) {
	t.Parallel()
	r := dbtest.NewRedis(t)
	cfg, err := sse.ParseConfig(getenv("REDIS_URL", r.URL))
	require.NoError(t, err)
	opts := *cfg.Redis
	opts.ClientName = "sse-cap-" + strings.TrimSuffix(strings.TrimPrefix(r.Prefix, "mzt:"), ":")
	rdb := redis.NewClient(&opts)
	defer rdb.Close()

	count := func() int {
		list, err := r.Client.ClientList(context.Background()).Result()
		require.NoError(t, err)
		return strings.Count(list, " name="+opts.ClientName+" ")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub := rdb.Subscribe(ctx, r.Prefix+"revocations") // revoke.go's subscription
	defer sub.Close()
	_, err = sub.Receive(ctx)
	require.NoError(t, err)
	reader := make(chan struct{})
	go func() { // the shared reader: one connection blocked in XREAD
		defer close(reader)
		for ctx.Err() == nil {
			rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{r.Prefix + "none", "$"}, Block: 200 * time.Millisecond})
		}
	}()
	var load sync.WaitGroup
	for i := range 48 {
		load.Add(1)
		go func() { // handshakes and lease refreshes: commands and pipelines holding a connection 50 ms each
			defer load.Done()
			hold := &redis.XReadArgs{Streams: []string{r.Prefix + "s" + strconv.Itoa(i), "$"}, Block: 50 * time.Millisecond}
			for range 6 {
				if i%2 == 0 {
					_, _ = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
						p.XRead(ctx, hold)
						return nil
					})
				} else {
					rdb.XRead(ctx, hold)
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { load.Wait(); close(done) }()
	most := 0
	for sampling := true; sampling; {
		select {
		case <-done:
			sampling = false
		default:
			most = max(most, count())
		}
	}
	cancel()
	<-reader
	require.LessOrEqual(t, most, 16, "Redis sockets of one sse process")
	require.GreaterOrEqual(t, most, 8, "the load should have used most of the pool")
}
