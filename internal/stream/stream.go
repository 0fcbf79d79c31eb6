// Package stream is mazenet's Redis-streams layer and the one place that
// knows its keys, entry fields and ids: it appends stamped outbox events to
// the event stream exactly once and in order, and reads them back for the
// SSE process and the workers.
//
// Design (SYSTEM §3.3, §3.6). An event's identity is durable: Postgres
// stamps every committed event with a global, gap-free position gseq
// (internal/postgres, StampEvents), and the entry is XADDed under the
// explicit id "<gseq>-<seq>" (ID), so a copy appended again after Redis lost
// it carries the same id. One Lua script appends: it keeps `top`, the highest
// gseq the stream covers, and is given a range (prev, upto] together with
// every stamped event in it. If top < prev the stream is missing events
// before the range and the script refuses (ErrGap) so the caller can append
// (top, prev] from the outbox first; otherwise it appends the events above
// top, in order, and raises top to upto. Any number of appenders can race:
// each entry lands once. upto may lie beyond the last event given, when the
// outbox has nothing left in that range (pruned): top moves over the hole,
// which is how a restarted, restored or failed-over Redis always catches up.
//
// The per-topology view is the SSE process's filter of this one stream; a
// resume is answered from the outbox, not from Redis.
//
// The script touches two keys; on Redis Cluster they would need one hash
// slot. Heroku Redis and a single Redis are not clustered.
package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/rediskey"
)

// DefaultMaxLen is the stream's default retention: MAXLEN ~ keeps at least
// this many of the newest entries. Readers that fall further behind fill in
// from the outbox, so it only needs to cover a reader's normal lag.
const DefaultMaxLen = 10000

// Entry fields.
const (
	fieldTopology = "t"
	fieldSeq      = "s"
	fieldName     = "e"
	fieldData     = "d"
)

// Streams appends to and reads from the event stream.
type Streams struct {
	rdb  redis.UniversalClient
	keys rediskey.Keys
	// MaxLen is the approximate retention (XADD MAXLEN ~); 0 means
	// DefaultMaxLen.
	MaxLen int64
}

// New returns Streams on rdb with keys.
func New(rdb redis.UniversalClient, keys rediskey.Keys) *Streams {
	return &Streams{rdb: rdb, keys: keys, MaxLen: DefaultMaxLen}
}

// Retention is the number of newest entries the stream keeps at least.
func (s *Streams) Retention() int64 {
	if s.MaxLen <= 0 {
		return DefaultMaxLen
	}
	return s.MaxLen
}

// topLua computes top: the top key, or the gseq of the newest entry if that
// is higher (the key lost, the stream kept), or 0.
const topLua = `
local top = tonumber(redis.call('GET', KEYS[2]) or '0')
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if newest[1] then
  local g = tonumber(string.match(newest[1][1], '^(%d+)'))
  if g and g > top then top = g end
end
`

// appendScript appends a run of stamped events.
// KEYS: stream, top. ARGV: prev, upto, maxlen, then (gseq, seq, topology,
// name, data)* sorted by gseq, which are every stamped event in (prev, upto].
// Returns {top, gap}: gap=1 means top < prev and nothing was written.
var appendScript = redis.NewScript(topLua + `
if top < tonumber(ARGV[1]) then
  return {top, 1}
end
local i = 4
while i <= #ARGV do
  local g = tonumber(ARGV[i])
  if g > top then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], ARGV[i] .. '-' .. ARGV[i+1],
      '` + fieldTopology + `', ARGV[i+2], '` + fieldSeq + `', ARGV[i+1], '` + fieldName + `', ARGV[i+3], '` + fieldData + `', ARGV[i+4])
    top = g
  end
  i = i + 5
end
local upto = tonumber(ARGV[2])
if upto > top then top = upto end
redis.call('SET', KEYS[2], string.format('%d', top))
return {top, 0}
`)

// topScript reads top.
var topScript = redis.NewScript(topLua + `
return top
`)

// ErrGap means the stream lacks events before the range given to Append; the
// caller appends them (from the outbox, after the returned top) first.
var ErrGap = errors.New("stream: gap before the appended range")

// Append appends evs, which must be every stamped event with prev < gseq <=
// upto, sorted by gseq (events already in the stream are skipped). It returns
// the stream's top after the call, which is at least upto on success, and
// ErrGap (with the current top, below prev) when earlier events are missing.
func (s *Streams) Append(ctx context.Context, prev, upto int64, evs ...domain.Event) (int64, error) {
	args := make([]any, 0, 3+5*len(evs))
	args = append(args, prev, upto, s.Retention())
	last := prev
	for _, ev := range evs {
		if ev.GSeq <= last || ev.GSeq > upto || ev.Seq < 1 {
			return 0, fmt.Errorf("stream: append: event %d-%d outside (%d, %d] or out of order", ev.GSeq, ev.Seq, last, upto)
		}
		last = ev.GSeq
		args = append(args, ev.GSeq, ev.Seq, ev.TopologyID, ev.Name, ev.Envelope())
	}
	res, err := appendScript.Run(ctx, s.rdb, s.scriptKeys(), args...).Int64Slice()
	if err != nil {
		return 0, fmt.Errorf("stream: append: %w", err)
	}
	if res[1] == 1 {
		return res[0], ErrGap
	}
	return res[0], nil
}

// Top returns the highest gseq the stream covers (0 for a new or emptied
// Redis).
func (s *Streams) Top(ctx context.Context) (int64, error) {
	top, err := topScript.Run(ctx, s.rdb, s.scriptKeys()).Int64()
	if err != nil {
		return 0, fmt.Errorf("stream: top: %w", err)
	}
	return top, nil
}

func (s *Streams) scriptKeys() []string {
	return []string{s.keys.EventStream(), s.keys.EventStreamTop()}
}

// Entry is one event as the SSE process and the workers see it.
type Entry struct {
	ID         ID // the SSE `id:`
	TopologyID string
	Name       string // the SSE `event:`
	Data       string // the envelope JSON, the SSE `data:`
}

// EntryOf is the entry of a stamped event as read from the outbox; it is the
// same entry the stream holds for it (the envelope is rendered by the same
// function on both paths).
func EntryOf(ev domain.Event) Entry {
	return Entry{ID: EventID(ev), TopologyID: ev.TopologyID, Name: ev.Name, Data: string(ev.Envelope())}
}

func decode(msgs []redis.XMessage) []Entry {
	out := make([]Entry, 0, len(msgs))
	for _, m := range msgs {
		id, _ := ParseID(m.ID) // Redis entry ids always parse
		e := Entry{ID: id}
		e.TopologyID, _ = m.Values[fieldTopology].(string)
		e.Name, _ = m.Values[fieldName].(string)
		e.Data, _ = m.Values[fieldData].(string)
		out = append(out, e)
	}
	return out
}

// ReadAll blocks up to block for up to count entries after id (the zero ID
// for everything retained). It returns nil, nil on timeout. This is the
// tail read of the SSE reader and of the workers' wake-up path.
func (s *Streams) ReadAll(ctx context.Context, after ID, block time.Duration, count int64) ([]Entry, error) {
	res, err := s.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{s.keys.EventStream(), after.String()}, Block: block, Count: count}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("stream: read: %w", err)
	}
	if len(res) == 0 {
		return nil, nil
	}
	return decode(res[0].Messages), nil
}

// LastAllID returns the id of the newest entry, or the zero ID when the
// stream is empty.
func (s *Streams) LastAllID(ctx context.Context) (ID, error) {
	msgs, err := s.rdb.XRevRangeN(ctx, s.keys.EventStream(), "+", "-", 1).Result()
	if err != nil {
		return ID{}, fmt.Errorf("stream: last id: %w", err)
	}
	if len(msgs) == 0 {
		return ID{}, nil
	}
	return decode(msgs)[0].ID, nil
}
