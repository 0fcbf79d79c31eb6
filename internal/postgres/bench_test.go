package postgres_test

import (
	"context"
	"encoding/json"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
)

// benchTopologies inserts n active topologies for the enqueue benchmarks.
func benchTopologies(b *testing.B, db *postgres.DB, n int) []string {
	b.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid.NewString()
		if _, err := db.ExecContext(context.Background(),
			`INSERT INTO topologies (id, name, status) VALUES ($1, $2, 'active')`, ids[i], "b-"+ids[i][:8]); err != nil {
			b.Fatal(err)
		}
	}
	return ids
}

// benchMutation is the enqueue the benchmarks repeat; with keys set, each
// call carries a fresh Idempotency-Key (the common case: a first attempt).
func benchMutation(tid string, keys *atomic.Int64) postgres.NewMutation {
	nm := postgres.NewMutation{TopologyID: tid, Op: domain.OpUpdateLAN, Payload: json.RawMessage(`{"lan": "dmz", "x": 1}`)}
	if keys != nil {
		nm.Idempotency = &postgres.Idempotent[*domain.Mutation]{
			IdempotencyKey: idemKeyOf(benchUser, enqueueRoute, "bench-"+strconv.FormatInt(keys.Add(1), 10), "x"),
			Respond: func(m *domain.Mutation) (postgres.Response, error) {
				return postgres.Response{Status: 202, Body: []byte(`{"mutation_id":"` + m.ID + `","state":"pending"}` + "\n")}, nil
			}}
	}
	return nm
}

// benchUser owns the benchmarks' keys.
var benchUser = uuid.NewString()

// BenchmarkEnqueueMutation is the api's hot write (one statement: version
// check, seqs, mutation row, outbox row), serially on one topology.
func BenchmarkEnqueueMutation(b *testing.B) { benchEnqueue(b, nil) }

// BenchmarkEnqueueMutationKeyed is the same with an Idempotency-Key, which
// the statement records beside the mutation.
func BenchmarkEnqueueMutationKeyed(b *testing.B) { benchEnqueue(b, new(atomic.Int64)) }

func benchEnqueue(b *testing.B, keys *atomic.Int64) {
	db := dbtest.New(b)
	tid := benchTopologies(b, db, 1)[0]
	ctx := context.Background()
	for b.Loop() {
		if _, _, err := db.EnqueueMutation(ctx, benchMutation(tid, keys)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnqueueMutationParallel is the same from 8 goroutines per CPU
// spread over 16 topologies, as a busy api process runs it.
func BenchmarkEnqueueMutationParallel(b *testing.B) { benchEnqueueParallel(b, nil) }

// BenchmarkEnqueueMutationKeyedParallel is the parallel run with keys.
func BenchmarkEnqueueMutationKeyedParallel(b *testing.B) { benchEnqueueParallel(b, new(atomic.Int64)) }

func benchEnqueueParallel(b *testing.B, keys *atomic.Int64) {
	db := dbtest.New(b)
	tids := benchTopologies(b, db, 16)
	ctx := context.Background()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if _, _, err := db.EnqueueMutation(ctx, benchMutation(tids[i%len(tids)], keys)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
