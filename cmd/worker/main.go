// Command worker is the `worker` process: an asynq server that applies
// mutations, deploys and tears down topologies, plus the background loops
// (sweep, event relay, fast wake-ups). Any number may run. Configuration comes
// only from the environment (SYSTEM §2); see README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/config"
	"github.com/decnet/mazenet/internal/materializer"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/rediskey"
	"github.com/decnet/mazenet/internal/relay"
	"github.com/decnet/mazenet/internal/stream"
	"github.com/decnet/mazenet/tasks"
	"github.com/decnet/mazenet/worker"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run() error {
	env := config.New(os.Getenv)
	log := config.NewLogger(os.Stderr, env.LogLevel())
	dsn := env.DatabaseURL()
	ropt := env.Redis(0)
	prefix := env.String("DECNET_REDIS_PREFIX", rediskey.DefaultPrefix)
	queue := env.String("DECNET_QUEUE", tasks.DefaultQueue)
	sweep := env.Duration("DECNET_SWEEP_INTERVAL", worker.DefaultSweepInterval, 100*time.Millisecond, 10*time.Minute)
	lease := env.Duration("DECNET_DRAIN_LEASE", worker.DefaultDrainLease, time.Second, 30*time.Second)
	concurrency := env.Int("DECNET_WORKER_CONCURRENCY", 16, 1, 1024)
	matKind := env.String("DECNET_MATERIALIZER", "noop")
	matCfg := materializer.TestConfig{
		Delay:      env.Duration("DECNET_TEST_MAT_DELAY", 0, 0, time.Minute),
		FailSpawn:  env.Bool("DECNET_TEST_MAT_FAIL_SPAWN", false),
		FailDeploy: env.Bool("DECNET_TEST_MAT_FAIL_DEPLOY", false),
	}
	if matKind != "noop" && matKind != "test" {
		return fmt.Errorf("config: DECNET_MATERIALIZER: must be noop or test, got %q", matKind)
	}
	if err := env.Err(); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	rdb := redis.NewClient(ropt)
	defer rdb.Close()
	keys := rediskey.New(prefix)
	var mat materializer.Materializer = materializer.Noop{}
	if matKind == "test" {
		mat = &materializer.Test{Config: matCfg, Redis: rdb, LogKey: keys.MaterializerCalls()}
	}
	host, _ := os.Hostname()
	w := &worker.Worker{
		DB:            db,
		Redis:         rdb,
		Keys:          keys,
		Relay:         relay.New(db, stream.New(rdb, keys), log),
		Materializer:  mat,
		Queue:         queue,
		Log:           log,
		ID:            fmt.Sprintf("%s:%d:%s", host, os.Getpid(), uuid.NewString()[:8]),
		SweepInterval: sweep,
		DrainLease:    lease,
	}
	cfg := w.ServerConfig()
	cfg.Concurrency = concurrency
	srv := asynq.NewServerFromRedisClient(rdb, cfg)
	if err := srv.Start(w.Mux()); err != nil {
		return err
	}
	log.Info("worker started", "id", w.ID, "queue", queue, "materializer", matKind)
	loops := make(chan error, 1)
	go func() { loops <- w.Run(ctx) }()
	<-ctx.Done()
	log.Info("worker shutting down")
	srv.Shutdown() // waits for in-flight tasks up to ShutdownTimeout
	return <-loops
}
