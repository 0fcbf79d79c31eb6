// Package config parses the environment variables of SYSTEM §2 for the
// programs under cmd/. It only parses: each main reads os.Getenv through it,
// so a bad value stops the process at start with one clear line naming the
// variable.
package config

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
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

// Env reads variables through Get (os.Getenv by default) and collects the
// first error, so a main can read everything and then check once.
type Env struct {
	Get func(string) string
	err error
}

// FromOS returns an Env over the process environment.
func FromOS() *Env { return &Env{Get: os.Getenv} }

// Err returns the first bad variable met.
func (e *Env) Err() error { return e.err }

func (e *Env) fail(name, format string, args ...any) {
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

// Int parses an integer variable, requiring it to be at least min.
func (e *Env) Int(name string, def, min int) int {
	v := strings.TrimSpace(e.Get(name))
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

// Bool parses true/false/1/0 (empty means def).
func (e *Env) Bool(name string, def bool) bool {
	v := strings.TrimSpace(e.Get(name))
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

// Duration parses a Go duration ("10s", "250ms"); it must not be negative.
func (e *Env) Duration(name string, def time.Duration) time.Duration {
	v := strings.TrimSpace(e.Get(name))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		e.fail(name, "not a duration like 10s: %q", v)
		return def
	}
	return d
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
		e.fail("REDIS_URL", "not a redis:// or rediss:// URL")
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

// JWTSecret returns DECNET_JWT_SECRET, which must be at least minLen bytes
// unless dev is set (then a fixed development secret stands in for it).
func (e *Env) JWTSecret(dev bool, minLen int) []byte {
	s := e.Get("DECNET_JWT_SECRET")
	if s == "" && dev {
		return []byte("mazenet-development-secret-do-not-use-in-production")
	}
	if len(s) < minLen {
		e.fail("DECNET_JWT_SECRET", "required, at least %d bytes", minLen)
	}
	return []byte(s)
}

// Logger returns a JSON slog logger at DECNET_LOG_LEVEL (debug, info, warn,
// error; default info).
func (e *Env) Logger() *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(e.String("DECNET_LOG_LEVEL", "info"))); err != nil {
		e.fail("DECNET_LOG_LEVEL", "one of debug, info, warn, error")
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}
