package sse

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// sink is where one stream's bytes go. Every send runs under a fresh write
// deadline, so a stalled client cannot hold its goroutine forever.
type sink interface {
	// send writes chunks as one batch and pushes them to the client.
	send(chunks ...[]byte) error
	// context is cancelled when the client leaves.
	context() context.Context
	// gone is closed when the client leaves.
	gone() <-chan struct{}
	// detached reports whether the stream no longer needs the request's
	// goroutine (the connection was taken over from net/http).
	detached() bool
	// close ends the response; abrupt skips the orderly end (the client is
	// gone or too slow to be worth waiting for).
	close(abrupt bool)
}

// openSink answers 200 with the event-stream headers and flushes the first
// `: keepalive` at once (DOMAIN §10 step 4).
//
// On HTTP/1.x it takes the connection over from net/http (Hijack) and writes
// the chunked response itself. That is a memory decision (SYSTEM §4: memory
// per idle connection is small and measured): net/http keeps 10 KiB of
// buffers, the request and a grown goroutine stack for as long as a handler
// runs, i.e. for the life of the stream. After the takeover the stream holds
// only the socket, one goroutine blocked reading it (to notice the client
// leaving at once) and one small goroutine for the live phase. Where the
// connection cannot be taken over (HTTP/2, test recorders) it streams
// through the ResponseWriter with http.ResponseController instead.
func openSink(w http.ResponseWriter, r *http.Request, timeout time.Duration) (sink, error) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	if r.ProtoMajor == 1 {
		nc, _, err := rc.Hijack()
		if err == nil {
			return newConnSink(nc, h, r.ProtoMinor >= 1, timeout)
		}
		if !errors.Is(err, http.ErrNotSupported) {
			return nil, err
		}
	}
	w.WriteHeader(http.StatusOK)
	fs := &flushSink{w: w, rc: rc, ctx: r.Context(), timeout: timeout}
	if err := fs.send(keepaliveFrame); err != nil {
		return nil, err
	}
	return fs, nil
}

// connSink streams on a connection taken over from net/http.
type connSink struct {
	nc       net.Conn
	chunked  bool // HTTP/1.1: chunked transfer coding; HTTP/1.0: until close
	timeout  time.Duration
	ctx      context.Context
	cancel   context.CancelFunc
	deadline time.Time // current write deadline
}

var crlf = []byte("\r\n")

// newConnSink writes the response head and the first keepalive, and starts
// the goroutine that notices the client leaving.
func newConnSink(nc net.Conn, h http.Header, chunked bool, timeout time.Duration) (*connSink, error) {
	_ = nc.SetDeadline(time.Time{}) // net/http may have left a header-read deadline
	// A fresh context: the request's would keep net/http's per-request state
	// reachable for the life of the stream.
	ctx, cancel := context.WithCancel(context.Background())
	c := &connSink{nc: nc, chunked: chunked, timeout: timeout, ctx: ctx, cancel: cancel}
	var head bytes.Buffer
	if chunked {
		head.WriteString("HTTP/1.1 200 OK\r\n")
		h.Set("Transfer-Encoding", "chunked")
	} else {
		head.WriteString("HTTP/1.0 200 OK\r\n")
	}
	h.Set("Connection", "close")
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	_ = h.Write(&head)
	head.WriteString("\r\n")
	if err := c.write([][]byte{head.Bytes()}, keepaliveFrame); err != nil {
		nc.Close()
		cancel()
		return nil, err
	}
	go c.watch()
	return c, nil
}

// watch blocks reading the connection; the client sends nothing after its
// request, so any return means it left (or broke the protocol).
func (c *connSink) watch() {
	buf := make([]byte, 1)
	for {
		if _, err := c.nc.Read(buf); err != nil {
			c.cancel()
			return
		}
	}
}

func (c *connSink) send(chunks ...[]byte) error { return c.write(nil, chunks...) }

// write sends prefix as is and chunks as one chunk. A batch of ordinary size
// is copied into one pooled buffer and written with a single write(2); only
// a large batch (a replay page, a burst) goes out as a writev of its parts.
func (c *connSink) write(prefix [][]byte, chunks ...[]byte) error {
	n, size := 0, 0
	for _, b := range chunks {
		n += len(b)
	}
	for _, b := range prefix {
		size += len(b)
	}
	size += n + 16
	if err := c.extendDeadline(); err != nil {
		return err
	}
	if size <= maxPooledWrite {
		bp := writeBufs.Get().(*[]byte)
		buf := (*bp)[:0]
		for _, b := range prefix {
			buf = append(buf, b...)
		}
		buf = c.appendChunk(buf, n, chunks)
		_, err := c.nc.Write(buf)
		*bp = buf
		writeBufs.Put(bp)
		return err
	}
	bufs := make(net.Buffers, 0, len(prefix)+len(chunks)+2)
	bufs = append(bufs, prefix...)
	if c.chunked {
		bufs = append(bufs, c.appendChunkHeader(make([]byte, 0, 12), n))
	}
	bufs = append(bufs, chunks...)
	if c.chunked {
		bufs = append(bufs, crlf)
	}
	_, err := bufs.WriteTo(c.nc)
	return err
}

// maxPooledWrite is the largest batch copied into a pooled buffer.
const maxPooledWrite = 16 << 10

// writeBufs holds the write buffers shared by all streams: a stream holds
// one only while it writes, so idle streams hold none.
var writeBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, 4096)
	return &b
}}

// appendChunk appends chunks (n bytes in all) as one chunk of the transfer
// coding, or as they are on an HTTP/1.0 stream.
func (c *connSink) appendChunk(buf []byte, n int, chunks [][]byte) []byte {
	if c.chunked {
		buf = c.appendChunkHeader(buf, n)
	}
	for _, b := range chunks {
		buf = append(buf, b...)
	}
	if c.chunked {
		buf = append(buf, crlf...)
	}
	return buf
}

// appendChunkHeader appends the chunk-size line for n bytes.
func (c *connSink) appendChunkHeader(buf []byte, n int) []byte {
	return append(strconv.AppendInt(buf, int64(n), 16), '\r', '\n')
}

// extendDeadline keeps a write deadline between timeout/2 and timeout ahead
// of every write. Moving it only when half of it is used up spares a runtime
// timer update on nearly every write of a busy stream.
func (c *connSink) extendDeadline() error {
	now := time.Now()
	if c.deadline.Sub(now) >= c.timeout/2 {
		return nil
	}
	c.deadline = now.Add(c.timeout)
	return c.nc.SetWriteDeadline(c.deadline)
}

func (c *connSink) context() context.Context { return c.ctx }
func (c *connSink) gone() <-chan struct{}    { return c.ctx.Done() }
func (c *connSink) detached() bool           { return true }

func (c *connSink) close(abrupt bool) {
	if !abrupt && c.chunked && c.ctx.Err() == nil {
		if c.nc.SetWriteDeadline(time.Now().Add(min(c.timeout, time.Second))) == nil {
			_, _ = c.nc.Write([]byte("0\r\n\r\n"))
		}
	}
	_ = c.nc.Close()
	c.cancel()
}

// flushSink streams through the ResponseWriter.
type flushSink struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	ctx     context.Context
	timeout time.Duration
}

func (f *flushSink) send(chunks ...[]byte) error {
	if err := f.rc.SetWriteDeadline(time.Now().Add(f.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	for _, b := range chunks {
		if _, err := f.w.Write(b); err != nil {
			return err
		}
	}
	if err := f.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

func (f *flushSink) context() context.Context { return f.ctx }
func (f *flushSink) gone() <-chan struct{}    { return f.ctx.Done() }
func (f *flushSink) detached() bool           { return false }
func (f *flushSink) close(bool)               {}
