// Package stream is mazenet's Redis-streams layer: it appends committed
// transitions to the per-topology and all-topologies streams exactly once and
// in order, and reads them back for the SSE process.
//
// Design (SYSTEM §3.3). Every transition is first written to the Postgres
// outbox with a per-topology seq, in the transaction that makes it. Append
// runs a Lua script that keeps, per topology, the highest seq already in the
// streams (a hash field): a seq at or below it is a duplicate and is skipped;
// a seq above it plus one is a gap, and the caller must append the missing
// events (from the outbox) first. So any number of publishers (api, workers,
// the sweep) can race on the same topology and each event lands once, in seq
// order. Each event is XADDed to the all-topologies stream with an
// auto-generated id and then to the topology's stream with that same id, so a
// client's Last-Event-ID is valid in both.
//
// The script touches three keys; on Redis Cluster they would need one hash
// slot. Heroku Redis and a single Redis are not clustered.
package stream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/rediskey"
)

// Default retention. The per-topology stream keeps at least 1,000 entries
// (DOMAIN §10); MAXLEN ~ never trims below the figure.
const (
	DefaultTopologyMaxLen = 1000
	DefaultAllMaxLen      = 10000
)

// Streams appends to and reads from the event streams.
type Streams struct {
	rdb            redis.UniversalClient
	keys           rediskey.Keys
	TopologyMaxLen int64
	AllMaxLen      int64
}

// New returns Streams on rdb with keys.
func New(rdb redis.UniversalClient, keys rediskey.Keys) *Streams {
	return &Streams{rdb: rdb, keys: keys, TopologyMaxLen: DefaultTopologyMaxLen, AllMaxLen: DefaultAllMaxLen}
}

// Keys returns the key builder in use.
func (s *Streams) Keys() rediskey.Keys { return s.keys }

// appendScript appends a run of consecutive events of one topology.
// KEYS: all stream, topology stream, watermark hash.
// ARGV: topology id, floor, topology maxlen, all maxlen, then (seq, name, data)*.
// Returns {watermark, gap} where gap=1 means the first new event did not follow
// the watermark and nothing from it on was appended.
var appendScript = redis.NewScript(`
local tid = ARGV[1]
local last = tonumber(redis.call('HGET', KEYS[3], tid) or ARGV[2])
local i = 5
while i <= #ARGV do
  local seq = tonumber(ARGV[i])
  if seq > last then
    if seq ~= last + 1 then
      return {last, 1}
    end
    local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 't', tid, 's', ARGV[i], 'e', ARGV[i+1], 'd', ARGV[i+2])
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], id, 't', tid, 's', ARGV[i], 'e', ARGV[i+1], 'd', ARGV[i+2])
    last = seq
  end
  i = i + 3
end
redis.call('HSET', KEYS[3], tid, last)
return {last, 0}
`)

// ErrGap means Append met an event whose predecessor is not in the stream yet;
// append the outbox from the returned watermark first.
var ErrGap = errors.New("stream: gap before event")

// Append appends events of ONE topology, sorted by seq, skipping those already
// present. floor is the watermark to assume when Redis has none (the outbox
// watermark last confirmed in Postgres; 0 for a new topology). It returns the
// watermark after the call, and ErrGap when the events do not follow it.
func (s *Streams) Append(ctx context.Context, floor int64, evs ...domain.Event) (int64, error) {
	if len(evs) == 0 {
		return 0, nil
	}
	tid := evs[0].TopologyID
	args := make([]any, 0, 4+3*len(evs))
	args = append(args, tid, floor, s.TopologyMaxLen, s.AllMaxLen)
	for _, ev := range evs {
		if ev.TopologyID != tid {
			return 0, fmt.Errorf("stream: append mixes topologies %s and %s", tid, ev.TopologyID)
		}
		args = append(args, ev.Seq, ev.Name, ev.Envelope())
	}
	keys := []string{s.keys.AllStream(), s.keys.TopologyStream(tid), s.keys.RelayWatermarks()}
	res, err := appendScript.Run(ctx, s.rdb, keys, args...).Int64Slice()
	if err != nil {
		return 0, fmt.Errorf("stream: append: %w", err)
	}
	if res[1] == 1 {
		return res[0], ErrGap
	}
	return res[0], nil
}

// Watermarks returns the highest appended seq of each topology (0 if unknown,
// with known=false).
func (s *Streams) Watermarks(ctx context.Context, tids []string) (map[string]int64, error) {
	out := make(map[string]int64, len(tids))
	if len(tids) == 0 {
		return out, nil
	}
	vals, err := s.rdb.HMGet(ctx, s.keys.RelayWatermarks(), tids...).Result()
	if err != nil {
		return nil, fmt.Errorf("stream: watermarks: %w", err)
	}
	for i, v := range vals {
		if str, ok := v.(string); ok {
			n, _ := strconv.ParseInt(str, 10, 64)
			out[tids[i]] = n
		}
	}
	return out, nil
}

// Entry is one stream entry as the SSE process sees it.
type Entry struct {
	ID         string // Redis stream id, the SSE `id:`
	TopologyID string
	Seq        int64
	Name       string // the SSE `event:`
	Data       string // the envelope JSON, the SSE `data:`
}

func decode(msgs []redis.XMessage) []Entry {
	out := make([]Entry, 0, len(msgs))
	for _, m := range msgs {
		e := Entry{ID: m.ID}
		e.TopologyID, _ = m.Values["t"].(string)
		e.Name, _ = m.Values["e"].(string)
		e.Data, _ = m.Values["d"].(string)
		if s, ok := m.Values["s"].(string); ok {
			e.Seq, _ = strconv.ParseInt(s, 10, 64)
		}
		out = append(out, e)
	}
	return out
}

// RangeTopology returns up to count entries of a topology's stream with id
// strictly greater than after ("" or "-" for the start).
func (s *Streams) RangeTopology(ctx context.Context, tid, after string, count int64) ([]Entry, error) {
	return s.rangeKey(ctx, s.keys.TopologyStream(tid), after, count)
}

// RangeAll is RangeTopology over the all-topologies stream.
func (s *Streams) RangeAll(ctx context.Context, after string, count int64) ([]Entry, error) {
	return s.rangeKey(ctx, s.keys.AllStream(), after, count)
}

func (s *Streams) rangeKey(ctx context.Context, key, after string, count int64) ([]Entry, error) {
	start := "-"
	if after != "" && after != "-" {
		start = "(" + after
	}
	msgs, err := s.rdb.XRangeN(ctx, key, start, "+", count).Result()
	if err != nil {
		return nil, fmt.Errorf("stream: range: %w", err)
	}
	return decode(msgs), nil
}

// ReadAll blocks up to block for entries of the all-topologies stream after
// id ("$" for only new ones). It returns nil, nil on timeout.
func (s *Streams) ReadAll(ctx context.Context, after string, block time.Duration, count int64) ([]Entry, error) {
	res, err := s.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{s.keys.AllStream(), after}, Block: block, Count: count}).Result()
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

// LastAllID returns the id of the newest entry of the all-topologies stream,
// or "0-0" when it is empty.
func (s *Streams) LastAllID(ctx context.Context) (string, error) {
	msgs, err := s.rdb.XRevRangeN(ctx, s.keys.AllStream(), "+", "-", 1).Result()
	if err != nil {
		return "", fmt.Errorf("stream: last id: %w", err)
	}
	if len(msgs) == 0 {
		return "0-0", nil
	}
	return msgs[0].ID, nil
}
