package postgres_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
)

// Routes the tests key on (what the api passes).
const (
	enqueueRoute = "POST /api/v1/topologies/{id}/mutations"
	deployRoute  = "POST /api/v1/topologies/{id}/deploy"
)

// idemKey is a key of user on route with the hash of request.
func idemKey(user, route, key, request string) postgres.IdempotencyKey {
	return idemKeyOf(user, route, key, request)
}

// idemKeyOf is idemKey for benchmarks too.
func idemKeyOf(user, route, key, request string) postgres.IdempotencyKey {
	h := sha256.Sum256([]byte(request))
	return postgres.IdempotencyKey{UserUUID: user, Route: route, Key: key, Hash: h[:]}
}

// keyedEnqueue enqueues add_lan name on tid under k; the recorded response
// is {"id": <mutation id>}.
func keyedEnqueue(db *postgres.DB, tid string, k postgres.IdempotencyKey, name string, expected *int) (*domain.Mutation, error) {
	m, _, err := db.EnqueueMutation(context.Background(), postgres.NewMutation{
		TopologyID: tid, Op: domain.OpAddLAN, Payload: json.RawMessage(`{"name": "` + name + `"}`), ExpectedVersion: expected,
		Idempotency: &postgres.Idempotent[*domain.Mutation]{IdempotencyKey: k, Respond: func(m *domain.Mutation) (postgres.Response, error) {
			return postgres.Response{Status: 202, Body: []byte(`{"id":"` + m.ID + `"}`)}, nil
		}},
	})
	return m, err
}

// replayOf returns the replayed response of err (failing when err is not a
// replay).
func replayOf(t *testing.T, err error) postgres.Response {
	t.Helper()
	var rep *postgres.Replay
	require.True(t, errors.As(err, &rep), "want a replay, got %v", err)
	return rep.Response
}

func countMutations(t *testing.T, db *postgres.DB, tid string) int {
	t.Helper()
	var n int
	require.NoError(t, db.Get(&n, `SELECT count(*) FROM mutations WHERE topology_id = $1`, tid))
	return n
}

// age moves a key's created_at back by d (the store uses the database
// clock, so tests age rows instead of moving a clock).
func age(t *testing.T, db *postgres.DB, k postgres.IdempotencyKey, d time.Duration) {
	t.Helper()
	res, err := db.Exec(`UPDATE idempotency_keys SET created_at = created_at - $4 * interval '1 millisecond'
		WHERE user_uuid = $1 AND route = $2 AND key = $3`, k.UserUUID, k.Route, k.Key, d.Milliseconds())
	require.NoError(t, err)
	n, _ := res.RowsAffected()
	require.Equal(t, int64(1), n)
}

// A keyed enqueue records the key with the mutation; a repeat of the same
// request replays the first response and writes nothing (not even with the
// expected_version the first one consumed); another request with the key is
// 422; other users and routes have keys of their own.
func TestEnqueueMutationIdempotent(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	tid := newTopology(t, db, domain.StatusActive)
	alice, bob := uuid.NewString(), uuid.NewString()
	k := idemKey(alice, enqueueRoute, "k-1", "lan-a")

	m, err := keyedEnqueue(db, tid, k, "lan-a", intp(1))
	require.NoError(t, err)
	_, err = keyedEnqueue(db, tid, k, "lan-a", intp(1))
	require.Equal(t, postgres.Response{Status: 202, Body: []byte(`{"id":"` + m.ID + `"}`)}, replayOf(t, err))
	_, err = keyedEnqueue(db, tid, k, "lan-a", nil)
	replayOf(t, err)
	require.Equal(t, 1, countMutations(t, db, tid))
	top, err := db.GetTopology(context.Background(), tid)
	require.NoError(t, err)
	require.Equal(t, 2, top.Version, "one bump")

	_, err = keyedEnqueue(db, tid, idemKey(alice, enqueueRoute, "k-1", "lan-b"), "lan-b", nil)
	require.ErrorIs(t, err, postgres.ErrKeyReused)
	require.Equal(t, 1, countMutations(t, db, tid))

	_, err = keyedEnqueue(db, tid, idemKey(bob, enqueueRoute, "k-1", "lan-a"), "lan-a", nil)
	require.NoError(t, err, "another user's key")
	_, err = keyedEnqueue(db, tid, idemKey(alice, "POST /other", "k-1", "lan-a"), "lan-a", nil)
	require.NoError(t, err, "another route's key")
	require.Equal(t, 3, countMutations(t, db, tid))
}

// A refused enqueue records nothing: the key stays free for the retry.
func TestEnqueueMutationIdempotentRefusalRecordsNothing(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	tid := newTopology(t, db, domain.StatusActive)
	k := idemKey(uuid.NewString(), enqueueRoute, "k", "x")
	_, err := keyedEnqueue(db, tid, k, "x", intp(7))
	require.Equal(t, domain.EConflict, domain.ErrorCode(err))
	_, err = keyedEnqueue(db, newTopology(t, db, domain.StatusPending), k, "x", nil)
	require.Equal(t, domain.EConflict, domain.ErrorCode(err))
	_, err = keyedEnqueue(db, tid, k, "x", intp(1))
	require.NoError(t, err)
}

// Concurrent enqueues with one key (with and without expected_version):
// exactly one mutation, and every other caller gets its response.
func TestEnqueueMutationIdempotentConcurrent(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	for _, expected := range []*int{nil, intp(1)} {
		tid := newTopology(t, db, domain.StatusActive)
		k := idemKey(uuid.NewString(), enqueueRoute, "same", "lan-c")
		const n = 8
		var wg sync.WaitGroup
		bodies := make(chan string, n)
		created := make(chan string, n)
		for range n {
			wg.Go(func() {
				m, err := keyedEnqueue(db, tid, k, "lan-c", expected)
				if err == nil {
					created <- m.ID
					bodies <- `{"id":"` + m.ID + `"}`
					return
				}
				var rep *postgres.Replay
				if errors.As(err, &rep) {
					bodies <- string(rep.Response.Body)
					return
				}
				bodies <- "error: " + err.Error()
			})
		}
		wg.Wait()
		close(bodies)
		close(created)
		require.Len(t, created, 1)
		id := <-created
		for b := range bodies {
			require.Equal(t, `{"id":"`+id+`"}`, b)
		}
		require.Equal(t, 1, countMutations(t, db, tid))
	}
}

// An expired key is free again: the next request with it is a new one, and
// the key then answers for that one.
func TestEnqueueMutationIdempotentExpiry(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	tid := newTopology(t, db, domain.StatusActive)
	k := idemKey(uuid.NewString(), enqueueRoute, "old", "a")
	first, err := keyedEnqueue(db, tid, k, "a", nil)
	require.NoError(t, err)
	age(t, db, k, postgres.IdempotencyTTL-time.Minute)
	_, err = keyedEnqueue(db, tid, k, "a", nil)
	replayOf(t, err)

	age(t, db, k, 2*time.Minute)
	second, err := keyedEnqueue(db, tid, k, "a", nil)
	require.NoError(t, err)
	require.NotEqual(t, first.ID, second.ID)
	_, err = keyedEnqueue(db, tid, k, "a", nil)
	require.Equal(t, `{"id":"`+second.ID+`"}`, string(replayOf(t, err).Body))
	require.Equal(t, 2, countMutations(t, db, tid))
}

// A blank topology created with a key: concurrent repeats create one
// topology and all get its 201; another body with the key is 422.
func TestCreateBlankTopologyIdempotent(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	user := uuid.NewString()
	create := func(name string) (*domain.Topology, error) {
		return db.CreateBlankTopology(context.Background(), postgres.BlankTopology{Name: name,
			Idempotency: &postgres.Idempotent[*domain.Topology]{
				IdempotencyKey: idemKey(user, "POST /api/v1/topologies/blank", "b", name),
				Respond: func(t *domain.Topology) (postgres.Response, error) {
					return postgres.Response{Status: 201, Body: []byte(t.ID)}, nil
				}}})
	}
	const n = 6
	var wg sync.WaitGroup
	ids := make(chan string, n)
	var created sync.Map
	for range n {
		wg.Go(func() {
			tp, err := create("idem")
			if err == nil {
				created.Store(tp.ID, true)
				ids <- tp.ID
				return
			}
			var rep *postgres.Replay
			if errors.As(err, &rep) && rep.Response.Status == 201 {
				ids <- string(rep.Response.Body)
				return
			}
			ids <- "error: " + err.Error()
		})
	}
	wg.Wait()
	close(ids)
	var first string
	for id := range ids {
		if first == "" {
			first = id
		}
		require.Equal(t, first, id)
	}
	_, ok := created.Load(first)
	require.True(t, ok)
	var count int
	require.NoError(t, db.Get(&count, `SELECT count(*) FROM topologies`))
	require.Equal(t, 1, count)

	_, err := create("other")
	require.ErrorIs(t, err, postgres.ErrKeyReused)
}

// Reservations (deploy, teardown): a reserved key answers 409 while in
// flight and 422 to another request; completed, it replays; released, it is
// free; abandoned past the in-flight timeout, the same request takes it
// over and another is still refused.
func TestIdempotencyKeyReservation(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	user := uuid.NewString()
	k := idemKey(user, deployRoute, "d", "t1")

	res, err := db.ReserveIdempotencyKey(ctx, k)
	require.NoError(t, err)
	_, err = db.ReserveIdempotencyKey(ctx, k)
	require.ErrorIs(t, err, postgres.ErrKeyInFlight)
	_, err = db.ReserveIdempotencyKey(ctx, idemKey(user, deployRoute, "d", "t2"))
	require.ErrorIs(t, err, postgres.ErrKeyReused)

	require.NoError(t, db.CompleteIdempotencyKey(ctx, res, postgres.Response{Status: 202, Body: []byte("done")}))
	_, err = db.ReserveIdempotencyKey(ctx, k)
	require.Equal(t, postgres.Response{Status: 202, Body: []byte("done")}, replayOf(t, err))

	// Release frees the key.
	k2 := idemKey(user, deployRoute, "r", "t1")
	res, err = db.ReserveIdempotencyKey(ctx, k2)
	require.NoError(t, err)
	require.NoError(t, db.ReleaseIdempotencyKey(ctx, res))
	res, err = db.ReserveIdempotencyKey(ctx, k2)
	require.NoError(t, err)

	// Abandoned: only the same request takes it over, and the old holder
	// can neither complete nor release the new reservation.
	age(t, db, k2, postgres.IdempotencyInFlightTTL+time.Second)
	_, err = db.ReserveIdempotencyKey(ctx, idemKey(user, deployRoute, "r", "t2"))
	require.ErrorIs(t, err, postgres.ErrKeyReused)
	taken, err := db.ReserveIdempotencyKey(ctx, k2)
	require.NoError(t, err)
	require.ErrorIs(t, db.CompleteIdempotencyKey(ctx, res, postgres.Response{Status: 202, Body: []byte("old")}), postgres.ErrReservationLost)
	require.NoError(t, db.ReleaseIdempotencyKey(ctx, res))
	_, err = db.ReserveIdempotencyKey(ctx, k2)
	require.ErrorIs(t, err, postgres.ErrKeyInFlight, "the take-over's reservation stands")
	require.NoError(t, db.CompleteIdempotencyKey(ctx, taken, postgres.Response{Status: 202, Body: []byte("new")}))

	// Expired: a completed key is free after 24 h, even for another request.
	age(t, db, k, postgres.IdempotencyTTL)
	_, err = db.ReserveIdempotencyKey(ctx, idemKey(user, deployRoute, "d", "t2"))
	require.NoError(t, err)
}

// The prune deletes expired keys only, in bounded batches.
func TestPruneIdempotencyKeys(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	user := uuid.NewString()
	var keys []postgres.IdempotencyKey
	for _, name := range []string{"a", "b", "c", "fresh"} {
		k := idemKey(user, deployRoute, name, name)
		_, err := db.ReserveIdempotencyKey(ctx, k)
		require.NoError(t, err)
		keys = append(keys, k)
	}
	for _, k := range keys[:3] {
		age(t, db, k, postgres.IdempotencyTTL+time.Second)
	}
	n, err := db.PruneIdempotencyKeys(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, int64(2), n)
	n, err = db.PruneIdempotencyKeys(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	var left []string
	require.NoError(t, db.Select(&left, `SELECT key FROM idempotency_keys`))
	require.Equal(t, []string{"fresh"}, left)
}
