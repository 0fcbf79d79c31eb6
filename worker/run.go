package worker

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/config"
	"github.com/decnet/mazenet/internal/materializer"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/process"
	"github.com/decnet/mazenet/internal/rediskey"
	"github.com/decnet/mazenet/internal/relay"
	"github.com/decnet/mazenet/internal/stream"
	"github.com/decnet/mazenet/tasks"
)

// The worker process: ParseConfig turns the environment into a Config, Run
// serves it. cmd/worker is only those two calls; tests call them too (or
// New, to drive a Worker's handlers directly).

// DECNET_MATERIALIZER's values (DOMAIN §15).
const (
	MaterializerNoop = materializer.KindNoop
	MaterializerTest = materializer.KindTest
)

// DefaultConcurrency is DECNET_WORKER_CONCURRENCY's default: how many tasks
// one process runs at once.
const DefaultConcurrency = 16

// Config is everything the worker process reads from the environment, plus
// the few things only code sets (marked below).
type Config struct {
	DatabaseURL string
	Redis       *redis.Options
	// RedisPrefix prefixes every Redis key (DECNET_REDIS_PREFIX).
	RedisPrefix string
	// Queue is the asynq queue served (DECNET_QUEUE).
	Queue string
	// Concurrency is asynq's concurrency (DECNET_WORKER_CONCURRENCY; 0 =
	// DefaultConcurrency).
	Concurrency int
	// SweepInterval is DECNET_SWEEP_INTERVAL (0 = DefaultSweepInterval).
	SweepInterval time.Duration
	// DrainLease is DECNET_DRAIN_LEASE (0 = DefaultDrainLease).
	DrainLease time.Duration
	// Materializer is MaterializerNoop ("" means the same) or
	// MaterializerTest, whose knobs are TestMaterializer
	// (DECNET_TEST_MAT_*).
	Materializer     string
	TestMaterializer materializer.TestConfig
	LogLevel         slog.Level
	// DBMaxConns bounds the Postgres pool (DECNET_DB_MAX_CONNS; 0 =
	// postgres.DefaultMaxConns).
	DBMaxConns int

	// ID, set only in code, names the process in drain leases; "" means
	// host:pid:random.
	ID string
	// Log, set only in code, replaces the JSON logger on stderr.
	Log *slog.Logger
}

// ParseConfig reads and checks the process's variables through getenv
// (os.Getenv in cmd/worker); every number and duration has a range
// (README, Configuration). The error names the first bad variable.
func ParseConfig(getenv func(string) string) (Config, error) {
	e := config.New(getenv)
	mat, matCfg := materializer.ParseEnv(e)
	cfg := Config{
		DatabaseURL:   e.DatabaseURL(),
		Redis:         e.Redis(0),
		RedisPrefix:   e.String("DECNET_REDIS_PREFIX", rediskey.DefaultPrefix),
		Queue:         e.String("DECNET_QUEUE", tasks.DefaultQueue),
		Concurrency:   e.Int("DECNET_WORKER_CONCURRENCY", DefaultConcurrency, 1, 1024),
		SweepInterval: e.Duration("DECNET_SWEEP_INTERVAL", DefaultSweepInterval, 100*time.Millisecond, 10*time.Minute),
		// Below a second the renewal ticker (every lease/3) would spin;
		// SYSTEM §3.2 allows a dead worker to block its topology 30 s.
		DrainLease:       e.Duration("DECNET_DRAIN_LEASE", DefaultDrainLease, time.Second, 30*time.Second),
		Materializer:     mat,
		TestMaterializer: matCfg,
		LogLevel:         e.LogLevel(),
		DBMaxConns:       e.DBMaxConns(postgres.DefaultMaxConns),
	}
	return cfg, e.Err()
}

// Run is the worker process: it opens Postgres and Redis, wires a Worker
// (New) and serves it (Serve) until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	cfg.Log = process.Logger(cfg.Log, cfg.LogLevel)
	conns := process.Conns{DatabaseURL: cfg.DatabaseURL, MaxConns: cmp.Or(cfg.DBMaxConns, postgres.DefaultMaxConns), Redis: cfg.Redis}
	return process.Run(ctx, conns, func(st *process.Stores) error { return New(cfg, st.DB, st.Redis).Serve(ctx) })
}

// New wires a Worker from cfg on open connections. Run uses it; tests that
// drive handlers or drains directly use it too.
func New(cfg Config, db *postgres.DB, rdb redis.UniversalClient) *Worker {
	log := process.Logger(cfg.Log, cfg.LogLevel)
	keys := rediskey.New(cfg.RedisPrefix)
	mat := materializer.New(cfg.Materializer, cfg.TestMaterializer, rdb, keys)
	id := cfg.ID
	if id == "" {
		host, _ := os.Hostname()
		id = fmt.Sprintf("%s:%d:%s", host, os.Getpid(), uuid.NewString()[:8])
	}
	return &Worker{
		DB:            db,
		Redis:         rdb,
		Keys:          keys,
		Relay:         relay.New(db, stream.New(rdb, keys), log),
		Materializer:  mat,
		Queue:         cfg.Queue,
		Concurrency:   cfg.Concurrency,
		Log:           log,
		ID:            id,
		SweepInterval: cfg.SweepInterval,
		DrainLease:    cfg.DrainLease,
	}
}

// Serve runs w as a worker process does: an asynq server on w.Queue with
// w.Concurrency, and the background loops (Run: sweep and fast path). When
// ctx ends it stops taking tasks, waits for in-flight ones (up to asynq's
// ShutdownTimeout, 20 s) and for the loops, and returns.
func (w *Worker) Serve(ctx context.Context) error {
	acfg := w.ServerConfig()
	if w.Concurrency > 0 {
		acfg.Concurrency = w.Concurrency
	}
	srv := asynq.NewServerFromRedisClient(w.Redis, acfg)
	if err := srv.Start(w.Mux()); err != nil {
		return fmt.Errorf("asynq: %w", err)
	}
	w.log().Info("worker started", "id", w.ID, "queue", w.Queue, "concurrency", acfg.Concurrency,
		"materializer", fmt.Sprintf("%T", w.materializer()))
	loops := make(chan error, 1)
	go func() { loops <- w.Run(ctx) }()
	<-ctx.Done()
	w.log().Info("worker shutting down")
	srv.Shutdown()
	return <-loops
}
