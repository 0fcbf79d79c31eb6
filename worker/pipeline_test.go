package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/relay"
	"github.com/decnet/mazenet/internal/stream"
	"github.com/decnet/mazenet/tasks"
)

// waitFor waits until cond holds, checking every 20 ms; limit bounds the
// test's runtime (a hang), it is not a timed assertion on performance. cond
// runs on another goroutine: a helper that fails the test inside it ends
// that check, and the wait then fails at limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, limit, 20*time.Millisecond, "waiting for %s", what)
}

// entryMutation decodes the mutation id of a mutation.* stream entry.
func entryMutation(t *testing.T, e stream.Entry) string {
	t.Helper()
	var env struct {
		Payload struct {
			MutationID string `json:"mutation_id"`
		} `json:"payload"`
	}
	require.NoError(t, json.Unmarshal([]byte(e.Data), &env))
	return env.Payload.MutationID
}

// checkStreamOrder asserts DOMAIN §9.1 on one topology's stream: each
// mutation has enqueued → applying → applied|failed exactly once each, the
// applyings follow seq order, and N+1's applying comes after N's terminal.
func checkStreamOrder(t *testing.T, es []stream.Entry, seqOf map[string]int64) {
	t.Helper()
	perMutation := map[string][]string{}
	var applyingOrder []string
	lastTerminal := ""
	open := ""
	for i, e := range es {
		if i > 0 {
			require.Equal(t, es[i-1].ID.Seq+1, e.ID.Seq, "outbox seqs are contiguous in the stream")
			require.Less(t, es[i-1].ID.GSeq, e.ID.GSeq, "positions follow seqs")
		}
		if e.Name == domain.EventStatus {
			continue
		}
		id := entryMutation(t, e)
		perMutation[id] = append(perMutation[id], e.Name)
		switch e.Name {
		case domain.EventApplying:
			require.Empty(t, open, "mutation %s applying while %s is still open", id, open)
			open = id
			applyingOrder = append(applyingOrder, id)
		case domain.EventApplied, domain.EventFailed:
			require.Equal(t, open, id, "terminal event of a mutation that is not the open one")
			open, lastTerminal = "", id
		}
	}
	_ = lastTerminal
	for id, names := range perMutation {
		require.Len(t, names, 3, "mutation %s events %v", id, names)
		require.Equal(t, domain.EventEnqueued, names[0])
		require.Equal(t, domain.EventApplying, names[1])
		require.Contains(t, []string{domain.EventApplied, domain.EventFailed}, names[2])
	}
	require.Len(t, perMutation, len(seqOf))
	for i := 1; i < len(applyingOrder); i++ {
		require.Less(t, seqOf[applyingOrder[i-1]], seqOf[applyingOrder[i]], "applied out of seq order")
	}
}

// 200 mutations over 10 topologies, 4 worker instances (each an asynq
// server plus its Run loops), enqueued concurrently as the API does: every
// mutation ends terminal exactly once, in seq order per topology, and each
// topology's stream shows the §9.1 order.
func TestOrderingManyWorkers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const topologies, perTopology, workers = 10, 20, 4

	// The workers share the bundle's pool (the test's share of
	// max_connections) instead of each opening its own, as Run would.
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, workers)
	for i := 0; i < workers; i++ {
		w := b.newWorker(fmt.Sprintf("w%d", i))
		w.Concurrency = 4
		go func() { served <- w.Serve(ctx) }()
	}
	t.Cleanup(func() {
		cancel()
		for i := 0; i < workers; i++ {
			require.NoError(t, <-served)
		}
	})

	client := asynq.NewClientFromRedisClient(b.Redis.Client)
	rel := relay.New(b.DB, b.Streams, slog.New(slog.DiscardHandler))
	fixtures := make([]*fixture, topologies)
	for i := range fixtures {
		fixtures[i] = b.seed(fmt.Sprintf("order-%d", i), domain.StatusActive)
	}
	var mu sync.Mutex
	seqOf := map[string]map[string]int64{}
	var enq sync.WaitGroup
	for _, f := range fixtures {
		seqOf[f.TID] = map[string]int64{}
		enq.Add(1)
		go func() {
			defer enq.Done()
			for i := 0; i < perTopology; i++ {
				op, payload := domain.OpAddLAN, map[string]any{"name": fmt.Sprintf("n-%02d", i)}
				if i%7 == 3 {
					op, payload = domain.OpRemoveLAN, map[string]any{"name": "nope"}
				}
				raw, _ := json.Marshal(payload)
				m, ev, err := b.DB.EnqueueMutation(context.Background(), postgresNewMutation(f.TID, op, raw))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seqOf[f.TID][m.ID] = m.Seq
				mu.Unlock()
				rel.Publish(context.Background(), ev)
				if _, err := client.Enqueue(tasks.New(tasks.TypeApply, f.TID, b.Redis.Queue)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	enq.Wait()
	waitFor(t, 60*time.Second, "every mutation terminal", func() bool {
		p, a, err := b.DB.OpenMutationCounts(context.Background())
		return err == nil && p == 0 && a == 0
	})
	for _, f := range fixtures {
		var rows []struct {
			Seq       int64      `db:"seq"`
			State     string     `db:"state"`
			AppliedAt time.Time  `db:"applied_at"`
			Committed *time.Time `db:"committed_at"`
		}
		require.NoError(t, b.DB.SelectContext(context.Background(), &rows,
			`SELECT seq, state, applied_at, committed_at FROM mutations WHERE topology_id = $1 ORDER BY seq`, f.TID))
		require.Len(t, rows, perTopology)
		for i := 1; i < len(rows); i++ {
			require.False(t, rows[i].AppliedAt.Before(rows[i-1].AppliedAt), "seq %d finished before seq %d", rows[i].Seq, rows[i-1].Seq)
		}
		h := b.hydrated(f.TID)
		added := 0
		for _, l := range h.LANs {
			if len(l.Name) == 4 && l.Name[:2] == "n-" {
				added++
			}
		}
		require.Equal(t, perTopology-3, added, "each add_lan applied exactly once")
		waitFor(t, 15*time.Second, "stream complete", func() bool {
			return len(b.streamEntries(f.TID)) >= 3*perTopology+1
		})
		checkStreamOrder(t, b.streamEntries(f.TID), seqOf[f.TID])
	}
}

// A drain lease held by a dead worker blocks its topology only until it
// expires; a mutation its worker left `applying` before the op committed is
// re-run, one whose op committed is only re-materialised; either way the
// `mutation.applying` event exists once.
func TestCrashRecoveryInProcess(t *testing.T) {
	t.Parallel()
	b := setup(t)

	t.Run("op not committed", func(t *testing.T) {
		f := b.seed("crash-before", domain.StatusActive)
		m := b.enqueue(f.TID, domain.OpAddLAN, map[string]any{"name": "lan-b"})
		// A worker that claimed it (taking the lease) and died.
		claimed, ok, err := b.DB.ClaimNext(b.ctx, f.TID, "dead", time.Second)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, m.ID, claimed.ID)
		// The dead worker's lease still holds: nobody drains.
		b.drain(f.TID)
		require.Equal(t, domain.MutationApplying, b.mutation(f.TID, m.ID).State)
		waitFor(t, 10*time.Second, "lease expiry and recovery", func() bool {
			b.drain(f.TID)
			return b.mutation(f.TID, m.ID).State == domain.MutationApplied
		})
		require.NotNil(t, lanByName(b.hydrated(f.TID), "lan-b"))
		require.Equal(t, []string{domain.EventEnqueued, domain.EventApplying, domain.EventApplied}, eventNames(b.streamEntries(f.TID)))
		require.Equal(t, "CreateNetwork", b.calls(f.TID)[0].Call)
	})

	t.Run("op committed, materialisation interrupted", func(t *testing.T) {
		f := b.seed("crash-after", domain.StatusActive)
		m := b.enqueue(f.TID, domain.OpAddDecky, map[string]any{"name": "db", "lan": "lan-a"})
		slow := b.newWorker("slow")
		slowMat := *b.Mat
		slowMat.Config.Delay = time.Minute
		slow.Materializer = &slowMat
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- slow.Drain(ctx, f.TID) }()
		waitFor(t, 10*time.Second, "op committed", func() bool {
			var committed bool
			_ = b.DB.GetContext(b.ctx, &committed, `SELECT committed_at IS NOT NULL FROM mutations WHERE id = $1`, m.ID)
			return committed
		})
		cancel() // the worker "dies" mid-materialisation
		<-done
		require.Equal(t, domain.MutationApplying, b.mutation(f.TID, m.ID).State)
		require.Equal(t, "pending", deckyByName(b.hydrated(f.TID), "db").State)
		b.drain(f.TID)
		require.Equal(t, domain.MutationApplied, b.mutation(f.TID, m.ID).State)
		h := b.hydrated(f.TID)
		require.Equal(t, "running", deckyByName(h, "db").State)
		n := 0
		for _, d := range h.Deckies {
			if d.Name == "db" {
				n++
			}
		}
		require.Equal(t, 1, n, "the op ran once")
		require.Equal(t, []string{domain.EventEnqueued, domain.EventApplying, domain.EventApplied}, eventNames(b.streamEntries(f.TID)))
	})
}

// A mutation whose wake-up was never sent is applied by the sweep loop.
func TestLostWakeUpSweep(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := b.seed("lost", domain.StatusActive)
	m := b.enqueue(f.TID, domain.OpAddLAN, map[string]any{"name": "lan-b"}) // no publish, no task
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.W.Run(ctx) }()
	waitFor(t, 10*time.Second, "sweep applies the mutation", func() bool {
		return b.mutation(f.TID, m.ID).State == domain.MutationApplied
	})
	waitFor(t, 10*time.Second, "sweep relays the events", func() bool {
		return len(b.streamEntries(f.TID)) == 3
	})
	cancel()
	require.NoError(t, <-done)
	require.Equal(t, []string{domain.EventEnqueued, domain.EventApplying, domain.EventApplied}, eventNames(b.streamEntries(f.TID)))
}

// Redis down between commit and publish: the mutation still applies (Redis
// is not on the DB path), its events wait in the outbox and appear after
// Redis returns, once and in order, however often the sweep runs.
func TestRedisDownEventsRelayedLater(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := b.seed("redisdown", domain.StatusActive)
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	require.NoError(t, dead.Close())
	down := b.newWorker("down")
	down.Redis = dead
	down.Relay = relay.New(b.DB, stream.New(dead, b.Keys), slog.New(slog.DiscardHandler))

	m1 := b.enqueue(f.TID, domain.OpAddLAN, map[string]any{"name": "lan-b"})
	m2 := b.enqueue(f.TID, domain.OpRemoveLAN, map[string]any{"name": "nope"})
	require.NoError(t, down.Drain(b.ctx, f.TID))
	require.Equal(t, domain.MutationApplied, b.mutation(f.TID, m1.ID).State)
	require.Equal(t, domain.MutationFailed, b.mutation(f.TID, m2.ID).State)
	require.Empty(t, b.streamEntries(f.TID))
	require.Error(t, down.Sweep(b.ctx), "the relay part fails while Redis is down")

	for i := 0; i < 3; i++ {
		require.NoError(t, b.W.Sweep(b.ctx))
	}
	want := []string{domain.EventEnqueued, domain.EventEnqueued, domain.EventApplying, domain.EventApplied,
		domain.EventApplying, domain.EventFailed, domain.EventStatus}
	es := b.streamEntries(f.TID)
	require.Equal(t, want, eventNames(es))
	outbox, err := b.DB.EventsAfter(b.ctx, f.TID, 0, 100)
	require.NoError(t, err)
	require.Len(t, outbox, len(want))
	for i := range es {
		require.Equal(t, stream.EventID(outbox[i]), es[i].ID, "the entry id is the event's durable id")
	}
}

// Concurrent drainers of one topology: one holds the lease, the others
// return at once; every mutation is applied once.
func TestConcurrentDrainers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := b.seed("race", domain.StatusActive)
	var ids []string
	for i := 0; i < 30; i++ {
		ids = append(ids, b.enqueue(f.TID, domain.OpAddLAN, map[string]any{"name": fmt.Sprintf("n-%02d", i)}).ID)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		w := b.newWorker(fmt.Sprintf("w%d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				if err := w.Drain(context.Background(), f.TID); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	b.drain(f.TID)
	seqOf := map[string]int64{}
	for _, id := range ids {
		m := b.mutation(f.TID, id)
		require.Equal(t, domain.MutationApplied, m.State)
		seqOf[id] = m.Seq
	}
	require.Len(t, b.hydrated(f.TID).LANs, 5+30)
	checkStreamOrder(t, b.streamEntries(f.TID), seqOf)
}

// The fast path: with no asynq server and a sweep that never fires, a
// published mutation.enqueued alone gets the mutation applied (Run's
// stream tailer), and concurrent wake-ups of one topology coalesce.
func TestFastPathWakeUp(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := b.seed("fast", domain.StatusActive)
	b.W.SweepInterval = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.W.Run(ctx) }()
	// The tailer starts at the stream's end once it runs: probe until a
	// wake-up is seen (each probe is a new stream entry).
	probe := func() string {
		raw, _ := json.Marshal(map[string]any{"name": "dmz", "x": -1})
		m, ev, err := b.DB.EnqueueMutation(context.Background(), postgresNewMutation(f.TID, domain.OpUpdateLAN, raw))
		require.NoError(t, err)
		b.W.Relay.Publish(context.Background(), ev)
		return m.ID
	}
	first := probe()
	require.Eventually(t, func() bool {
		if b.mutation(f.TID, first).State == domain.MutationApplied {
			return true
		}
		probe()
		return false
	}, 10*time.Second, 100*time.Millisecond, "the tailer never reacted")
	waitFor(t, 10*time.Second, "the probes are applied", func() bool {
		p, a, err := b.DB.OpenMutationCounts(context.Background())
		return err == nil && p == 0 && a == 0
	})
	var ids []string
	for i := 0; i < 10; i++ {
		raw, _ := json.Marshal(map[string]any{"name": "dmz", "x": i})
		m, ev, err := b.DB.EnqueueMutation(context.Background(), postgresNewMutation(f.TID, domain.OpUpdateLAN, raw))
		require.NoError(t, err)
		b.W.Relay.Publish(context.Background(), ev)
		ids = append(ids, m.ID)
	}
	waitFor(t, 10*time.Second, "the fast path applies every mutation", func() bool {
		p, a, err := b.DB.OpenMutationCounts(context.Background())
		return err == nil && p == 0 && a == 0
	})
	cancel()
	require.NoError(t, <-done)
	seqOf := map[string]int64{}
	all, err := b.DB.ListMutations(context.Background(), f.TID, "")
	require.NoError(t, err)
	for _, m := range all {
		require.Equal(t, domain.MutationApplied, m.State)
		seqOf[m.ID] = m.Seq
	}
	require.Equal(t, 9.0, *lanByName(b.hydrated(f.TID), "dmz").X)
	checkStreamOrder(t, b.streamEntries(f.TID), seqOf)
}

// The sweep deletes idempotency keys older than 24 h and keeps the others.
func TestSweepPrunesIdempotencyKeys(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, k := range []string{"old", "new"} {
		_, err := b.DB.ReserveIdempotencyKey(b.ctx, postgres.IdempotencyKey{UserUUID: "00000000-0000-0000-0000-000000000001",
			Route: "POST /x", Key: k, Hash: []byte(k)})
		require.NoError(t, err)
	}
	_, err := b.DB.Exec(`UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'old'`)
	require.NoError(t, err)
	require.NoError(t, b.W.Sweep(b.ctx))
	var left []string
	require.NoError(t, b.DB.Select(&left, `SELECT key FROM idempotency_keys`))
	require.Equal(t, []string{"new"}, left)
}
