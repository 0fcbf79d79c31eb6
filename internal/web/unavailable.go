package web

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/lib/pq"
	"github.com/redis/go-redis/v9"
)

// Unavailable reports whether err says that a dependency could not serve the
// request (PostgreSQL or Redis unreachable, restarting, failing over, or
// slower than the request's deadline) rather than that the request or our
// code is wrong. The edge answers such an error 503 with Retry-After instead
// of 500 (SYSTEM §3.7). This is the one place that knows what an outage looks
// like; the stores only wrap their drivers' errors with %w.
//
// Recognised: PostgreSQL errors of class 08 (connection exception), 57P01–03
// (admin or crash shutdown, cannot connect now: "the database system is
// starting up / shutting down"), 57014 (statement cancelled, which is what
// lib/pq reports when the request's deadline cancels a query), 53300 (too
// many connections) and 25006 (read-only transaction: a failover left the
// pool on a standby); Redis LOADING, READONLY, MASTERDOWN, CLUSTERDOWN,
// TRYAGAIN, a pool timeout and a closed client; and for both, a refused,
// reset or broken connection, io.EOF and io.ErrUnexpectedEOF from the
// connection, driver.ErrBadConn, any net.Error (dial and read timeouts), and
// an ended context (the request's deadline, or a client that left).
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var pe *pq.Error
	if errors.As(err, &pe) {
		return postgresUnavailable(pe.Code)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrClosed),
		redis.IsLoadingError(err), redis.IsReadOnlyError(err), redis.IsMasterDownError(err),
		redis.IsClusterDownError(err), redis.IsTryAgainError(err):
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "the database system is starting up") ||
		strings.Contains(msg, "the database system is shutting down")
}

// postgresUnavailable reports whether a SQLSTATE means the server could not
// serve, as opposed to refusing the statement.
func postgresUnavailable(code pq.ErrorCode) bool {
	switch code {
	case "57P01", // admin_shutdown
		"57P02", // crash_shutdown
		"57P03", // cannot_connect_now: starting up, shutting down, in recovery
		"57014", // query_canceled: our deadline, or statement_timeout
		"53300", // too_many_connections
		"25006": // read_only_sql_transaction: connected to a standby after a failover
		return true
	}
	return code.Class() == "08" // connection_exception
}
