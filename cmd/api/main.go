// Command api is the `web` process: the REST API under /api/v1, the
// dashboard, /metrics and the asynq monitoring UI. Configuration comes only
// from the environment (SYSTEM §2); see README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/api"
	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/config"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/rediskey"
	"github.com/decnet/mazenet/internal/relay"
	"github.com/decnet/mazenet/internal/stream"
	"github.com/decnet/mazenet/tasks"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(1)
	}
}

func run() error {
	env := config.New(os.Getenv)
	log := config.NewLogger(os.Stderr, env.LogLevel())
	dev := env.Bool("DECNET_DEV", false)
	port := env.Int("PORT", 8080, 0, config.MaxPort)
	dsn := env.DatabaseURL()
	ropt := env.Redis(0)
	secret := env.JWTSecret(dev, auth.MinSecretLen)
	ttl := time.Duration(env.Int("DECNET_JWT_EXP_MINUTES", 240, 1, 10080)) * time.Minute
	prefix := env.String("DECNET_REDIS_PREFIX", rediskey.DefaultPrefix)
	queue := env.String("DECNET_QUEUE", tasks.DefaultQueue)
	ssePublic := env.String("DECNET_SSE_PUBLIC_URL", "")
	metricsToken := env.String("DECNET_METRICS_TOKEN", "")
	trustProxy := env.Bool("DECNET_TRUST_PROXY", false)
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
	streams := stream.New(rdb, keys)
	client := asynq.NewClientFromRedisClient(rdb)

	s := &api.Server{
		DB:                db,
		Redis:             rdb,
		Keys:              keys,
		Tokens:            auth.NewTokens(secret, ttl),
		Tickets:           auth.NewTickets(rdb, keys),
		Relay:             relay.New(db, streams, log),
		Tasks:             client,
		Queue:             queue,
		Log:               log,
		DevMode:           dev,
		SSEPublicURL:      ssePublic,
		TrustProxyHeaders: trustProxy,
		MetricsToken:      metricsToken,
		AsynqRedis:        ropt,
	}
	srv := &http.Server{
		Addr:              fmt.Sprintf(":%d", port),
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("api listening", "port", port, "dev", dev)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("api shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

var _ = slog.Default
