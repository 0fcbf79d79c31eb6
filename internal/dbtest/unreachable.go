package dbtest

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/postgres"
)

// closedPort returns a local TCP port that nothing listens on (it was free a
// moment ago and is closed again).
func closedPort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return port
}

// UnreachablePostgres returns a store whose server is down: every query
// fails to connect. It tests outage handling without touching the shared
// server.
func UnreachablePostgres(t testing.TB) *postgres.DB {
	t.Helper()
	x, err := sqlx.Open("postgres", fmt.Sprintf("postgres://postgres@127.0.0.1:%d/mazenet?sslmode=disable", closedPort(t)))
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(func() { x.Close() })
	return &postgres.DB{DB: x, Now: time.Now}
}

// UnreachableRedis returns a client whose server is down: every command
// fails to connect, at once (no retries).
func UnreachableRedis(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", closedPort(t)), MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}
