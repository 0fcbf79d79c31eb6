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
)

// events builds seq from..to of a topology.
func events(t *testing.T, tid string, from, to int64) []domain.Event {
	t.Helper()
	var out []domain.Event
	for seq := from; seq <= to; seq++ {
		ev, err := domain.NewEvent(tid, domain.EventEnqueued, map[string]any{"mutation_id": fmt.Sprint(seq), "op": "add_lan"}, time.Now())
		require.NoError(t, err)
		ev.Seq = seq
		out = append(out, ev)
	}
	return out
}

func newStreams(t *testing.T) *stream.Streams {
	rd := dbtest.NewRedis(t)
	return stream.New(rd.Client, rediskey.New(rd.Prefix))
}

func TestAppendOnceInOrderWithSharedIDs(t *testing.T) {
	t.Parallel()
	s := newStreams(t)
	ctx := context.Background()
	evs := events(t, "t1", 1, 5)

	wm, err := s.Append(ctx, 0, evs[:3]...)
	require.NoError(t, err)
	require.EqualValues(t, 3, wm)
	// Duplicates (1..3) are skipped, 4..5 are new.
	wm, err = s.Append(ctx, 0, evs...)
	require.NoError(t, err)
	require.EqualValues(t, 5, wm)

	got, err := s.RangeTopology(ctx, "t1", "", 100)
	require.NoError(t, err)
	require.Len(t, got, 5)
	all, err := s.RangeAll(ctx, "", 100)
	require.NoError(t, err)
	require.Len(t, all, 5)
	for i, e := range got {
		require.EqualValues(t, i+1, e.Seq)
		require.Equal(t, all[i].ID, e.ID, "same id in both streams")
		require.Equal(t, "t1", e.TopologyID)
		require.Equal(t, domain.EventEnqueued, e.Name)
		require.JSONEq(t, string(evs[i].Envelope()), e.Data)
	}
	after, err := s.RangeTopology(ctx, "t1", got[2].ID, 100)
	require.NoError(t, err)
	require.Len(t, after, 2)
	require.EqualValues(t, 4, after[0].Seq)
}

func TestAppendReportsGap(t *testing.T) {
	t.Parallel()
	s := newStreams(t)
	ctx := context.Background()
	evs := events(t, "t1", 1, 4)
	_, err := s.Append(ctx, 0, evs[0])
	require.NoError(t, err)
	wm, err := s.Append(ctx, 0, evs[2:]...)
	require.True(t, errors.Is(err, stream.ErrGap), "got %v", err)
	require.EqualValues(t, 1, wm)
	got, err := s.RangeTopology(ctx, "t1", "", 100)
	require.NoError(t, err)
	require.Len(t, got, 1, "nothing after a gap is appended")
	wms, err := s.Watermarks(ctx, []string{"t1"})
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"t1": 1}, wms)
}

func TestAppendFloorForUnknownTopology(t *testing.T) {
	t.Parallel()
	s := newStreams(t)
	ctx := context.Background()
	evs := events(t, "t2", 1, 12)
	_, err := s.Append(ctx, 10, evs[:10]...)
	require.NoError(t, err)
	got, err := s.RangeTopology(ctx, "t2", "", 100)
	require.NoError(t, err)
	require.Empty(t, got, "events at or below the floor are already published")
	_, err = s.Append(ctx, 10, evs[10:]...)
	require.NoError(t, err)
	got, err = s.RangeTopology(ctx, "t2", "", 100)
	require.NoError(t, err)
	require.Len(t, got, 2)
	wms, err := s.Watermarks(ctx, []string{"t2", "nope"})
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"t2": 12}, wms)
}

func TestConcurrentPublishersNeverDuplicate(t *testing.T) {
	t.Parallel()
	s := newStreams(t)
	ctx := context.Background()
	evs := events(t, "t3", 1, 50)
	var wg sync.WaitGroup
	for p := 0; p < 8; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range evs {
				// Each publisher tries every prefix; gaps are expected and harmless.
				_, _ = s.Append(ctx, 0, evs[:i+1]...)
			}
		}()
	}
	wg.Wait()
	got, err := s.RangeTopology(ctx, "t3", "", 1000)
	require.NoError(t, err)
	require.Len(t, got, 50)
	for i, e := range got {
		require.EqualValues(t, i+1, e.Seq)
	}
}

func TestRetentionTrimsTopologyStream(t *testing.T) {
	t.Parallel()
	s := newStreams(t)
	s.TopologyMaxLen = 10
	ctx := context.Background()
	_, err := s.Append(ctx, 0, events(t, "t4", 1, 300)...)
	require.NoError(t, err)
	got, err := s.RangeTopology(ctx, "t4", "", 1000)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(got), 10, "MAXLEN ~ keeps at least the limit")
	require.Less(t, len(got), 300, "older entries are trimmed")
	require.EqualValues(t, 300, got[len(got)-1].Seq)
}

func TestReadAllBlocksForNew(t *testing.T) {
	t.Parallel()
	s := newStreams(t)
	ctx := context.Background()
	last, err := s.LastAllID(ctx)
	require.NoError(t, err)
	require.Equal(t, "0-0", last)
	none, err := s.ReadAll(ctx, "$", 50*time.Millisecond, 10)
	require.NoError(t, err)
	require.Empty(t, none)
	done := make(chan []stream.Entry, 1)
	go func() {
		got, _ := s.ReadAll(ctx, last, 5*time.Second, 10)
		done <- got
	}()
	_, err = s.Append(ctx, 0, events(t, "t5", 1, 1)...)
	require.NoError(t, err)
	got := <-done
	require.Len(t, got, 1)
	require.Equal(t, "t5", got[0].TopologyID)
}
