// Package relay moves committed events from the Postgres outbox to the Redis
// event stream.
//
// The protocol, told once:
//
//  1. A transition commits its event to the outbox (internal/postgres) with
//     the topology's next seq.
//  2. Right after that commit the api and the workers call Notify (or
//     Publish, which is Notify and a wait). Each process has one publishing
//     loop, started on demand: a Notify asks it for a round that starts
//     after the call, and every Notify made while a round runs is answered
//     by the next one, so a burst of commits costs a few rounds, not one
//     each, and the committer does not wait for Postgres' stamping commit
//     or Redis unless it wants to. A round stamps: one short Postgres
//     transaction gives every committed, unstamped event (this process's
//     and any other's) the next global positions gseq, gap-free, and
//     commits. "<gseq>-<seq>" is now the event's id for ever.
//  3. The round then makes the Redis stream cover everything up to the
//     clock it just advanced: it appends what it stamped (all of it, every
//     topology's consecutive events, in one call of the append script), and
//     if the stream lacks earlier positions (another stamper has not
//     appended yet, or Redis lost them) it first appends them from the
//     outbox by gseq, page by page. The stream's append script skips what
//     is already there, so racing processes append each entry once, in
//     order (internal/stream).
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

	mu   sync.Mutex
	busy bool          // the publishing loop is running
	next chan struct{} // closed when the round the loop starts next ends
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

// Notify asks for a publishing round that starts after this call, so it
// covers every event committed before it, and returns at once. The
// returned channel is closed when that round has ended, whether or not it
// managed to stamp and append (a problem is logged and left for the sweep,
// which finds the events in the outbox). Rounds run one at a time in a
// goroutine that exits when nothing more is asked; every Notify made while
// a round runs shares the next round.
func (r *Relay) Notify() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.next == nil {
		r.next = make(chan struct{})
	}
	done := r.next
	if !r.busy {
		r.busy = true
		go r.loop()
	}
	return done
}

// loop runs rounds while they are asked for.
func (r *Relay) loop() {
	for {
		r.mu.Lock()
		done := r.next
		r.next = nil
		if done == nil {
			r.busy = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
		r.publishRound(ctx)
		cancel()
		close(done)
	}
}

// Publish relays events that were just committed and waits (until ctx
// ends) for the round that covers them: Notify, then a wait. It never fails
// the caller: a problem is logged and left for the sweep. evs only says
// whether there is anything to do: a round takes every committed event in
// the outbox, in (topology, seq) order.
func (r *Relay) Publish(ctx context.Context, evs ...domain.Event) {
	if len(evs) == 0 {
		return
	}
	select {
	case <-r.Notify():
	case <-ctx.Done():
		r.Log.WarnContext(ctx, "event publish left to the relay's round or the sweep",
			"topology_id", evs[0].TopologyID, "err", ctx.Err())
	}
}

// publishRound stamps every committed event (up to a bound) and appends it.
func (r *Relay) publishRound(ctx context.Context) {
	for range publishRounds {
		st, err := r.DB.StampEvents(ctx, stampBatch)
		if err != nil {
			r.Log.WarnContext(ctx, "event publish deferred to sweep", "err", err)
			return
		}
		if len(st.Events) == 0 {
			return
		}
		if err := r.appendStamp(ctx, st); err != nil {
			r.Log.WarnContext(ctx, "event publish deferred to sweep",
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
