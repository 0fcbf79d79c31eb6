package config

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// env returns an Env over vars.
func env(vars map[string]string) *Env {
	return New(func(k string) string { return vars[k] })
}

func TestIntRange(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		value string
		want  int
		err   string
	}{
		{"", 7, ""},
		{"1", 1, ""},
		{" 10 ", 10, ""},
		{"0", 7, "config: N: must be between 1 and 10, got 0"},
		{"11", 7, "config: N: must be between 1 and 10, got 11"},
		{"-3", 7, "config: N: must be between 1 and 10, got -3"},
		{"2.5", 7, `config: N: not an integer: "2.5"`},
		{"five", 7, `config: N: not an integer: "five"`},
	} {
		t.Run(tc.value, func(t *testing.T) {
			e := env(map[string]string{"N": tc.value})
			got := e.Int("N", 7, 1, 10)
			require.Equal(t, tc.want, got)
			if tc.err == "" {
				require.NoError(t, e.Err())
			} else {
				require.EqualError(t, e.Err(), tc.err)
			}
		})
	}
}

func TestDurationRange(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		value string
		want  time.Duration
		err   string
	}{
		{"", 15 * time.Second, ""},
		{"1s", time.Second, ""},
		{"30s", 30 * time.Second, ""},
		{"1ns", 15 * time.Second, "config: D: must be between 1s and 30s, got 1ns"},
		{"31s", 15 * time.Second, "config: D: must be between 1s and 30s, got 31s"},
		{"1m", 15 * time.Second, "config: D: must be between 1s and 30s, got 1m"},
		{"-5s", 15 * time.Second, "config: D: must be between 1s and 30s, got -5s"},
		{"10", 15 * time.Second, `config: D: not a duration like 10s: "10"`},
		{"soon", 15 * time.Second, `config: D: not a duration like 10s: "soon"`},
	} {
		t.Run(tc.value, func(t *testing.T) {
			e := env(map[string]string{"D": tc.value})
			got := e.Duration("D", 15*time.Second, time.Second, 30*time.Second)
			require.Equal(t, tc.want, got)
			if tc.err == "" {
				require.NoError(t, e.Err())
			} else {
				require.EqualError(t, e.Err(), tc.err)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0: "0s", 100 * time.Millisecond: "100ms", time.Second: "1s", 55 * time.Second: "55s",
		time.Minute: "1m", 10 * time.Minute: "10m", 90 * time.Second: "1m30s", time.Hour: "1h", 7 * 24 * time.Hour: "168h",
	} {
		require.Equal(t, want, FormatDuration(d), "%d", d)
	}
}

func TestFirstErrorWins(t *testing.T) {
	t.Parallel()
	e := env(map[string]string{"A": "x", "B": "y"})
	e.Int("A", 0, 0, 1)
	e.Bool("B", false)
	require.EqualError(t, e.Err(), `config: A: not an integer: "x"`)
}

func TestOtherHelpers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		vars map[string]string
		read func(e *Env) any
		want any
		err  string
	}{
		{"oneof default", nil, func(e *Env) any { return e.OneOf("M", "noop", "noop", "test") }, "noop", ""},
		{"oneof set", map[string]string{"M": "test"}, func(e *Env) any { return e.OneOf("M", "noop", "noop", "test") }, "test", ""},
		{"oneof bad", map[string]string{"M": "docker"}, func(e *Env) any { return e.OneOf("M", "noop", "noop", "test") }, "noop",
			`config: M: must be one of noop, test, got "docker"`},
		{"bool bad", map[string]string{"B": "maybe"}, func(e *Env) any { return e.Bool("B", false) }, false, `config: B: not a boolean: "maybe"`},
		{"addr default", nil, func(e *Env) any { return e.Addr(8080) }, ":8080", ""},
		{"addr zero", map[string]string{"PORT": "0"}, func(e *Env) any { return e.Addr(8080) }, ":0", ""},
		{"addr too high", map[string]string{"PORT": "65536"}, func(e *Env) any { return e.Addr(8080) }, ":8080",
			"config: PORT: must be between 0 and 65535, got 65536"},
		{"addr not a number", map[string]string{"PORT": "http"}, func(e *Env) any { return e.Addr(8080) }, ":8080", `config: PORT: not an integer: "http"`},
		{"list", map[string]string{"L": " a, ,b,"}, func(e *Env) any { return e.List("L") }, []string{"a", "b"}, ""},
		{"log level", map[string]string{"DECNET_LOG_LEVEL": "debug"}, func(e *Env) any { return e.LogLevel() }, slog.LevelDebug, ""},
		{"log level bad", map[string]string{"DECNET_LOG_LEVEL": "loud"}, func(e *Env) any { return e.LogLevel() }, slog.LevelInfo,
			`config: DECNET_LOG_LEVEL: must be one of debug, info, warn, error, got "loud"`},
		{"secret short", map[string]string{"DECNET_JWT_SECRET": "short"}, func(e *Env) any { return string(e.JWTSecret(false, 32)) }, "short",
			"config: DECNET_JWT_SECRET: required, at least 32 bytes"},
		{"secret dev", nil, func(e *Env) any { return string(e.JWTSecret(true, 32)) }, devJWTSecret, ""},
		{"redis bad", map[string]string{"REDIS_URL": "http://x"}, func(e *Env) any { return e.Redis(0).Addr }, "127.0.0.1:6379",
			"config: REDIS_URL: not a redis:// or rediss:// URL"},
		{"database local", nil, func(e *Env) any { return e.DatabaseURL() }, DefaultDatabaseURL, ""},
		{"database remote", map[string]string{"DATABASE_URL": "postgres://u:p@db.example:5432/d"}, func(e *Env) any { return e.DatabaseURL() },
			"postgres://u:p@db.example:5432/d?sslmode=require", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := env(tc.vars)
			require.Equal(t, tc.want, tc.read(e))
			if tc.err == "" {
				require.NoError(t, e.Err())
			} else {
				require.EqualError(t, e.Err(), tc.err)
			}
		})
	}
}

func TestRedisTLSSkipVerify(t *testing.T) {
	t.Parallel()
	e := env(map[string]string{"REDIS_URL": "rediss://h:6380/0", "DECNET_REDIS_TLS_SKIP_VERIFY": "true"})
	opt := e.Redis(16)
	require.NoError(t, e.Err())
	require.True(t, opt.TLSConfig.InsecureSkipVerify)
	require.Equal(t, 16, opt.PoolSize)
}

// DECNET_DB_MAX_CONNS has a range and a per-process default.
func TestDBMaxConns(t *testing.T) {
	t.Parallel()
	require.Equal(t, 8, env(nil).DBMaxConns(8))
	e := env(map[string]string{"DECNET_DB_MAX_CONNS": "4"})
	require.Equal(t, 4, e.DBMaxConns(32))
	require.NoError(t, e.Err())
	for _, bad := range []string{"0", "1001", "many"} {
		e := env(map[string]string{"DECNET_DB_MAX_CONNS": bad})
		require.Equal(t, 32, e.DBMaxConns(32))
		require.ErrorContains(t, e.Err(), "config: DECNET_DB_MAX_CONNS: ", bad)
	}
}
