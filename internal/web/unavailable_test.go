package web_test

import (
	"bufio"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/web"
)

// closedPort returns a local TCP port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}

// refusedPostgres is what lib/pq returns for a server that is not there.
func refusedPostgres(t *testing.T) error {
	t.Helper()
	db, err := sqlx.Open("postgres", fmt.Sprintf("postgres://postgres@127.0.0.1:%d/x?sslmode=disable", closedPort(t)))
	require.NoError(t, err)
	defer db.Close()
	var n int
	err = db.GetContext(context.Background(), &n, `SELECT 1`)
	require.Error(t, err)
	return fmt.Errorf("postgres: get: %w", err)
}

// refusedRedis is what go-redis returns for a server that is not there.
func refusedRedis(t *testing.T) error {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", closedPort(t)), MaxRetries: -1})
	defer rdb.Close()
	err := rdb.Get(context.Background(), "k").Err()
	require.Error(t, err)
	return fmt.Errorf("auth: redeem ticket: %w", err)
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	pgRefused, redisRefused := refusedPostgres(t), refusedRedis(t)
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain error", errors.New("boom"), false},
		{"domain not found", domain.ErrTopologyNotFound, false},
		{"postgres refused (real)", pgRefused, true},
		{"redis refused (real)", redisRefused, true},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, true},
		{"connection reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"broken pipe", fmt.Errorf("write: %w", syscall.EPIPE), true},
		{"bad conn", fmt.Errorf("postgres: list: %w", driver.ErrBadConn), true},
		{"conn done", sql.ErrConnDone, true},
		{"eof from the connection", fmt.Errorf("postgres: begin: %w", io.EOF), true},
		{"unexpected eof", io.ErrUnexpectedEOF, true},
		{"dial timeout", &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}, true},
		{"request deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{"client left", context.Canceled, true},
		{"pq class 08", &pq.Error{Code: "08006", Message: "connection failure"}, true},
		{"pq admin shutdown", &pq.Error{Code: "57P01"}, true},
		{"pq crash shutdown", &pq.Error{Code: "57P02"}, true},
		{"pq starting up", &pq.Error{Code: "57P03", Message: "the database system is starting up"}, true},
		{"pq statement cancelled by the deadline", fmt.Errorf("postgres: %w", &pq.Error{Code: "57014"}), true},
		{"pq too many connections", &pq.Error{Code: "53300"}, true},
		{"pq standby after failover", &pq.Error{Code: "25006"}, true},
		{"pq unique violation", &pq.Error{Code: "23505"}, false},
		{"pq syntax error", &pq.Error{Code: "42601"}, false},
		{"starting up, as text", errors.New("pq: the database system is starting up"), true},
		{"shutting down, as text", errors.New("FATAL: the database system is shutting down"), true},
		{"redis loading", redisReply(t, "LOADING Redis is loading the dataset in memory"), true},
		{"redis readonly", redisReply(t, "READONLY You can't write against a read only replica."), true},
		{"redis masterdown", redisReply(t, "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."), true},
		{"redis wrong type", redisReply(t, "WRONGTYPE Operation against a key holding the wrong kind of value"), false},
		{"redis pool timeout", fmt.Errorf("x: %w", redis.ErrPoolTimeout), true},
		{"redis closed client", redis.ErrClosed, true},
		{"redis nil", redis.Nil, false},
		{"internal domain error wrapping an outage", &domain.Error{Code: domain.EInternal, Message: "Could not queue", Err: redisRefused}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, web.Unavailable(tc.err), "%v", tc.err)
		})
	}
}

// redisReply is the error go-redis returns for a SET against a server that
// answers every command with the error reply msg.
func redisReply(t *testing.T, msg string) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					// One command: *<n>, then n pairs of $<len> and the bytes.
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
					for i := 0; i < 2*n; i++ {
						if _, err := br.ReadString('\n'); err != nil {
							return
						}
					}
					if _, err := c.Write([]byte("-" + msg + "\r\n")); err != nil {
						return
					}
				}
			}()
		}
	}()
	rdb := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), MaxRetries: -1, Protocol: 2, DisableIdentity: true})
	defer rdb.Close()
	err = rdb.Set(context.Background(), "k", "v", 0).Err()
	require.Error(t, err)
	return fmt.Errorf("sse: acquire slot: %w", err)
}

func TestStatus(t *testing.T) {
	t.Parallel()
	refused := fmt.Errorf("postgres: get: %w", syscall.ECONNREFUSED)
	cases := []struct {
		name string
		err  error
		want int
	}{
		{"invalid", domain.Errorf(domain.EInvalid, "x"), http.StatusBadRequest},
		{"unauthorized", domain.ErrUnauthorized, http.StatusUnauthorized},
		{"forbidden", domain.ErrForbidden, http.StatusForbidden},
		{"not found", domain.ErrTopologyNotFound, http.StatusNotFound},
		{"conflict", domain.VersionConflict(1, 2), http.StatusConflict},
		{"too large", domain.Errorf(domain.ETooLarge, "x"), http.StatusRequestEntityTooLarge},
		{"unprocessable", domain.Errorf(domain.EUnprocessable, "x"), http.StatusUnprocessableEntity},
		{"rate limited", domain.Errorf(domain.ERateLimited, "x"), http.StatusTooManyRequests},
		{"unavailable", domain.Errorf(domain.EUnavailable, "x"), http.StatusServiceUnavailable},
		{"internal", domain.Errorf(domain.EInternal, "x"), http.StatusInternalServerError},
		{"plain error", errors.New("boom"), http.StatusInternalServerError},
		{"outage", refused, http.StatusServiceUnavailable},
		{"outage wrapped in an internal domain error", &domain.Error{Code: domain.EInternal, Message: "x", Err: refused}, http.StatusServiceUnavailable},
		{"outage wrapped in a domain error of another code keeps that code", &domain.Error{Code: domain.ENotFound, Message: "x", Err: refused}, http.StatusNotFound},
		{"domain error wrapped by fmt", fmt.Errorf("api: %w", domain.ErrForbidden), http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, web.Status(tc.err))
		})
	}
}
