// Package postgres is mazenet's PostgreSQL store. Public methods own their
// transaction; helpers that take a *sqlx.Tx compose inside one. SQL sits
// inline beside the method that runs it and is always parameterised.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/decnet/mazenet/internal/domain"
)

// DB is the store: a pooled connection to one database (and schema).
type DB struct {
	*sqlx.DB
	// Now returns the current time; tests may replace it.
	Now func() time.Time
}

// DefaultMaxConns is the pool of an api or worker process when
// DECNET_DB_MAX_CONNS is unset: enough for a worker's 16 tasks and its
// loops, or an api's concurrent requests, with several processes inside one
// Postgres's max_connections.
const DefaultMaxConns = 32

// Open connects to dsn with a pool of DefaultMaxConns (OpenPool).
func Open(ctx context.Context, dsn string) (*DB, error) {
	return OpenPool(ctx, dsn, DefaultMaxConns)
}

// OpenPool connects to dsn, honouring sslmode and any search_path it
// carries, and checks the connection. The pool holds at most maxConns open
// connections and keeps as many idle (DECNET_DB_MAX_CONNS; tests use a few,
// so parallel packages fit in the server's max_connections).
func OpenPool(ctx context.Context, dsn string, maxConns int) (*DB, error) {
	x, err := sqlx.Open("postgres", dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	x.SetMaxOpenConns(maxConns)
	x.SetMaxIdleConns(maxConns)
	x.SetConnMaxIdleTime(5 * time.Minute)
	if err := x.PingContext(ctx); err != nil {
		x.Close()
		return nil, fmt.Errorf("postgres: ping: %w", err)
	}
	return &DB{DB: x, Now: time.Now}, nil
}

// InTx runs fn inside one transaction, committing when fn returns nil and
// rolling back otherwise. The commit error is returned, never dropped.
func (db *DB) InTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	return nil
}

// retryAttempts and retryBackoff bound inTxRetry: up to 10 attempts, the
// k-th waiting k×retryBackoff first (under a second in all).
const (
	retryAttempts = 10
	retryBackoff  = 20 * time.Millisecond
)

// inTxRetry is InTx for transactions that can lose a race they should
// simply run again after a short pause: a row lock they would not wait for
// (55P03, NOWAIT), a deadlock (40P01) or serialization failure (40001) that
// Postgres resolved by aborting this transaction, or errRetryEnd. fn must be
// safe to re-run (it is: each failed attempt's writes were rolled back).
func (db *DB) inTxRetry(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = db.InTx(ctx, fn)
		switch pgCode(err) {
		case codeLockNotAvailable, codeDeadlock, codeSerialization:
		default:
			if !errors.Is(err, errRetryEnd) {
				return err
			}
		}
		if attempt == retryAttempts {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * retryBackoff):
		}
	}
}

// pgCode returns the SQLSTATE of a lib/pq error, or "".
func pgCode(err error) string {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return string(pe.Code)
	}
	return ""
}

// SQLSTATE codes the store acts on.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
	codeSerialization       = "40001"
	codeDeadlock            = "40P01"
	codeLockNotAvailable    = "55P03"
)

// isUniqueViolation reports whether err is a unique-constraint violation.
func isUniqueViolation(err error) bool { return pgCode(err) == codeUniqueViolation }

// notFound maps sql.ErrNoRows-style absence to a domain 404.
func notFound(what string) error { return domain.Errorf(domain.ENotFound, "%s not found", what) }
