// Package relay moves committed events from the Postgres outbox to the Redis
// event stream.
//
// The protocol, told once:
//
//  1. A transition commits its event to the outbox (internal/postgres) with
//     the topology's next seq.
//  2. Publish, called right after that commit by the api and the workers,
//     stamps: one short Postgres transaction gives every committed, unstamped
//     event (its own and any other process's) the next global positions gseq,
//     gap-free, and commits. "<gseq>-<seq>" is now the event's id for ever.
//     Within a process one Publish stamps at a time; the others wait for its
//     round and return if it covered their events.
//  3. Publish then makes the Redis stream cover everything up to the clock
//     it just advanced: it appends what it stamped, and if the stream lacks
//     earlier positions (another stamper has not appended yet, or Redis lost
//     them) it first appends them from the outbox by gseq, page by page.
//     The stream's append script skips what is already there, so racing
//     publishers append each entry once, in order (internal/stream).
//  4. Sweep (the worker's periodic sweep) does the same for whatever the
//     fast path could not (Redis down, a process killed between commit and
//     publish) and records in Postgres how far Redis is confirmed, which is
//     where outbox pruning stops.
//
// Every catch-up loop either raises the stream's top or returns: a page read
// from the outbox moves top to the end of the range it covers even when
// pruning left holes in it, and a Redis that is far behind (restarted empty,
// restored from an old snapshot, a lagging replica promoted) is refilled only
// with the newest events its retention would keep; readers that miss older
// ones fill in from the outbox themselves.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/stream"
)

// Tuning.
const (
	// stampBatch bounds the events one stamping transaction takes.
	stampBatch = 1000
	// publishRounds bounds the stamping rounds of one Publish; a larger
	// backlog is the sweep's.
	publishRounds = 4
	// sweepRounds bounds the stamping rounds of one Sweep.
	sweepRounds = 1000
	// fillPage bounds one outbox read while filling the stream.
	fillPage = 500
	// publishTimeout bounds a Publish whose caller set no deadline.
	publishTimeout = 5 * time.Second
)

// Relay publishes outbox events.
type Relay struct {
	DB      *postgres.DB
	Streams *stream.Streams
	Log     *slog.Logger

	appends atomic.Int64

	mu    sync.Mutex
	round chan struct{} // closed when the Publish stamping now ends
}

// New returns a Relay.
func New(db *postgres.DB, s *stream.Streams, log *slog.Logger) *Relay {
	if log == nil {
		log = slog.Default()
	}
	return &Relay{DB: db, Streams: s, Log: log}
}

// Appends returns how many append calls the relay has made to Redis (each
// moves the stream's top forward or fails): a progress counter for tests
// and diagnostics.
func (r *Relay) Appends() int64 { return r.appends.Load() }

// Publish relays events that were just committed. It never fails the
// caller: a problem is logged and left for the sweep, which finds the events
// in the outbox. evs only says what must be covered: stamping takes every
// committed event in the outbox, in (topology, seq) order, and an event
// another publisher stamped first is that publisher's to append.
//
// Within a process one Publish stamps at a time and the others wait for its
// round (stamp and append) to end, then check whether it covered their
// events: stamping is serialised by a row lock anyway, and without this every
// concurrent publisher would queue on that lock in turn (a convoy of round
// trips under load) to find its events already stamped.
func (r *Relay) Publish(ctx context.Context, evs ...domain.Event) {
	if len(evs) == 0 {
		return
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, publishTimeout)
		defer cancel()
	}
	for {
		r.mu.Lock()
		if wait := r.round; wait != nil {
			r.mu.Unlock()
			select {
			case <-wait:
			case <-ctx.Done():
				r.Log.WarnContext(ctx, "event publish deferred to sweep", "topology_id", evs[0].TopologyID, "err", ctx.Err())
				return
			}
			pending, err := r.DB.AnyUnstamped(ctx, evs)
			if err != nil {
				r.Log.WarnContext(ctx, "event publish deferred to sweep", "topology_id", evs[0].TopologyID, "err", err)
				return
			}
			if !pending {
				return // the round stamped (and appended) them, or another process did
			}
			continue
		}
		round := make(chan struct{})
		r.round = round
		r.mu.Unlock()
		r.publishRound(ctx, evs[0].TopologyID)
		r.mu.Lock()
		r.round = nil
		r.mu.Unlock()
		close(round)
		return
	}
}

// publishRound stamps every committed event (up to a bound) and appends it.
func (r *Relay) publishRound(ctx context.Context, tid string) {
	for range publishRounds {
		st, err := r.DB.StampEvents(ctx, stampBatch)
		if err != nil {
			r.Log.WarnContext(ctx, "event publish deferred to sweep", "topology_id", tid, "err", err)
			return
		}
		if len(st.Events) == 0 {
			return
		}
		if err := r.appendStamp(ctx, st); err != nil {
			r.Log.WarnContext(ctx, "event publish deferred to sweep", "topology_id", tid,
				"gseq_from", st.Before+1, "gseq_to", st.After, "err", err)
			return
		}
		if len(st.Events) < stampBatch {
			return
		}
	}
}

// appendStamp appends what one stamping transaction stamped, first filling
// whatever the stream lacks before it.
func (r *Relay) appendStamp(ctx context.Context, st postgres.Stamp) error {
	top, err := r.append(ctx, st.Before, st.After, st.Events)
	if !errors.Is(err, stream.ErrGap) {
		return err
	}
	if _, err := r.fill(ctx, top, st.Before); err != nil {
		return err
	}
	_, err = r.append(ctx, st.Before, st.After, st.Events)
	return err
}

func (r *Relay) append(ctx context.Context, prev, upto int64, evs []domain.Event) (int64, error) {
	r.appends.Add(1)
	return r.Streams.Append(ctx, prev, upto, evs...)
}

// fill appends outbox events after top until the stream covers target and
// returns the new top. Each round raises top by at least one page of the
// outbox or to target, or returns: it cannot spin. Positions more than the
// stream's retention below target are skipped (the stream would trim them at
// once); readers that still need them read the outbox.
func (r *Relay) fill(ctx context.Context, top, target int64) (int64, error) {
	for top < target {
		from := max(top, target-r.Streams.Retention())
		page, err := r.DB.EventsByGSeq(ctx, from, target, fillPage)
		if err != nil {
			return top, err
		}
		upto := target
		if len(page) == fillPage {
			upto = page[len(page)-1].GSeq
		}
		next, err := r.append(ctx, top, upto, page)
		if errors.Is(err, stream.ErrGap) {
			return next, fmt.Errorf("relay: the stream went back to %d while filling from %d: %w", next, top, err)
		} else if err != nil {
			return top, err
		}
		if next <= top {
			return next, fmt.Errorf("relay: the stream did not advance past %d", top)
		}
		top = next
	}
	return top, nil
}

// Sweep stamps every committed event, makes the stream cover the clock and
// records that in Postgres (relay_clock.appended_gseq, which bounds
// pruning).
func (r *Relay) Sweep(ctx context.Context) error {
	for round := 0; round < sweepRounds; round++ {
		st, err := r.DB.StampEvents(ctx, stampBatch)
		if err != nil {
			return err
		}
		if len(st.Events) < stampBatch {
			break
		}
	}
	clock, err := r.DB.EventClock(ctx)
	if err != nil {
		return err
	}
	top, err := r.Streams.Top(ctx)
	if err != nil {
		return err
	}
	if top > clock.GSeq {
		r.Log.WarnContext(ctx, "event stream is ahead of the outbox clock; was PostgreSQL restored?",
			"stream_top", top, "clock", clock.GSeq)
	}
	if top, err = r.fill(ctx, top, clock.GSeq); err != nil {
		return err
	}
	return r.DB.MarkAppended(ctx, min(top, clock.GSeq))
}
