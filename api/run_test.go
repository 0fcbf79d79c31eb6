package api

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/config/configtest"
	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/materializer"
	"github.com/decnet/mazenet/internal/postgres"
)

// validEnv is a complete, valid environment for the api process.
var validEnv = map[string]string{
	"DECNET_JWT_SECRET": testSecret + "-padding",
	"DATABASE_URL":      "postgres://127.0.0.1:1/none?sslmode=disable",
	"REDIS_URL":         "redis://127.0.0.1:1/0",
}

// with returns a getter over validEnv with name set to value.
func with(name, value string) func(string) string { return configtest.With(validEnv, name, value) }

func TestParseConfig(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig(with("", ""))
	require.NoError(t, err)
	require.Equal(t, ":8080", cfg.Addr)
	require.Equal(t, 240*time.Minute, cfg.TokenTTL)
	require.Equal(t, "decnet:", cfg.RedisPrefix)
	require.Equal(t, "mazenet", cfg.Queue)
	require.False(t, cfg.Dev)
	require.False(t, cfg.TrustProxy)
	require.Equal(t, materializer.KindNoop, cfg.Materializer)
	require.Equal(t, postgres.DefaultMaxConns, cfg.DBMaxConns)

	for _, tc := range []struct {
		name, value string
		check       func(Config) bool
	}{
		{"PORT", "0", func(c Config) bool { return c.Addr == ":0" }},
		{"PORT", "65535", func(c Config) bool { return c.Addr == ":65535" }},
		{"DECNET_JWT_EXP_MINUTES", "1", func(c Config) bool { return c.TokenTTL == time.Minute }},
		{"DECNET_JWT_EXP_MINUTES", "10080", func(c Config) bool { return c.TokenTTL == 7*24*time.Hour }},
		{"DECNET_TRUST_PROXY", "true", func(c Config) bool { return c.TrustProxy }},
		{"DECNET_QUEUE", "q1", func(c Config) bool { return c.Queue == "q1" }},
		{"DECNET_DB_MAX_CONNS", "4", func(c Config) bool { return c.DBMaxConns == 4 }},
		{"DECNET_SSE_PUBLIC_URL", "https://sse.example", func(c Config) bool { return c.SSEPublicURL == "https://sse.example" }},
		{"DECNET_MATERIALIZER", "test", func(c Config) bool { return c.Materializer == materializer.KindTest }},
		{"DECNET_TEST_MAT_UNHEALTHY", "db,web", func(c Config) bool { return slices.Equal(c.TestMaterializer.Unhealthy, []string{"db", "web"}) }},
		{"DECNET_TEST_MAT_DELAY", "2s", func(c Config) bool { return c.TestMaterializer.Delay == 2*time.Second }},
	} {
		cfg, err := ParseConfig(with(tc.name, tc.value))
		require.NoError(t, err, "%s=%s", tc.name, tc.value)
		require.True(t, tc.check(cfg), "%s=%s: %+v", tc.name, tc.value, cfg)
	}

	// Dev mode needs no secret.
	cfg, err = ParseConfig(func(k string) string { return map[string]string{"DECNET_DEV": "true"}[k] })
	require.NoError(t, err)
	require.True(t, cfg.Dev)
	require.NotEmpty(t, cfg.JWTSecret)
}

// Every bad value stops the process with an error naming its variable.
func TestParseConfigRejects(t *testing.T) {
	t.Parallel()
	configtest.Rejects(t, ParseConfig, validEnv, configtest.Shared, configtest.HTTP, []configtest.Var{
		{"DECNET_JWT_EXP_MINUTES", "0"},
		{"DECNET_JWT_EXP_MINUTES", "10081"},
		{"DECNET_JWT_EXP_MINUTES", "1h"},
		{"DECNET_TRUST_PROXY", "perhaps"},
		{"DECNET_MATERIALIZER", "docker"},
		{"DECNET_TEST_MAT_DELAY", "forever"},
	})
}

// Run serves on the listener it is given until its context ends, then
// returns nil.
func TestRunServesUntilCancelled(t *testing.T) {
	t.Parallel()
	rd := dbtest.NewRedis(t)
	cfg := testConfig(rd)
	cfg.DatabaseURL = dbtest.URL(t)
	cfg.Redis = rd.Options()
	cfg.Log = slog.New(slog.DiscardHandler)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg.Listener = ln
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()

	resp, err := http.Get("http://" + ln.Addr().String() + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	cancel()
	require.NoError(t, <-done)
	_, err = http.Get("http://" + ln.Addr().String() + "/healthz")
	require.Error(t, err, "the listener is closed after Run returns")
}
