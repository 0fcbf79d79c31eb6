// Package dbtest gives each test its own PostgreSQL schema and its own Redis
// key prefix (and asynq queue), so tests run in parallel against the real
// servers and never disturb each other or a running `make run`.
//
// The servers come from TEST_DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable) and
// TEST_REDIS_URL (default redis://127.0.0.1:6379/15). Schemas live in the
// database "mazenet_test", created on first use.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/migrations"
)

// TestDatabase is the database that holds the per-test schemas.
const TestDatabase = "mazenet_test"

// MaxConns is the Postgres pool of a test's store (New) and of the
// processes tests start in-process (DECNET_DB_MAX_CONNS): test packages run
// in parallel against one server whose max_connections is often 100.
const MaxConns = 4

// AdminURL is the server URL tests connect to for housekeeping.
func AdminURL() string {
	if v := os.Getenv("TEST_DATABASE_URL"); v != "" {
		return v
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// RedisURL is the Redis server (and DB) tests use.
func RedisURL() string {
	if v := os.Getenv("TEST_REDIS_URL"); v != "" {
		return v
	}
	return "redis://127.0.0.1:6379/15"
}

var createOnce sync.Once
var createErr error

// ensureDatabase creates mazenet_test once per test binary; a concurrent
// creation by another test binary is fine.
func ensureDatabase() error {
	createOnce.Do(func() {
		db, err := sql.Open("postgres", AdminURL())
		if err != nil {
			createErr = err
			return
		}
		defer db.Close()
		_, err = db.Exec(`CREATE DATABASE ` + TestDatabase)
		var pe *pq.Error
		if err != nil && !(asPQ(err, &pe) && (pe.Code == "42P04" || pe.Code == "23505")) {
			createErr = fmt.Errorf("dbtest: create database: %w", err)
		}
	})
	return createErr
}

func asPQ(err error, target **pq.Error) bool {
	pe, ok := err.(*pq.Error)
	if ok {
		*target = pe
	}
	return ok
}

// RandomName returns prefix followed by 12 random hex characters.
func RandomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// URL returns a DSN for a fresh, migrated schema that is dropped when t ends.
// Use it to start real processes (cmd/...) against the test schema.
func URL(t testing.TB) string {
	t.Helper()
	if err := ensureDatabase(); err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	schema := RandomName("t_")
	u, err := url.Parse(AdminURL())
	if err != nil {
		t.Fatalf("dbtest: parse TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + TestDatabase
	base := u.String()
	admin, err := sql.Open("postgres", base)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	defer admin.Close()
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("dbtest: create schema: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("postgres", base)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	dsn := u.String()
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := migrations.Up(ctx, db); err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return dsn
}

// New returns a store on a fresh, migrated schema, closed and dropped when t ends.
func New(t testing.TB) *postgres.DB {
	t.Helper()
	dsn := URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := postgres.OpenPool(ctx, dsn, MaxConns)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Redis is one test's slice of Redis: a client, a unique key prefix for every
// mazenet key and a unique asynq queue name. Its keys are deleted when the test
// ends (never FLUSHALL / FLUSHDB).
type Redis struct {
	Client *redis.Client
	URL    string
	Prefix string
	Queue  string
}

// NewRedis returns an isolated Redis slice for t.
func NewRedis(t testing.TB) *Redis {
	t.Helper()
	opt, err := redis.ParseURL(RedisURL())
	if err != nil {
		t.Fatalf("dbtest: parse TEST_REDIS_URL: %v", err)
	}
	c := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("dbtest: redis: %v", err)
	}
	id := RandomName("")
	r := &Redis{Client: c, URL: RedisURL(), Prefix: "mzt:" + id + ":", Queue: "t_" + id}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, pattern := range []string{r.Prefix + "*", "asynq:{" + r.Queue + "}*"} {
			iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
			var keys []string
			for iter.Next(ctx) {
				keys = append(keys, iter.Val())
			}
			if len(keys) > 0 {
				c.Del(ctx, keys...)
			}
		}
		c.SRem(ctx, "asynq:queues", r.Queue)
		c.Close()
	})
	return r
}

// Options returns the go-redis options for this slice's server.
func (r *Redis) Options() *redis.Options {
	opt, _ := redis.ParseURL(r.URL)
	return opt
}
