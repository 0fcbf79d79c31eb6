package postgres

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/decnet/mazenet/internal/domain"
)

// Idempotency keys (SYSTEM §3.9, CONTRACTS "Idempotency"). A client that
// sends `Idempotency-Key` on a mutating POST may send the same request again
// (its first attempt timed out, its connection broke) and get the first
// answer back instead of a second effect. A key is scoped per user and per
// route (method and pattern) and remembered for IdempotencyTTL; the row
// holds the SHA-256 of the canonical request (the api computes it) and the
// response, status and body, exactly as first sent.
//
// The key is recorded where the effect is, so no crash can split them:
//
//   - EnqueueMutation inserts the key, complete with its 202 response, in
//     the very statement that inserts the mutation (the response is known
//     before: the mutation id is chosen by the caller's side). A concurrent
//     retry queues behind the first statement's topology row lock, then
//     finds the key and replays it.
//   - CreateBlankTopology inserts the key first in its transaction and fills
//     in the 201 response at the end, in the same transaction; a concurrent
//     retry waits on the uncommitted key, then replays it.
//   - Deploy and teardown write nothing in Postgres: their effect is a task
//     in Redis. They reserve the key (ReserveIdempotencyKey: a row without a
//     response, "in flight", which a retry answers with 409), queue the task,
//     then complete the row with the response (CompleteIdempotencyKey) or,
//     when the request failed, release it (ReleaseIdempotencyKey) so the key
//     can be used again. A crash between queueing and completing leaves the
//     reservation in flight; after IdempotencyInFlightTTL a retry with the
//     same request takes it over and runs again. That cannot double the
//     effect: a deploy or teardown task only acts on a topology in a status
//     that allows it, under its row lock, so a second task is a no-op.
//
// Only requests that changed something are remembered. A refused request
// (404, 409, 422, 503 ...) wrote nothing, so it records nothing either: the
// key stays free and the client may retry the same request or fix it.
//
// Expired rows are ignored and deleted lazily by the write that meets them,
// and in batches by the worker's sweep (PruneIdempotencyKeys).

// IdempotencyTTL is how long a key's response is replayed.
const IdempotencyTTL = 24 * time.Hour

// IdempotencyInFlightTTL is the age after which a reservation whose request
// never completed (its api process died) may be taken over by a retry of the
// same request. Every api request ends well within it (web.RequestTimeout).
const IdempotencyInFlightTTL = time.Minute

// IdempotencyKey identifies one use of an Idempotency-Key: whose, on which
// route ("POST /api/v1/topologies/{id}/mutations"), the key itself, and the
// SHA-256 of the canonical request it was sent with.
type IdempotencyKey struct {
	UserUUID string
	Route    string
	Key      string
	Hash     []byte
}

// Response is a response as first sent: what a replay answers.
type Response struct {
	Status int
	Body   []byte
}

// Idempotent asks a write to record its response under a key, atomically
// with the write. Respond renders the response from the write's result (the
// created mutation or topology).
type Idempotent[T any] struct {
	IdempotencyKey
	Respond func(T) (Response, error)
}

// Replay is the error a keyed write returns when the key already holds a
// response to the same request: nothing was written, and the caller answers
// Response (marked as a replay) instead.
type Replay struct{ Response Response }

// Error implements error; a Replay is not a failure, but it must stop the
// caller like one.
func (r *Replay) Error() string {
	return fmt.Sprintf("postgres: idempotent replay of a %d response", r.Response.Status)
}

// ErrKeyReused is the 422 of a key sent again with a different request.
var ErrKeyReused = domain.Errorf(domain.EUnprocessable,
	"Idempotency-Key was already used with a different request (method, path or body); use a new key")

// ErrKeyInFlight is the 409 of a key whose first request is still running.
var ErrKeyInFlight = domain.Errorf(domain.EConflict,
	"A request with this Idempotency-Key is still in progress; retry later")

// errKeyExpired means an expired key was found (and deleted): the write
// runs again.
var errKeyExpired = errors.New("postgres: idempotency key expired")

// errKeyFree means the key was free after all (its holder rolled back or
// expired): the write runs again.
var errKeyFree = errors.New("postgres: idempotency key free")

// idempotencyKeyPK is the primary key constraint whose violation means "this
// key is taken".
const idempotencyKeyPK = "idempotency_keys_pkey"

// isKeyTaken reports whether err is the violation of idempotencyKeyPK.
func isKeyTaken(err error) bool {
	var pe *pq.Error
	return errors.As(err, &pe) && pe.Code == codeUniqueViolation && pe.Constraint == idempotencyKeyPK
}

// resolveKey answers a keyed request whose key turned out to be taken (or
// whose write matched nothing): a *Replay when the key holds a response to
// the same request, ErrKeyReused for another request, ErrKeyInFlight while
// its first request runs; errKeyExpired when it had expired (it is deleted
// now) and errKeyFree when there is no such key, both of which mean "run the
// write again".
func (db *DB) resolveKey(ctx context.Context, k IdempotencyKey) error {
	var row struct {
		Hash    []byte `db:"request_hash"`
		Status  *int   `db:"status"`
		Body    []byte `db:"body"`
		Expired bool   `db:"expired"`
	}
	err := db.GetContext(ctx, &row, `
SELECT request_hash, status, body, created_at < now() - $4 * interval '1 millisecond' AS expired
  FROM idempotency_keys WHERE user_uuid = $1 AND route = $2 AND key = $3`,
		k.UserUUID, k.Route, k.Key, IdempotencyTTL.Milliseconds())
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return errKeyFree
	case err != nil:
		return fmt.Errorf("postgres: read idempotency key: %w", err)
	case row.Expired:
		if _, err := db.ExecContext(ctx, `DELETE FROM idempotency_keys
			WHERE user_uuid = $1 AND route = $2 AND key = $3 AND created_at < now() - $4 * interval '1 millisecond'`,
			k.UserUUID, k.Route, k.Key, IdempotencyTTL.Milliseconds()); err != nil {
			return fmt.Errorf("postgres: delete expired idempotency key: %w", err)
		}
		return errKeyExpired
	case !bytes.Equal(row.Hash, k.Hash):
		return ErrKeyReused
	case row.Status == nil:
		return ErrKeyInFlight
	}
	return &Replay{Response: Response{Status: *row.Status, Body: row.Body}}
}

// keyAttempts bounds how often a keyed write runs again after meeting an
// expired key or one that vanished between the write and the look-up.
const keyAttempts = 3

// keyed runs write, which records k (when k is not nil) in its own
// transaction, and turns "key taken" into the answer the retry gets
// (resolveKey), running write again when the key was expired or free.
func (db *DB) keyed(ctx context.Context, k *IdempotencyKey, write func() error) error {
	for attempt := 1; ; attempt++ {
		err := write()
		if k == nil || !isKeyTaken(err) {
			return err
		}
		if err := db.resolveKey(ctx, *k); !runAgain(err) {
			return err
		} else if attempt == keyAttempts {
			return ErrKeyInFlight // the key keeps changing hands: let the client retry
		}
	}
}

// runAgain reports whether resolveKey's answer means "the key is free now:
// run the write again".
func runAgain(err error) bool { return errors.Is(err, errKeyExpired) || errors.Is(err, errKeyFree) }

// insertKeyTx records k in flight inside tx, first, so that a concurrent
// request with the same key waits for tx and then sees its outcome.
// respondKeyTx completes it before tx commits.
func insertKeyTx(ctx context.Context, tx *sqlx.Tx, k IdempotencyKey) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO idempotency_keys (user_uuid, route, key, request_hash)
		VALUES ($1, $2, $3, $4)`, k.UserUUID, k.Route, k.Key, k.Hash); err != nil {
		return fmt.Errorf("postgres: record idempotency key: %w", err)
	}
	return nil
}

// respondKeyTx stores the response of the key insertKeyTx recorded in tx.
func respondKeyTx(ctx context.Context, tx *sqlx.Tx, k IdempotencyKey, resp Response) error {
	if _, err := tx.ExecContext(ctx, `UPDATE idempotency_keys SET status = $4, body = $5
		WHERE user_uuid = $1 AND route = $2 AND key = $3`, k.UserUUID, k.Route, k.Key, resp.Status, resp.Body); err != nil {
		return fmt.Errorf("postgres: record idempotent response: %w", err)
	}
	return nil
}

// Reservation is a key reserved by ReserveIdempotencyKey; token (the row's
// created_at) tells this reservation from a later take-over.
type Reservation struct {
	IdempotencyKey
	token time.Time
}

// ReserveIdempotencyKey reserves k for a request whose effect is outside
// Postgres (deploy, teardown). The key is taken when it is new, expired, or
// in flight for longer than IdempotencyInFlightTTL with the same request
// (its api process died). Otherwise the answer is the one resolveKey gives:
// a *Replay, ErrKeyReused or ErrKeyInFlight.
func (db *DB) ReserveIdempotencyKey(ctx context.Context, k IdempotencyKey) (*Reservation, error) {
	for attempt := 1; ; attempt++ {
		var token time.Time
		err := db.GetContext(ctx, &token, `
INSERT INTO idempotency_keys (user_uuid, route, key, request_hash) VALUES ($1, $2, $3, $4)
ON CONFLICT (user_uuid, route, key) DO UPDATE
   SET request_hash = EXCLUDED.request_hash, status = NULL, body = NULL, created_at = now()
 WHERE idempotency_keys.created_at < now() - $5 * interval '1 millisecond'
    OR (idempotency_keys.status IS NULL AND idempotency_keys.request_hash = EXCLUDED.request_hash
        AND idempotency_keys.created_at < now() - $6 * interval '1 millisecond')
RETURNING created_at`, k.UserUUID, k.Route, k.Key, k.Hash,
			IdempotencyTTL.Milliseconds(), IdempotencyInFlightTTL.Milliseconds())
		if err == nil {
			return &Reservation{IdempotencyKey: k, token: token}, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("postgres: reserve idempotency key: %w", err)
		}
		if err := db.resolveKey(ctx, k); !runAgain(err) {
			return nil, err
		} else if attempt == keyAttempts {
			return nil, ErrKeyInFlight
		}
	}
}

// ErrReservationLost means a reservation was taken over (or pruned) before
// its request completed: the response was not stored.
var ErrReservationLost = errors.New("postgres: idempotency key reservation lost")

// CompleteIdempotencyKey stores the response of a reserved key's request,
// which retries then replay. ErrReservationLost when the reservation is no
// longer this one.
func (db *DB) CompleteIdempotencyKey(ctx context.Context, r *Reservation, resp Response) error {
	res, err := db.ExecContext(ctx, `UPDATE idempotency_keys SET status = $5, body = $6
		WHERE user_uuid = $1 AND route = $2 AND key = $3 AND created_at = $4 AND status IS NULL`,
		r.UserUUID, r.Route, r.Key, r.token, resp.Status, resp.Body)
	if err != nil {
		return fmt.Errorf("postgres: complete idempotency key: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrReservationLost
	}
	return nil
}

// ReleaseIdempotencyKey frees a reserved key whose request failed (it
// changed nothing, or nothing a second attempt could double), so the client
// may use the key again. Releasing a lost reservation is a no-op.
func (db *DB) ReleaseIdempotencyKey(ctx context.Context, r *Reservation) error {
	if _, err := db.ExecContext(ctx, `DELETE FROM idempotency_keys
		WHERE user_uuid = $1 AND route = $2 AND key = $3 AND created_at = $4 AND status IS NULL`,
		r.UserUUID, r.Route, r.Key, r.token); err != nil {
		return fmt.Errorf("postgres: release idempotency key: %w", err)
	}
	return nil
}

// PruneIdempotencyKeys deletes at most limit keys older than IdempotencyTTL
// (completed or not) and reports how many it deleted; the worker's sweep
// runs it, and the bound keeps each call short.
func (db *DB) PruneIdempotencyKeys(ctx context.Context, limit int) (int64, error) {
	res, err := db.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE (user_uuid, route, key) IN (
		SELECT user_uuid, route, key FROM idempotency_keys WHERE created_at < now() - $1 * interval '1 millisecond'
		 LIMIT $2)`, IdempotencyTTL.Milliseconds(), limit)
	if err != nil {
		return 0, fmt.Errorf("postgres: prune idempotency keys: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("postgres: prune idempotency keys: %w", err)
	}
	return n, nil
}
