package sse

import (
	"io"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/stream"
)

// memSink is a fast path in memory: it takes up to room bytes (all when
// room < 0), and counts frames by their chunk trailers.
type memSink struct {
	mu     sync.Mutex
	room   int
	got    []byte
	writes int
	frames *atomic.Int64
}

func (m *memSink) tryWrite(b []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(b)
	if m.room >= 0 {
		n = min(n, m.room)
		m.room -= n
	}
	if m.frames == nil {
		m.got = append(m.got, b[:n]...)
	} else {
		m.frames.Add(int64(countFrames(b[:n])))
	}
	m.writes++
	return n, nil
}

func (m *memSink) sendRaw(b []byte) error { _, err := m.tryWrite(b); return err }
func (m *memSink) isChunked() bool        { return true }

// countFrames counts the SSE frames ending in b.
func countFrames(b []byte) int {
	n := 0
	for i := 0; i+1 < len(b); i++ {
		if b[i] == '\n' && b[i+1] == '\n' {
			n++
		}
	}
	return n
}

// liveSub subscribes to topology t and hands the stream to the writers, as
// session.live does after the replay.
func liveSub(h *Hub, t string, out fastSink) *subscription {
	sub, pos := h.Subscribe(t)
	sub.last, sub.fast, sub.chunked = pos, out, true
	sub.release()
	return sub
}

func testEntry(gseq int64, t string) stream.Entry {
	return stream.Entry{ID: stream.ID{GSeq: gseq, Seq: gseq}, TopologyID: t, Name: "mutation.enqueued",
		Data: `{"topology_id":"` + t + `","n":` + strconv.FormatInt(gseq, 10) + `}`}
}

// A stream that keeps up is written by the writers, each frame exactly
// once, in order, as chunks encoded once; its session is not woken.
func TestWritersDeliverInOrderWithoutWakingTheSession(t *testing.T) {
	h := newHub(nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), 0, newMetrics())
	out := &memSink{room: -1}
	sub := liveSub(h, "t1", out)
	var want []byte
	for g := int64(1); g <= 50; g++ {
		e := testEntry(g, "t1")
		want = append(want, newFrame(e).chunk...)
		h.dispatch([]stream.Entry{e})
	}
	require.Eventually(t, func() bool {
		out.mu.Lock()
		defer out.mu.Unlock()
		return len(out.got) == len(want)
	}, 10*time.Second, time.Millisecond)
	out.mu.Lock()
	require.Equal(t, string(want), string(out.got))
	require.LessOrEqual(t, out.writes, 50, "at most one write per frame")
	out.mu.Unlock()
	select {
	case <-sub.notify:
		t.Fatal("the session was woken for frames the writers wrote")
	default:
	}
}

// A socket that would block goes back to its session with the bytes not
// written, and the session is woken to finish them; the frames that keep
// coming queue in the buffer, and only a full buffer drops the stream.
func TestWouldBlockHandsTheStreamToItsSession(t *testing.T) {
	h := newHub(nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), 4, newMetrics())
	out := &memSink{room: 10}
	sub := liveSub(h, "t1", out)
	first := testEntry(1, "t1")
	h.dispatch([]stream.Entry{first})
	<-sub.notify // woken: the stream is the session's again
	sub.mu.Lock()
	require.Equal(t, ownedBySession, sub.owner)
	sub.mu.Unlock()
	require.Equal(t, string(newFrame(first).chunk[10:]), string(sub.pending), "the rest of the frame is kept")
	for g := int64(2); g <= 5; g++ {
		h.dispatch([]stream.Entry{testEntry(g, "t1")})
	}
	require.NoError(t, sub.Err(), "four frames fit the buffer")
	h.dispatch([]stream.Entry{testEntry(6, "t1")})
	require.ErrorIs(t, sub.Err(), errSlowClient)
}

// Several frames waiting for one stream go out in one write, each frame once.
func TestEncodeCoalescesChunks(t *testing.T) {
	sub := &subscription{chunked: true, last: stream.ID{GSeq: 1, Seq: 1}}
	f1, f2, f3 := newFrame(testEntry(1, "t")), newFrame(testEntry(2, "t")), newFrame(testEntry(3, "t"))
	data, _ := sub.encode([]*frame{f1, f2, f3}, nil)
	require.Equal(t, string(f2.chunk)+string(f3.chunk), string(data), "frames at or before the position are skipped")
	require.Equal(t, f3.id, sub.last)
	data, _ = sub.encode([]*frame{f3}, nil)
	require.Empty(t, data)
}

// BenchmarkFanout is the hub's share of one event to N subscribers of one
// topology, without the kernel: dispatch, the writers and the encoding,
// with sinks in memory. It reports ns and allocations per delivered frame.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			h := newHub(nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), 0, newMetrics())
			var frames atomic.Int64
			for range n {
				liveSub(h, "t1", &memSink{room: -1, frames: &frames})
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				h.dispatch([]stream.Entry{testEntry(int64(i+1), "t1")})
			}
			for frames.Load() < int64(n*b.N) {
				runtime.Gosched()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*b.N), "ns/frame")
		})
	}
}
