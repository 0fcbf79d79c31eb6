package worker

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/config/configtest"
	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/materializer"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/tasks"
)

// with returns a getter over an empty environment with name set to value.
func with(name, value string) func(string) string { return configtest.With(nil, name, value) }

func TestParseConfig(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig(with("", ""))
	require.NoError(t, err)
	require.Equal(t, "mazenet", cfg.Queue)
	require.Equal(t, "decnet:", cfg.RedisPrefix)
	require.Equal(t, DefaultConcurrency, cfg.Concurrency)
	require.Equal(t, DefaultSweepInterval, cfg.SweepInterval)
	require.Equal(t, DefaultDrainLease, cfg.DrainLease)
	require.Equal(t, MaterializerNoop, cfg.Materializer)
	require.Equal(t, materializer.TestConfig{}, cfg.TestMaterializer)
	require.Equal(t, postgres.DefaultMaxConns, cfg.DBMaxConns)

	for _, tc := range []struct {
		name, value string
		check       func(Config) bool
	}{
		{"DECNET_DRAIN_LEASE", "1s", func(c Config) bool { return c.DrainLease == time.Second }},
		{"DECNET_DRAIN_LEASE", "30s", func(c Config) bool { return c.DrainLease == 30*time.Second }},
		{"DECNET_SWEEP_INTERVAL", "100ms", func(c Config) bool { return c.SweepInterval == 100*time.Millisecond }},
		{"DECNET_SWEEP_INTERVAL", "10m", func(c Config) bool { return c.SweepInterval == 10*time.Minute }},
		{"DECNET_WORKER_CONCURRENCY", "1024", func(c Config) bool { return c.Concurrency == 1024 }},
		{"DECNET_MATERIALIZER", "test", func(c Config) bool { return c.Materializer == MaterializerTest }},
		{"DECNET_TEST_MAT_DELAY", "1m", func(c Config) bool { return c.TestMaterializer.Delay == time.Minute }},
		{"DECNET_TEST_MAT_FAIL_SPAWN", "true", func(c Config) bool { return c.TestMaterializer.FailSpawn }},
		{"DECNET_TEST_MAT_FAIL_DEPLOY", "1", func(c Config) bool { return c.TestMaterializer.FailDeploy }},
		{"DECNET_TEST_MAT_UNHEALTHY", " db, web ,", func(c Config) bool { return slices.Equal(c.TestMaterializer.Unhealthy, []string{"db", "web"}) }},
		{"DECNET_QUEUE", "q1", func(c Config) bool { return c.Queue == "q1" }},
		{"DECNET_DB_MAX_CONNS", "4", func(c Config) bool { return c.DBMaxConns == 4 }},
		{"DECNET_LOG_LEVEL", "debug", func(c Config) bool { return c.LogLevel == slog.LevelDebug }},
	} {
		cfg, err := ParseConfig(with(tc.name, tc.value))
		require.NoError(t, err, "%s=%s", tc.name, tc.value)
		require.True(t, tc.check(cfg), "%s=%s: %+v", tc.name, tc.value, cfg)
	}
}

// Every bad value stops the process with an error naming its variable.
func TestParseConfigRejects(t *testing.T) {
	t.Parallel()
	configtest.Rejects(t, ParseConfig, nil, configtest.Shared, []configtest.Var{
		{"DECNET_DRAIN_LEASE", "1ns"}, // used to panic the renewal ticker
		{"DECNET_DRAIN_LEASE", "999ms"},
		{"DECNET_DRAIN_LEASE", "31s"}, // SYSTEM §3.2 allows 30 s
		{"DECNET_DRAIN_LEASE", "15"},
		{"DECNET_SWEEP_INTERVAL", "99ms"},
		{"DECNET_SWEEP_INTERVAL", "11m"},
		{"DECNET_SWEEP_INTERVAL", "-1s"},
		{"DECNET_WORKER_CONCURRENCY", "0"},
		{"DECNET_WORKER_CONCURRENCY", "1025"},
		{"DECNET_WORKER_CONCURRENCY", "many"},
		{"DECNET_MATERIALIZER", "docker"},
		{"DECNET_TEST_MAT_DELAY", "-1s"},
		{"DECNET_TEST_MAT_DELAY", "61s"},
		{"DECNET_TEST_MAT_FAIL_SPAWN", "often"},
		{"DECNET_TEST_MAT_FAIL_DEPLOY", "never"},
	})
}

// Run serves the queue until its context ends, then returns nil.
func TestRunServesUntilCancelled(t *testing.T) {
	t.Parallel()
	dsn := dbtest.URL(t)
	rd := dbtest.NewRedis(t)
	cfg := Config{
		DatabaseURL: dsn, Redis: rd.Options(), RedisPrefix: rd.Prefix, Queue: rd.Queue, Concurrency: 2,
		Materializer: MaterializerTest, ID: "run-test", Log: slog.New(slog.DiscardHandler), DBMaxConns: dbtest.MaxConns,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()

	// A deploy task on the queue is handled by the running process.
	db, err := postgres.OpenPool(context.Background(), dsn, dbtest.MaxConns)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	tp, err := db.CreateBlankTopology(context.Background(), postgres.BlankTopology{Name: "run"})
	require.NoError(t, err)
	_, err = asynq.NewClientFromRedisClient(rd.Client).Enqueue(tasks.New(tasks.TypeDeploy, tp.ID, rd.Queue))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		got, err := db.GetTopology(context.Background(), tp.ID)
		return err == nil && got.Status == domain.StatusActive
	}, 20*time.Second, 20*time.Millisecond, "the deploy never ran")

	cancel()
	require.NoError(t, <-done)
}
