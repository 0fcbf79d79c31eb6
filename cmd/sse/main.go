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
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/rediskey"
	"github.com/decnet/mazenet/internal/stream"
	"github.com/decnet/mazenet/sse"
)

// Defaults for a developer's machine.
const (
	defaultPort        = 8081
	defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/mazenet?sslmode=disable"
	defaultRedisURL    = "redis://127.0.0.1:6379/0"
	// devJWTSecret stands in for DECNET_JWT_SECRET when DECNET_DEV=true; it
	// is the api's development secret, so tokens it issues verify here.
	devJWTSecret = "mazenet-development-secret-do-not-use-in-production"
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

// config is everything the process reads from the environment.
type config struct {
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
func loadConfig(get func(string) string) (*config, error) {
	e := &env{get: get}
	dev := e.boolean("DECNET_DEV", false)
	cfg := &config{
		port:         e.integer("PORT", defaultPort, 0),
		databaseURL:  e.str("DATABASE_URL", defaultDatabaseURL),
		prefix:       e.str("DECNET_REDIS_PREFIX", rediskey.DefaultPrefix),
		maxPerUser:   e.integer("DECNET_SSE_MAX_PER_USER", sse.DefaultMaxPerUser, 1),
		origins:      e.list("DECNET_ALLOWED_ORIGINS"),
		metricsToken: e.str("DECNET_METRICS_TOKEN", ""),
		keepalive:    e.duration("DECNET_SSE_KEEPALIVE", sse.DefaultKeepalive),
		slotLease:    e.duration("DECNET_SSE_SLOT_LEASE", sse.DefaultSlotLease),
	}
	cfg.redis = e.redisOptions()
	cfg.jwtSecret = []byte(e.get("DECNET_JWT_SECRET"))
	switch {
	case len(cfg.jwtSecret) == 0 && dev:
		cfg.jwtSecret = []byte(devJWTSecret)
	case len(cfg.jwtSecret) < auth.MinSecretLen:
		e.fail("DECNET_JWT_SECRET", "required, at least %d bytes", auth.MinSecretLen)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(e.str("DECNET_LOG_LEVEL", "info"))); err != nil {
		e.fail("DECNET_LOG_LEVEL", "one of debug, info, warn, error")
	}
	if cfg.keepalive == 0 {
		e.fail("DECNET_SSE_KEEPALIVE", "must be positive")
	}
	if cfg.slotLease < 3*time.Second {
		e.fail("DECNET_SSE_SLOT_LEASE", "must be at least 3s")
	}
	if e.err != nil {
		return nil, e.err
	}
	cfg.log = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	return cfg, nil
}

// run serves until SIGTERM or SIGINT, then drains.
func run(cfg *config) error {
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

// env reads variables and keeps the first error, naming its variable.
type env struct {
	get func(string) string
	err error
}

func (e *env) fail(name, format string, args ...any) {
	if e.err == nil {
		e.err = fmt.Errorf("config: %s: %s", name, fmt.Sprintf(format, args...))
	}
}

func (e *env) str(name, def string) string {
	if v := strings.TrimSpace(e.get(name)); v != "" {
		return v
	}
	return def
}

func (e *env) integer(name string, def, min int) int {
	v := strings.TrimSpace(e.get(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.fail(name, "not an integer: %q", v)
		return def
	}
	if n < min {
		e.fail(name, "must be at least %d, got %d", min, n)
		return def
	}
	return n
}

func (e *env) boolean(name string, def bool) bool {
	v := strings.TrimSpace(e.get(name))
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.fail(name, "not a boolean: %q", v)
		return def
	}
	return b
}

func (e *env) duration(name string, def time.Duration) time.Duration {
	v := strings.TrimSpace(e.get(name))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		e.fail(name, "not a duration like 15s: %q", v)
		return def
	}
	return d
}

func (e *env) list(name string) []string {
	var out []string
	for _, s := range strings.Split(e.get(name), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// redisOptions parses REDIS_URL (rediss:// enables TLS) and sizes the pool:
// at most redisPoolSize connections in all, pipelines included.
func (e *env) redisOptions() *redis.Options {
	opt, err := redis.ParseURL(e.str("REDIS_URL", defaultRedisURL))
	if err != nil {
		e.fail("REDIS_URL", "not a redis:// or rediss:// URL")
		opt, _ = redis.ParseURL(defaultRedisURL)
	}
	if e.boolean("DECNET_REDIS_TLS_SKIP_VERIFY", false) {
		if opt.TLSConfig == nil {
			opt.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		opt.TLSConfig.InsecureSkipVerify = true
	}
	opt.PoolSize = redisPoolSize
	opt.MaxActiveConns = redisPoolSize
	opt.PipelinePoolSize = -1 // pipelines share the main pool: one bound for all
	opt.ClientName = fmt.Sprintf("mazenet-sse-%d", os.Getpid())
	return opt
}
