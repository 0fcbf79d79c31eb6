// Command sse is the `sse` process: the SSE fan-out for
// GET /api/v1/topologies/{id}/events and GET /api/v1/stream (DOMAIN §10,
// SYSTEM §4). Configuration comes only from the environment:
//
//	PORT                          listen port (default 8081)
//	DATABASE_URL                  Postgres URL; its sslmode is honoured
//	                              (default postgres://postgres@127.0.0.1:5432/mazenet?sslmode=disable)
//	REDIS_URL                     redis:// or rediss:// (TLS) (default redis://127.0.0.1:6379/0)
//	DECNET_REDIS_TLS_SKIP_VERIFY  true to accept Heroku Redis's self-signed certificate
//	DECNET_REDIS_PREFIX           prefix of every Redis key (default "decnet:")
//	DECNET_JWT_SECRET             HS256 secret shared with the api, ≥ 32 bytes
//	                              (may be unset when DECNET_DEV=true: the development secret)
//	DECNET_DEV                    true on a developer's machine only
//	DECNET_SSE_MAX_PER_USER       per-user connection cap across all SSE processes (default 5, ≥ 1)
//	DECNET_ALLOWED_ORIGINS        comma-separated origins that get CORS headers
//	DECNET_METRICS_TOKEN          optional bearer token that may read /metrics (admins' JWTs always may)
//	DECNET_SSE_KEEPALIVE          silence before `: keepalive` (Go duration, default 15s; tests shorten it)
//	DECNET_SSE_SLOT_LEASE         lifetime of an unrefreshed slot (Go duration, default 45s;
//	                              tests shorten it to watch a killed process's slots expire)
//	DECNET_LOG_LEVEL              debug, info, warn or error (default info)
//
// A bad variable stops the process at start with one line naming it. On
// SIGTERM the process stops accepting, sends every client `retry:` and ends
// its stream, releases its slots and exits within 10 s.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/config"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/rediskey"
	"github.com/decnet/mazenet/internal/stream"
	"github.com/decnet/mazenet/sse"
)

// Defaults for a developer's machine.
const (
	defaultPort        = 8081
	// redisPoolSize bounds the Redis connections of the process (SYSTEM §4):
	// the shared reader holds one, handshakes and lease refreshes use short
	// commands on the rest.
	redisPoolSize = 16
	// postgresPoolSize bounds the process's Postgres connections.
	postgresPoolSize = 8
	// shutdownTimeout and readerStopTimeout keep the whole drain inside the
	// 10 s this process promises (and Heroku's 30 s).
	shutdownTimeout   = 6 * time.Second
	readerStopTimeout = 2500 * time.Millisecond
)

func main() {
	cfg, err := loadConfig(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sse:", err)
		os.Exit(1)
	}
	if err := run(cfg); err != nil {
		cfg.log.Error("sse: exit", "err", err)
		os.Exit(1)
	}
}

// settings is everything the process reads from the environment.
type settings struct {
	port         int
	databaseURL  string
	redis        *redis.Options
	prefix       string
	jwtSecret    []byte
	maxPerUser   int
	origins      []string
	metricsToken string
	keepalive    time.Duration
	slotLease    time.Duration
	log          *slog.Logger
}

// loadConfig reads and checks the environment through get.
func loadConfig(get func(string) string) (*settings, error) {
	e := &config.Env{Get: get}
	dev := e.Bool("DECNET_DEV", false)
	cfg := &settings{
		port:         e.Int("PORT", defaultPort, 0),
		databaseURL:  e.DatabaseURL(),
		redis:        e.Redis(redisPoolSize),
		prefix:       e.String("DECNET_REDIS_PREFIX", rediskey.DefaultPrefix),
		jwtSecret:    e.JWTSecret(dev, auth.MinSecretLen),
		maxPerUser:   e.Int("DECNET_SSE_MAX_PER_USER", sse.DefaultMaxPerUser, 1),
		origins:      e.List("DECNET_ALLOWED_ORIGINS"),
		metricsToken: e.String("DECNET_METRICS_TOKEN", ""),
		keepalive:    e.Duration("DECNET_SSE_KEEPALIVE", sse.DefaultKeepalive),
		slotLease:    e.Duration("DECNET_SSE_SLOT_LEASE", sse.DefaultSlotLease),
		log:          e.Logger(),
	}
	if e.Err() == nil && cfg.keepalive == 0 {
		return nil, fmt.Errorf("config: DECNET_SSE_KEEPALIVE: must be positive")
	}
	if e.Err() == nil && cfg.slotLease < 3*time.Second {
		return nil, fmt.Errorf("config: DECNET_SSE_SLOT_LEASE: must be at least 3s")
	}
	if err := e.Err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// run serves until SIGTERM or SIGINT, then drains.
func run(cfg *settings) error {
	log := cfg.log
	sigCtx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	octx, cancel := context.WithTimeout(sigCtx, 15*time.Second)
	db, err := postgres.Open(octx, cfg.databaseURL)
	cancel()
	if err != nil {
		return err
	}
	defer db.Close()
	// Handshakes run two short queries and snapshots one read-only
	// transaction: a small pool serves thousands of clients, and many sse
	// processes must fit in one Postgres's max_connections.
	db.SetMaxOpenConns(postgresPoolSize)
	db.SetMaxIdleConns(postgresPoolSize)
	rdb := redis.NewClient(cfg.redis)
	defer rdb.Close()
	keys := rediskey.New(cfg.prefix)

	srv := &sse.Server{
		DB:             db,
		Redis:          rdb,
		Keys:           keys,
		Streams:        stream.New(rdb, keys),
		Tokens:         auth.NewTokens(cfg.jwtSecret, 0),
		Tickets:        auth.NewTickets(rdb, keys),
		Log:            log,
		MaxPerUser:     cfg.maxPerUser,
		Keepalive:      cfg.keepalive,
		SlotLease:      cfg.slotLease,
		AllowedOrigins: cfg.origins,
		MetricsToken:   cfg.metricsToken,
	}
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", cfg.port))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}

	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	runDone := make(chan error, 1)
	go func() { runDone <- srv.Run(runCtx) }()
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(ln) }()
	log.Info("sse listening", "addr", ln.Addr().String(), "max_per_user", cfg.maxPerUser, "pid", os.Getpid())

	select {
	case err := <-serveDone:
		return err
	case err := <-runDone:
		return err
	case <-sigCtx.Done():
	}
	log.Info("sse shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	stopRun()
	select {
	case <-runDone:
	case <-time.After(readerStopTimeout):
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("sse stopped")
	return nil
}

