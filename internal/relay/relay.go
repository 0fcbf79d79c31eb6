// Package relay moves committed events from the Postgres outbox to the Redis
// streams. Publish is the fast path right after a commit; CatchUp and Sweep
// repair whatever the fast path could not do (Redis down, a process killed
// between commit and publish, two publishers racing). Exactly-once and order
// come from the stream package's seq watermark, so every path is safe to run
// any number of times, from any process.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/stream"
)

// catchUpBatch bounds one outbox read.
const catchUpBatch = 500

// Relay publishes outbox events.
type Relay struct {
	DB      *postgres.DB
	Streams *stream.Streams
	Log     *slog.Logger
}

// New returns a Relay.
func New(db *postgres.DB, s *stream.Streams, log *slog.Logger) *Relay {
	if log == nil {
		log = slog.Default()
	}
	return &Relay{DB: db, Streams: s, Log: log}
}

// Publish appends events that were just committed. It never fails the
// caller: a problem is logged and left for the sweep, which finds the events
// in the outbox. Events may belong to several topologies; each topology's run
// must be in seq order.
func (r *Relay) Publish(ctx context.Context, evs ...domain.Event) {
	for start := 0; start < len(evs); {
		end := start + 1
		for end < len(evs) && evs[end].TopologyID == evs[start].TopologyID {
			end++
		}
		run := evs[start:end]
		start = end
		_, err := r.Streams.Append(ctx, 0, run...)
		if errors.Is(err, stream.ErrGap) {
			err = r.CatchUp(ctx, run[0].TopologyID)
		}
		if err != nil {
			r.Log.WarnContext(ctx, "event publish deferred to sweep", "topology_id", run[0].TopologyID, "err", err)
		}
	}
}

// CatchUp appends every outbox event of a topology that the stream lacks.
func (r *Relay) CatchUp(ctx context.Context, tid string) error {
	floor, err := r.floor(ctx, tid)
	if err != nil {
		return err
	}
	for {
		evs, err := r.DB.EventsAfter(ctx, tid, floor, catchUpBatch)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			return nil
		}
		wm, err := r.Streams.Append(ctx, floor, evs...)
		if errors.Is(err, stream.ErrGap) {
			// The watermark in Redis is behind the outbox read position: it was
			// lost (Redis restarted empty). Resume from what Redis says.
			floor = wm
			continue
		} else if err != nil {
			return err
		}
		if len(evs) < catchUpBatch {
			return nil
		}
		floor = wm
	}
}

// floor is where the outbox read starts: the Redis watermark if known, else the
// watermark last confirmed in Postgres.
func (r *Relay) floor(ctx context.Context, tid string) (int64, error) {
	wms, err := r.Streams.Watermarks(ctx, []string{tid})
	if err != nil {
		return 0, err
	}
	if wm, ok := wms[tid]; ok {
		return wm, nil
	}
	var seq int64
	if err := r.DB.GetContext(ctx, &seq, `SELECT event_relayed_seq FROM topologies WHERE id = $1`, tid); err != nil {
		return 0, fmt.Errorf("relay: floor: %w", err)
	}
	return seq, nil
}

// Sweep catches up every topology whose outbox is ahead of its confirmed
// watermark and confirms the new watermark in Postgres. It returns how many
// topologies it visited.
func (r *Relay) Sweep(ctx context.Context) (int, error) {
	pending, err := r.DB.UnrelayedTopologies(ctx, 1000)
	if err != nil {
		return 0, err
	}
	var firstErr error
	for tid := range pending {
		if err := r.CatchUp(ctx, tid); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		wms, err := r.Streams.Watermarks(ctx, []string{tid})
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if err := r.DB.MarkRelayed(ctx, tid, wms[tid]); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return len(pending), firstErr
}
