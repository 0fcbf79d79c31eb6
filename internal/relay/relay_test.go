package relay_test

import (
	"context"
	"log/slog"
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
)

type bundle struct {
	db      *postgres.DB
	streams *stream.Streams
	relay   *relay.Relay
	keys    rediskey.Keys
	rdb     *redis.Client
	tid     string
}

func setup(t *testing.T) *bundle {
	t.Helper()
	db := dbtest.New(t)
	rd := dbtest.NewRedis(t)
	keys := rediskey.New(rd.Prefix)
	s := stream.New(rd.Client, keys)
	tid := uuid.NewString()
	_, err := db.Exec(`INSERT INTO topologies (id, name, status) VALUES ($1, 'relay', 'active')`, tid)
	require.NoError(t, err)
	return &bundle{db: db, streams: s, relay: relay.New(db, s, slog.New(slog.DiscardHandler)), keys: keys, rdb: rd.Client, tid: tid}
}

// commit writes n enqueued events to the outbox in one transaction.
func (b *bundle) commit(t *testing.T, n int) []domain.Event {
	t.Helper()
	var out []domain.Event
	err := b.db.InTx(context.Background(), func(tx *sqlx.Tx) error {
		for i := 0; i < n; i++ {
			ev, err := domain.NewEvent(b.tid, domain.EventEnqueued, map[string]any{"i": i}, time.Now())
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

func (b *bundle) seqs(t *testing.T) []int64 {
	t.Helper()
	got, err := b.streams.RangeTopology(context.Background(), b.tid, "", 10000)
	require.NoError(t, err)
	var out []int64
	for _, e := range got {
		out = append(out, e.Seq)
	}
	return out
}

func TestPublishOutOfOrderCatchesUp(t *testing.T) {
	t.Parallel()
	b := setup(t)
	evs := b.commit(t, 3)
	// The publisher of seq 3 gets there first: it must fill 1 and 2 from the outbox.
	b.relay.Publish(context.Background(), evs[2])
	require.Equal(t, []int64{1, 2, 3}, b.seqs(t))
	// The late publishers are duplicates.
	b.relay.Publish(context.Background(), evs[0], evs[1])
	require.Equal(t, []int64{1, 2, 3}, b.seqs(t))
}

func TestRedisDownThenSweepRelaysOnceInOrder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	first := b.commit(t, 2)
	b.relay.Publish(ctx, first...)

	// Redis unreachable between commit and publish.
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer dead.Close()
	down := relay.New(b.db, stream.New(dead, b.keys), slog.New(slog.DiscardHandler))
	lost := b.commit(t, 3)
	down.Publish(ctx, lost...) // logged, never fails the caller
	require.Equal(t, []int64{1, 2}, b.seqs(t))

	// Redis is back: the sweep appends what is missing, once, in order.
	n, err := b.relay.Sweep(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_, err = b.relay.Sweep(ctx)
	require.NoError(t, err)
	require.Equal(t, []int64{1, 2, 3, 4, 5}, b.seqs(t))

	var relayed int64
	require.NoError(t, b.db.Get(&relayed, `SELECT event_relayed_seq FROM topologies WHERE id = $1`, b.tid))
	require.EqualValues(t, 5, relayed)
	left, err := b.db.UnrelayedTopologies(ctx, 10)
	require.NoError(t, err)
	require.Empty(t, left)
}

func TestCatchUpAfterRedisLostItsWatermark(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.relay.Publish(ctx, b.commit(t, 3)...)
	_, err := b.relay.Sweep(ctx) // confirms watermark 3 in Postgres
	require.NoError(t, err)
	// Redis restarted empty: stream and watermark gone.
	require.NoError(t, b.rdb.Del(ctx, b.keys.RelayWatermarks(), b.keys.TopologyStream(b.tid), b.keys.AllStream()).Err())

	b.relay.Publish(ctx, b.commit(t, 1)...)
	// Only what Postgres had not confirmed is appended again.
	require.Equal(t, []int64{4}, b.seqs(t))
}
