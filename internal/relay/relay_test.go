package relay_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/rediskey"
	"github.com/decnet/mazenet/internal/relay"
	"github.com/decnet/mazenet/internal/stream"
	"github.com/decnet/mazenet/internal/stream/streamtest"
)

type bundle struct {
	db      *postgres.DB
	streams *stream.Streams
	relay   *relay.Relay
	keys    rediskey.Keys
	rdb     *redis.Client
	tid     string
}

func setup(t testing.TB) *bundle {
	t.Helper()
	db := dbtest.New(t)
	rd := dbtest.NewRedis(t)
	keys := rediskey.New(rd.Prefix)
	s := stream.New(rd.Client, keys)
	b := &bundle{db: db, streams: s, relay: relay.New(db, s, slog.New(slog.DiscardHandler)), keys: keys, rdb: rd.Client}
	b.tid = b.topology(t)
	return b
}

func (b *bundle) topology(t testing.TB) string {
	t.Helper()
	tid := uuid.NewString()
	_, err := b.db.Exec(`INSERT INTO topologies (id, name, status) VALUES ($1, $2, 'active')`, tid, "relay-"+tid[:8])
	require.NoError(t, err)
	return tid
}

// commit writes n events of tid to the outbox in one transaction.
func (b *bundle) commit(t testing.TB, tid string, n int) []domain.Event {
	t.Helper()
	var out []domain.Event
	err := b.db.InTx(context.Background(), func(tx *sqlx.Tx) error {
		for i := 0; i < n; i++ {
			ev, err := domain.NewEvent(tid, domain.EventEnqueued, map[string]any{"i": i}, time.Now())
			if err != nil {
				return err
			}
			ev, err = postgres.InsertEvent(context.Background(), tx, ev)
			if err != nil {
				return err
			}
			out = append(out, ev)
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

// streamIDs returns every id in the stream.
func (b *bundle) streamIDs(t *testing.T) []string {
	t.Helper()
	es, err := streamtest.All(context.Background(), b.streams, stream.ID{}, 1<<20)
	require.NoError(t, err)
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID.String()
	}
	return out
}

// outboxIDs returns the ids of every retained, stamped event in position
// order: what the stream must hold (within its retention).
func (b *bundle) outboxIDs(t *testing.T) []string {
	t.Helper()
	evs, err := b.db.EventsByGSeq(context.Background(), 0, 1<<62, 1<<20)
	require.NoError(t, err)
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = stream.EventID(ev).String()
	}
	return out
}

func deadRelay(t *testing.T, b *bundle) *relay.Relay {
	t.Helper()
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { dead.Close() })
	return relay.New(b.db, stream.New(dead, b.keys), slog.New(slog.DiscardHandler))
}

func TestPublishStampsAndAppendsDurableIDs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.relay.Publish(ctx, b.commit(t, b.tid, 3)...)
	require.Equal(t, []string{"1-1", "2-2", "3-3"}, b.streamIDs(t))
	require.Equal(t, b.outboxIDs(t), b.streamIDs(t))
	// Publishing again changes nothing.
	b.relay.Publish(ctx, b.commit(t, b.tid, 0)...)
	require.Equal(t, []string{"1-1", "2-2", "3-3"}, b.streamIDs(t))
}

// A publisher stamps every committed event, not only its own; one that
// stamped and died before appending leaves a gap that the next publisher
// fills from the outbox.
func TestPublishFillsWhatOthersLeft(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	other := b.topology(t)
	b.commit(t, other, 2) // committed, never published
	b.relay.Publish(ctx, b.commit(t, b.tid, 1)...)
	require.Equal(t, b.outboxIDs(t), b.streamIDs(t))
	require.Len(t, b.streamIDs(t), 3)

	b.commit(t, other, 2)
	_, err := b.db.StampEvents(ctx, 100) // a publisher that died after stamping
	require.NoError(t, err)
	b.relay.Publish(ctx, b.commit(t, b.tid, 2)...)
	require.Equal(t, b.outboxIDs(t), b.streamIDs(t))
	require.Len(t, b.streamIDs(t), 7)
}

func TestRacingPublishers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tids := []string{b.tid, b.topology(t), b.topology(t)}
	var wg sync.WaitGroup
	for p := 0; p < 8; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 15; i++ {
				tid := tids[(p+i)%len(tids)]
				b.relay.Publish(context.Background(), b.commit(t, tid, 1+i%3)...)
			}
		}()
	}
	wg.Wait()
	got := b.streamIDs(t)
	require.Equal(t, b.outboxIDs(t), got, "every event once, in position order")
	for i, id := range got {
		require.Equal(t, fmt.Sprint(i+1), id[:len(fmt.Sprint(i+1))], "gap-free positions")
	}
	for _, tid := range tids {
		es, err := streamtest.Topology(context.Background(), b.streams, tid, stream.ID{}, 1000)
		require.NoError(t, err)
		for i, e := range es {
			require.EqualValues(t, i+1, e.ID.Seq, "topology %s in seq order", tid)
		}
	}
}

func TestRedisDownThenSweepRelaysOnceInOrder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.relay.Publish(ctx, b.commit(t, b.tid, 2)...)

	// Redis unreachable between commit and publish: the events are still
	// stamped (their ids are fixed), and wait in the outbox.
	down := deadRelay(t, b)
	down.Publish(ctx, b.commit(t, b.tid, 3)...) // logged, never fails the caller
	require.Equal(t, []string{"1-1", "2-2"}, b.streamIDs(t))
	require.Error(t, down.Sweep(ctx))
	clock, err := b.db.EventClock(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 5, clock.GSeq)

	// Redis is back: the sweep appends what is missing, once, in order, and
	// records it.
	require.NoError(t, b.relay.Sweep(ctx))
	require.NoError(t, b.relay.Sweep(ctx))
	require.Equal(t, []string{"1-1", "2-2", "3-3", "4-4", "5-5"}, b.streamIDs(t))
	clock, err = b.db.EventClock(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 5, clock.Appended)
}

// The old relay's livelock: Redis is far behind (restored from an old
// snapshot) and the outbox was pruned beyond it. The sweep must return after
// a bounded number of appends, with Redis caught up and the hole skipped.
func TestSweepOverPrunedOutboxTerminates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.relay.Publish(ctx, b.commit(t, b.tid, 5)...)
	snapStream, err := b.rdb.Dump(ctx, b.keys.EventStream()).Result()
	require.NoError(t, err)
	snapTop, err := b.rdb.Dump(ctx, b.keys.EventStreamTop()).Result()
	require.NoError(t, err)

	for i := 0; i < 5; i++ {
		b.relay.Publish(ctx, b.commit(t, b.tid, 500)...)
	}
	require.NoError(t, b.relay.Sweep(ctx))
	n, err := b.db.PruneEvents(ctx, 1000)
	require.NoError(t, err)
	require.EqualValues(t, 1505, n)
	clock, err := b.db.EventClock(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2505, clock.GSeq)
	require.EqualValues(t, 1505, clock.Pruned, "prune raises pruned_gseq")

	// Redis goes back to the snapshot with top 5.
	require.NoError(t, b.rdb.RestoreReplace(ctx, b.keys.EventStream(), 0, snapStream).Err())
	require.NoError(t, b.rdb.RestoreReplace(ctx, b.keys.EventStreamTop(), 0, snapTop).Err())
	before := b.relay.Appends()
	require.NoError(t, b.relay.Sweep(ctx))
	// 1,000 retained events in pages of 500, and at most one more call.
	require.LessOrEqual(t, b.relay.Appends()-before, int64(3))
	top, err := b.streams.Top(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2505, top)
	got := b.streamIDs(t)
	require.Equal(t, []string{"1-1", "2-2", "3-3", "4-4", "5-5"}, got[:5])
	require.Equal(t, b.outboxIDs(t), got[5:])

	// New events follow at once.
	b.relay.Publish(ctx, b.commit(t, b.tid, 1)...)
	got = b.streamIDs(t)
	require.Equal(t, "2506-2506", got[len(got)-1])
}

// Redis restarted empty while the outbox holds far more than the stream's
// retention: the refill appends only the newest retention's worth, under
// the same ids, in a bounded number of calls.
func TestRestartEmptyRefillsWithinRetention(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.streams.MaxLen = 100
	for i := 0; i < 4; i++ {
		b.relay.Publish(ctx, b.commit(t, b.tid, 250)...)
	}
	require.NoError(t, b.rdb.Del(ctx, b.keys.EventStream(), b.keys.EventStreamTop()).Err())

	before := b.relay.Appends()
	b.relay.Publish(ctx, b.commit(t, b.tid, 1)...)
	require.LessOrEqual(t, b.relay.Appends()-before, int64(3))
	got := b.streamIDs(t)
	// The publish's own event after the 100 positions before it, same ids.
	require.Equal(t, b.outboxIDs(t)[900:], got)
	require.NoError(t, b.relay.Sweep(ctx))
	require.Equal(t, b.outboxIDs(t)[900:], b.streamIDs(t), "the sweep has nothing left to do")
}

// Notify returns without waiting; the round it asked for starts after the
// call, so it covers every event committed before it, and its channel is
// closed once that round has appended them. Concurrent committers that
// only Notify, and then wait for one more round, find every event in the
// stream once, in position order.
func TestNotify(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.commit(t, b.tid, 3)
	<-b.relay.Notify()
	require.Equal(t, []string{"1-1", "2-2", "3-3"}, b.streamIDs(t))

	var wg sync.WaitGroup
	want := 3
	for i := range 20 {
		want += 1 + i%3
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.commit(t, b.tid, 1+i%3)
			b.relay.Notify()
		}()
	}
	wg.Wait()
	<-b.relay.Notify()
	require.Len(t, b.streamIDs(t), want)
	require.Equal(t, b.outboxIDs(t), b.streamIDs(t))
}
