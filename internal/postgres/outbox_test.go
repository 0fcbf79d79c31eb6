package postgres_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
)

// insertEvents commits n events of topology tid in one transaction.
func insertEvents(t *testing.T, db *postgres.DB, tid string, n int) {
	t.Helper()
	err := db.InTx(context.Background(), func(tx *sqlx.Tx) error {
		for i := 0; i < n; i++ {
			ev, err := domain.NewEvent(tid, domain.EventStatus, map[string]any{"state": "active", "i": i}, time.Now())
			if err != nil {
				return err
			}
			if _, err := postgres.InsertEvent(context.Background(), tx, ev); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
}

func TestStampEventsGapFreeInTopologyOrder(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	a, b := newTopology(t, db, domain.StatusActive), newTopology(t, db, domain.StatusActive)
	insertEvents(t, db, a, 3)
	insertEvents(t, db, b, 2)
	insertEvents(t, db, a, 1)

	st, err := db.StampEvents(ctx, 4)
	require.NoError(t, err)
	require.EqualValues(t, 0, st.Before)
	require.EqualValues(t, 4, st.After)
	require.Len(t, st.Events, 4)
	for i, ev := range st.Events {
		require.EqualValues(t, i+1, ev.GSeq)
		require.Equal(t, domain.EventStatus, ev.Name)
	}
	st2, err := db.StampEvents(ctx, 100)
	require.NoError(t, err)
	require.EqualValues(t, 4, st2.Before)
	require.EqualValues(t, 6, st2.After)
	require.Len(t, st2.Events, 2)

	// Each topology's positions follow its seqs.
	for _, tid := range []string{a, b} {
		evs, err := db.EventsAfter(ctx, tid, 0, 100)
		require.NoError(t, err)
		for i := 1; i < len(evs); i++ {
			require.Less(t, evs[i-1].GSeq, evs[i].GSeq)
		}
	}
	none, err := db.StampEvents(ctx, 100)
	require.NoError(t, err)
	require.Empty(t, none.Events)
	clock, err := db.EventClock(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 6, clock.GSeq)
}

// Many writers and many stampers at once: every event gets exactly one
// position, positions are 1..n without a gap, and within each topology they
// follow the seqs (the READ COMMITTED double-stamp this guards against needs
// the clock lock and the stamping read to be separate statements).
func TestStampEventsConcurrent(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	const topologies, writes, perWrite = 4, 25, 3
	tids := make([]string, topologies)
	for i := range tids {
		tids[i] = newTopology(t, db, domain.StatusActive)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var stamped []int64
	for _, tid := range tids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w := 0; w < writes; w++ {
				insertEvents(t, db, tid, perWrite)
				st, err := db.StampEvents(ctx, 7)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, ev := range st.Events {
					stamped = append(stamped, ev.GSeq)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for {
		st, err := db.StampEvents(ctx, 1000)
		require.NoError(t, err)
		if len(st.Events) == 0 {
			break
		}
		for _, ev := range st.Events {
			stamped = append(stamped, ev.GSeq)
		}
	}
	const total = topologies * writes * perWrite
	sort.Slice(stamped, func(i, j int) bool { return stamped[i] < stamped[j] })
	require.Len(t, stamped, total, "every event stamped once")
	for i, g := range stamped {
		require.EqualValues(t, i+1, g, "positions are gap-free")
	}
	for _, tid := range tids {
		evs, err := db.EventsAfter(ctx, tid, 0, total)
		require.NoError(t, err)
		require.Len(t, evs, writes*perWrite)
		for i := 1; i < len(evs); i++ {
			require.Less(t, evs[i-1].GSeq, evs[i].GSeq, "topology %s: positions follow seqs", tid)
		}
	}
	clock, err := db.EventClock(ctx)
	require.NoError(t, err)
	require.EqualValues(t, total, clock.GSeq)
}

func TestPruneEvents(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	tid := newTopology(t, db, domain.StatusActive)
	quiet := newTopology(t, db, domain.StatusActive)
	insertEvents(t, db, quiet, 5)
	insertEvents(t, db, tid, 1010)
	_, err := db.StampEvents(ctx, 5000)
	require.NoError(t, err)

	n, err := db.PruneEvents(ctx, 1000)
	require.NoError(t, err)
	require.Zero(t, n, "nothing is confirmed in Redis yet")
	require.NoError(t, db.MarkAppended(ctx, 5+1005))
	n, err = db.PruneEvents(ctx, 1000)
	require.NoError(t, err)
	require.Equal(t, int64(10), n, "the oldest 10 beyond the newest 1000")
	evs, err := db.EventsAfter(ctx, tid, 0, 2000)
	require.NoError(t, err)
	require.Len(t, evs, 1000)
	require.Equal(t, int64(11), evs[0].Seq)
	clock, err := db.EventClock(ctx)
	require.NoError(t, err)
	require.Equal(t, evs[0].GSeq-1, clock.Pruned, "prune records the highest position it deleted")
	require.EqualValues(t, 1010, clock.Appended)

	// The record never goes back, nor beyond the clock.
	require.NoError(t, db.MarkAppended(ctx, 3))
	require.NoError(t, db.MarkAppended(ctx, 1<<40))
	clock, err = db.EventClock(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1015, clock.Appended)
}

// Deleting a topology takes its outbox with it; the clock records it like a
// prune, so an overview resume from before those events is not complete.
func TestDeleteTopologyRecordsPrunedPositions(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	gone := newTopology(t, db, domain.StatusPending)
	kept := newTopology(t, db, domain.StatusActive)
	insertEvents(t, db, kept, 2)
	insertEvents(t, db, gone, 3)
	_, err := db.StampEvents(ctx, 100)
	require.NoError(t, err)
	evs, err := db.EventsAfter(ctx, gone, 0, 10)
	require.NoError(t, err)
	require.NoError(t, db.DeleteTopology(ctx, gone))
	clock, err := db.EventClock(ctx)
	require.NoError(t, err)
	require.Equal(t, evs[len(evs)-1].GSeq, clock.Pruned)

	p, err := db.OverviewResumePoint(ctx, evs[0].GSeq)
	require.NoError(t, err)
	require.False(t, p.Retained)
	require.Equal(t, clock.Pruned, p.Pruned)
}

func TestResumePoints(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	tid := newTopology(t, db, domain.StatusActive)
	insertEvents(t, db, tid, 3)
	_, err := db.StampEvents(ctx, 100)
	require.NoError(t, err)
	insertEvents(t, db, tid, 1) // seq 4, not stamped

	p, err := db.TopologyResumePoint(ctx, tid, 2)
	require.NoError(t, err)
	require.Equal(t, postgres.ResumePoint{Retained: true, GSeq: 2, Seq: 2, Next: 3}, p)
	p, err = db.TopologyResumePoint(ctx, tid, 3)
	require.NoError(t, err)
	require.Equal(t, postgres.ResumePoint{Retained: true, GSeq: 3, Seq: 3, Next: 4}, p, "an unstamped successor counts")
	p, err = db.TopologyResumePoint(ctx, tid, 4)
	require.NoError(t, err)
	require.Equal(t, postgres.ResumePoint{Retained: true, Seq: 4}, p, "retained but not stamped")
	p, err = db.TopologyResumePoint(ctx, tid, 9)
	require.NoError(t, err)
	require.Equal(t, postgres.ResumePoint{Seq: 9}, p)

	p, err = db.OverviewResumePoint(ctx, 3)
	require.NoError(t, err)
	require.Equal(t, postgres.ResumePoint{Retained: true, GSeq: 3, Seq: 3}, p)

	page, err := db.TopologyEvents(ctx, tid, 1, 2, 10)
	require.NoError(t, err)
	require.Len(t, page, 1, "seq > 1 and gseq <= 2")
	require.EqualValues(t, 2, page[0].Seq)
	all, err := db.EventsByGSeq(ctx, 0, 100, 10)
	require.NoError(t, err)
	require.Len(t, all, 3, "only stamped events have positions")
	require.Equal(t, fmt.Sprint([]int64{1, 2, 3}), fmt.Sprint([]int64{all[0].GSeq, all[1].GSeq, all[2].GSeq}))
}
