// Package config holds the helpers every process uses to parse the
// environment variables of SYSTEM §2 into its Config. It only parses: each
// process package (api, worker, sse) has one ParseConfig taking a getter,
// and only cmd/ hands it os.Getenv. Every helper checks its value (every
// number and duration against a range), so a bad value stops the process at
// start with one clear line naming the variable.
package config

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults for a developer's machine (what `make run` uses).
const (
	DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/mazenet?sslmode=disable"
	DefaultRedisURL    = "redis://127.0.0.1:6379/0"
)

// maxPort is the highest TCP port; PORT=0 asks the kernel for a free one.
const maxPort = 65535

// Env reads variables through Get and keeps the first error, so a
// ParseConfig can read everything and then check once.
type Env struct {
	Get func(string) string
	err error
}

// New returns an Env reading through get (os.Getenv in cmd/, a map in tests).
func New(get func(string) string) *Env { return &Env{Get: get} }

// Err returns the first bad variable met, as "config: NAME: what is wrong".
func (e *Env) Err() error { return e.err }

// Fail records a bad variable (the first one wins). ParseConfig functions
// use it for checks that involve more than one value.
func (e *Env) Fail(name, format string, args ...any) {
	if e.err == nil {
		e.err = fmt.Errorf("config: %s: %s", name, fmt.Sprintf(format, args...))
	}
}

// String returns the variable or def when unset or empty.
func (e *Env) String(name, def string) string {
	if v := strings.TrimSpace(e.Get(name)); v != "" {
		return v
	}
	return def
}

// OneOf returns the variable, which must be one of allowed, or def when
// unset.
func (e *Env) OneOf(name, def string, allowed ...string) string {
	v := e.String(name, def)
	if !slices.Contains(allowed, v) {
		e.Fail(name, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
		return def
	}
	return v
}

// Int parses an integer variable that must lie in [min, max].
func (e *Env) Int(name string, def, min, max int) int {
	v := strings.TrimSpace(e.Get(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.Fail(name, "not an integer: %q", v)
		return def
	}
	if n < min || n > max {
		e.Fail(name, "must be between %d and %d, got %d", min, max, n)
		return def
	}
	return n
}

// Bool parses true/false/1/0 (empty means def).
func (e *Env) Bool(name string, def bool) bool {
	v := strings.TrimSpace(e.Get(name))
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.Fail(name, "not a boolean: %q", v)
		return def
	}
	return b
}

// Duration parses a Go duration ("10s", "250ms") that must lie in
// [min, max]. A bare number is refused: "10" could mean anything.
func (e *Env) Duration(name string, def, min, max time.Duration) time.Duration {
	v := strings.TrimSpace(e.Get(name))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		e.Fail(name, "not a duration like 10s: %q", v)
		return def
	}
	if d < min || d > max {
		e.Fail(name, "must be between %s and %s, got %s", FormatDuration(min), FormatDuration(max), FormatDuration(d))
		return def
	}
	return d
}

// FormatDuration prints d without zero tails ("1m", not "1m0s"), as the
// README's configuration table writes ranges.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Addr parses PORT (0–65535; 0 picks a free port) into a listen address.
func (e *Env) Addr(def int) string {
	return fmt.Sprintf(":%d", e.Int("PORT", def, 0, maxPort))
}

// List splits a comma-separated variable, dropping empty items.
func (e *Env) List(name string) []string {
	var out []string
	for _, s := range strings.Split(e.Get(name), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Redis parses REDIS_URL (redis:// or rediss://) and
// DECNET_REDIS_TLS_SKIP_VERIFY (Heroku Redis presents a self-signed
// certificate). poolSize 0 keeps go-redis's default.
func (e *Env) Redis(poolSize int) *redis.Options {
	raw := e.String("REDIS_URL", DefaultRedisURL)
	opt, err := redis.ParseURL(raw)
	if err != nil {
		e.Fail("REDIS_URL", "not a redis:// or rediss:// URL")
		opt, _ = redis.ParseURL(DefaultRedisURL)
	}
	if e.Bool("DECNET_REDIS_TLS_SKIP_VERIFY", false) {
		if opt.TLSConfig == nil {
			opt.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		opt.TLSConfig.InsecureSkipVerify = true
	}
	if poolSize > 0 {
		opt.PoolSize = poolSize
	}
	return opt
}

// DatabaseURL returns DATABASE_URL (its sslmode is honoured by lib/pq).
// Heroku's postgres:// URLs without sslmode get sslmode=require unless they
// point at localhost.
func (e *Env) DatabaseURL() string {
	u := e.String("DATABASE_URL", DefaultDatabaseURL)
	if !strings.Contains(u, "sslmode=") && !strings.Contains(u, "@127.0.0.1") && !strings.Contains(u, "@localhost") && !strings.Contains(u, "host=/") {
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		u += sep + "sslmode=require"
	}
	return u
}

// devJWTSecret stands in for DECNET_JWT_SECRET on a developer's machine
// (DECNET_DEV=true), so `make run` needs no secret; production never uses it.
const devJWTSecret = "mazenet-development-secret-do-not-use-in-production"

// JWTSecret returns DECNET_JWT_SECRET, which must be at least minLen bytes
// unless dev is set (then devJWTSecret stands in for a missing one). The
// value never appears in the error.
func (e *Env) JWTSecret(dev bool, minLen int) []byte {
	s := e.Get("DECNET_JWT_SECRET")
	if s == "" && dev {
		return []byte(devJWTSecret)
	}
	if len(s) < minLen {
		e.Fail("DECNET_JWT_SECRET", "required, at least %d bytes", minLen)
	}
	return []byte(s)
}

// LogLevel parses DECNET_LOG_LEVEL: debug, info, warn or error (default
// info).
func (e *Env) LogLevel() slog.Level {
	var lvl slog.Level
	v := e.String("DECNET_LOG_LEVEL", "info")
	if err := lvl.UnmarshalText([]byte(v)); err != nil {
		e.Fail("DECNET_LOG_LEVEL", "must be one of debug, info, warn, error, got %q", v)
		return slog.LevelInfo
	}
	return lvl
}

// NewLogger returns the processes' logger: JSON lines on w at level.
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// Highest DECNET_DB_MAX_CONNS accepted: far above any one Postgres's
// max_connections, below a typo.
const maxDBConns = 1000

// DBMaxConns parses DECNET_DB_MAX_CONNS, the most Postgres connections the
// process opens (1–1000); def is the process's own default. Every process's
// pool must fit, with the others', in the server's max_connections.
func (e *Env) DBMaxConns(def int) int {
	return e.Int("DECNET_DB_MAX_CONNS", def, 1, maxDBConns)
}
