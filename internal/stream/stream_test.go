package stream_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/rediskey"
	"github.com/decnet/mazenet/internal/stream"
	"github.com/decnet/mazenet/internal/stream/streamtest"
)

// outbox builds n stamped events at positions 1..n, spread over topologies
// (each topology's seqs consecutive, as the outbox stamps them).
func outbox(t *testing.T, n int, tids ...string) []domain.Event {
	t.Helper()
	seqs := map[string]int64{}
	var out []domain.Event
	for g := 1; g <= n; g++ {
		tid := tids[g%len(tids)]
		seqs[tid]++
		ev, err := domain.NewEvent(tid, domain.EventEnqueued, map[string]any{"mutation_id": fmt.Sprint(g), "op": "add_lan"}, time.Now())
		require.NoError(t, err)
		ev.Seq, ev.GSeq = seqs[tid], int64(g)
		out = append(out, ev)
	}
	return out
}

type fixture struct {
	s    *stream.Streams
	rd   *dbtest.Redis
	keys rediskey.Keys
}

func setup(t *testing.T) fixture {
	rd := dbtest.NewRedis(t)
	keys := rediskey.New(rd.Prefix)
	return fixture{s: stream.New(rd.Client, keys), rd: rd, keys: keys}
}

// ids returns the ids of the whole stream.
func (f fixture) ids(t *testing.T) []string {
	t.Helper()
	es, err := streamtest.All(context.Background(), f.s, stream.ID{}, 100000)
	require.NoError(t, err)
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID.String()
	}
	return out
}

func idsOf(evs []domain.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = stream.EventID(ev).String()
	}
	return out
}

func TestAppendUsesDurableIDsOnce(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	evs := outbox(t, 5, "a", "b")

	top, err := f.s.Append(ctx, 0, 3, evs[:3]...)
	require.NoError(t, err)
	require.EqualValues(t, 3, top)
	// 1..3 are already there and skipped; 4 and 5 are new.
	top, err = f.s.Append(ctx, 0, 5, evs...)
	require.NoError(t, err)
	require.EqualValues(t, 5, top)

	got, err := streamtest.All(ctx, f.s, stream.ID{}, 100)
	require.NoError(t, err)
	require.Len(t, got, 5)
	for i, e := range got {
		require.Equal(t, stream.ID{GSeq: int64(i + 1), Seq: evs[i].Seq}, e.ID)
		require.Equal(t, evs[i].TopologyID, e.TopologyID)
		require.Equal(t, domain.EventEnqueued, e.Name)
		require.Equal(t, stream.EntryOf(evs[i]), e, "the stored entry is the outbox event's entry")
	}
	a, err := streamtest.Topology(ctx, f.s, "a", stream.ID{}, 100)
	require.NoError(t, err)
	require.Equal(t, []string{"2-1", "4-2"}, []string{a[0].ID.String(), a[1].ID.String()})
	after, err := streamtest.All(ctx, f.s, got[2].ID, 100)
	require.NoError(t, err)
	require.Equal(t, idsOf(evs[3:]), []string{after[0].ID.String(), after[1].ID.String()})
}

func TestAppendRejectsEventsOutsideTheRange(t *testing.T) {
	t.Parallel()
	f := setup(t)
	evs := outbox(t, 3, "a")
	_, err := f.s.Append(context.Background(), 1, 3, evs...)
	require.Error(t, err, "event 1 is not above prev")
	_, err = f.s.Append(context.Background(), 0, 3, evs[1], evs[0])
	require.Error(t, err, "out of order")
	require.Empty(t, f.ids(t))
}

func TestAppendReportsGap(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	evs := outbox(t, 5, "a")
	_, err := f.s.Append(ctx, 0, 2, evs[:2]...)
	require.NoError(t, err)
	top, err := f.s.Append(ctx, 3, 5, evs[3:]...)
	require.True(t, errors.Is(err, stream.ErrGap), "got %v", err)
	require.EqualValues(t, 2, top)
	require.Equal(t, idsOf(evs[:2]), f.ids(t), "nothing after a gap is appended")
	top, err = f.s.Top(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, top)
}

// The outbox has nothing left at positions 4..8 (pruned): top moves over
// them and later appends continue.
func TestAppendRebasesOverPrunedRange(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	evs := outbox(t, 12, "a", "b", "c")
	_, err := f.s.Append(ctx, 0, 3, evs[:3]...)
	require.NoError(t, err)
	top, err := f.s.Append(ctx, 3, 10, evs[8:10]...)
	require.NoError(t, err)
	require.EqualValues(t, 10, top)
	top, err = f.s.Append(ctx, 3, 11, evs[8:11]...) // a racer with a longer page
	require.NoError(t, err)
	require.EqualValues(t, 11, top)
	top, err = f.s.Append(ctx, 11, 12, evs[11])
	require.NoError(t, err)
	require.EqualValues(t, 12, top)
	want := append(idsOf(evs[:3]), idsOf(evs[8:])...)
	require.Equal(t, want, f.ids(t))
}

// Appenders race over the same positions, each filling from its "outbox"
// whatever the stream lacks when told of a gap: every entry lands once, in
// order.
func TestRacingAppendersExactlyOnceInOrder(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	evs := outbox(t, 300, "a", "b", "c", "d")
	var wg sync.WaitGroup
	for p := 0; p < 8; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for g := p + 1; g <= len(evs); g += 3 {
				for {
					top, err := f.s.Append(ctx, int64(g-1), int64(g), evs[g-1])
					if err == nil {
						break
					}
					if !errors.Is(err, stream.ErrGap) {
						t.Error(err)
						return
					}
					if _, err := f.s.Append(ctx, top, int64(g-1), evs[top:g-1]...); err != nil && !errors.Is(err, stream.ErrGap) {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	require.Equal(t, idsOf(evs), f.ids(t))
}

// Redis restarted empty: the stream and top are gone; the appender is told
// of a gap from 0, refills from the outbox, and every entry has its old id.
func TestRestartEmptyRefillKeepsIDs(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	evs := outbox(t, 25, "a", "b")
	_, err := f.s.Append(ctx, 0, 20, evs[:20]...)
	require.NoError(t, err)
	before := f.ids(t)
	require.NoError(t, f.rd.Client.Del(ctx, f.keys.EventStream(), f.keys.EventStreamTop()).Err())

	top, err := f.s.Append(ctx, 20, 25, evs[20:]...)
	require.ErrorIs(t, err, stream.ErrGap)
	require.Zero(t, top)
	_, err = f.s.Append(ctx, 0, 20, evs[:20]...)
	require.NoError(t, err)
	_, err = f.s.Append(ctx, 20, 25, evs[20:]...)
	require.NoError(t, err)
	require.Equal(t, before, f.ids(t)[:20])
	require.Equal(t, idsOf(evs), f.ids(t))
}

// Redis restored from an older snapshot: it is simply behind, and refills
// the same ids.
func TestRestoredSnapshotRefillKeepsIDs(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	evs := outbox(t, 30, "a", "b")
	_, err := f.s.Append(ctx, 0, 10, evs[:10]...)
	require.NoError(t, err)
	snapStream, err := f.rd.Client.Dump(ctx, f.keys.EventStream()).Result()
	require.NoError(t, err)
	snapTop, err := f.rd.Client.Dump(ctx, f.keys.EventStreamTop()).Result()
	require.NoError(t, err)
	_, err = f.s.Append(ctx, 10, 20, evs[10:20]...)
	require.NoError(t, err)
	want := f.ids(t)

	require.NoError(t, f.rd.Client.RestoreReplace(ctx, f.keys.EventStream(), 0, snapStream).Err())
	require.NoError(t, f.rd.Client.RestoreReplace(ctx, f.keys.EventStreamTop(), 0, snapTop).Err())
	top, err := f.s.Append(ctx, 20, 30, evs[20:]...)
	require.ErrorIs(t, err, stream.ErrGap)
	require.EqualValues(t, 10, top)
	_, err = f.s.Append(ctx, 10, 20, evs[10:20]...)
	require.NoError(t, err)
	_, err = f.s.Append(ctx, 20, 30, evs[20:]...)
	require.NoError(t, err)
	require.Equal(t, want, f.ids(t)[:20])
	require.Equal(t, idsOf(evs), f.ids(t))
}

// A lost top key (the stream survived) falls back to the newest entry.
func TestTopFallsBackToNewestEntry(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	_, err := f.s.Append(ctx, 0, 7, outbox(t, 7, "a")...)
	require.NoError(t, err)
	require.NoError(t, f.rd.Client.Del(ctx, f.keys.EventStreamTop()).Err())
	top, err := f.s.Top(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 7, top)
	last, err := f.s.LastAllID(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 7, last.GSeq)
}

func TestRetentionTrims(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.s.MaxLen = 10
	_, err := f.s.Append(context.Background(), 0, 300, outbox(t, 300, "a")...)
	require.NoError(t, err)
	got := f.ids(t)
	require.GreaterOrEqual(t, len(got), 10, "MAXLEN ~ keeps at least the limit")
	require.Less(t, len(got), 300, "older entries are trimmed")
	require.Equal(t, "300-300", got[len(got)-1])
}

func TestReadAllBlocksForNew(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	last, err := f.s.LastAllID(ctx)
	require.NoError(t, err)
	require.Equal(t, stream.ID{}, last)
	none, err := f.s.ReadAll(ctx, last, 50*time.Millisecond, 10)
	require.NoError(t, err)
	require.Empty(t, none)
	evs := outbox(t, 2, "t5")
	done := make(chan []stream.Entry, 1)
	go func() {
		got, _ := f.s.ReadAll(ctx, stream.AfterGSeq(1), 5*time.Second, 10)
		done <- got
	}()
	_, err = f.s.Append(ctx, 0, 2, evs...)
	require.NoError(t, err)
	got := <-done
	require.Len(t, got, 1, "only what follows position 1")
	require.Equal(t, stream.EventID(evs[1]), got[0].ID)
}
