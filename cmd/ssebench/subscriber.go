//go:build linux

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The subscribers. One implementation serves both servers under test, so
// they are read, parsed and timed the same way: a raw HTTP/1.1 GET, the
// response head read with net/http, then the socket handed to an epoll
// poller that reads whatever arrived, undoes the chunked transfer coding,
// cuts SSE frames at the blank line and passes each frame, with the time
// it was read, to the scenario's frameHandler.

// frameHandler interprets the frames of one scenario. frame runs on a
// poller goroutine with c.mu held.
type frameHandler interface {
	frame(c *client, f []byte, now int64)
}

// Event kinds a subscriber records: a fan-out event, or the three frames of
// a mutation (the terminal one is mutation.applied or mutation.failed).
const (
	kindEvent    = 0
	kindEnqueued = 0
	kindApplying = 1
	kindTerminal = 2
	kinds        = 3
)

// client is one subscriber.
type client struct {
	addr    string
	request func(lastID string) string // the raw request, resuming after lastID
	h       frameHandler
	poller  *poller
	// slot is the subscriber's topic (fan-out) or topology (end to end).
	slot int

	ready     chan struct{}
	readyOnce sync.Once
	count     atomic.Int64 // frames recorded

	mu         sync.Mutex
	fd         int // the socket, once handed to the poller; -1 before and after
	dc         dechunker
	pending    []byte // bytes of a frame not complete yet
	lastID     string
	seen       [kinds]bitset  // per kind, the event (or mutation) numbers received
	lat        [kinds][]int32 // per kind, latency samples in microseconds
	dup        int64
	failed     int64 // mutation.failed frames
	unresolved []unresolved
	reconnects int64
	err        error
	closed     bool
}

// unresolved is a mutation frame whose mutation id was not known yet when
// it was read (its enqueued frame was lost and its POST had not returned).
type unresolved struct {
	kind int
	id   string
	at   int64
}

// markReady records the first frame of the stream (the snapshot, or
// Centrifugo's connect reply).
func (c *client) markReady() { c.readyOnce.Do(func() { close(c.ready) }) }

// record counts event number n of kind, read at now, sent at sent (ns).
func (c *client) record(kind int, n int, sent, now int64) {
	if c.seen[kind].has(n) {
		c.dup++
		return
	}
	c.seen[kind].set(n)
	c.lat[kind] = append(c.lat[kind], int32(min((now-sent)/1000, 1<<31-1)))
	c.count.Add(1)
}

func (c *client) lastErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// close ends the subscriber for good.
func (c *client) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.fd >= 0 {
		_ = syscall.Close(c.fd)
		c.fd = -1
	}
}

// start connects in the background, retrying until it is in or closed.
func (c *client) start() {
	go func() {
		for {
			err := c.connect()
			if err == nil {
				return
			}
			c.mu.Lock()
			c.err = err
			closed := c.closed
			c.mu.Unlock()
			if closed {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
}

// connect opens the stream, reads the response head and hands the socket to
// the poller.
func (c *client) connect() error {
	conn, err := net.Dial("tcp", c.addr)
	if err != nil {
		return err
	}
	c.mu.Lock()
	last := c.lastID
	c.mu.Unlock()
	if _, err := io.WriteString(conn, c.request(last)); err != nil {
		conn.Close()
		return err
	}
	br := bufio.NewReaderSize(conn, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return err
	}
	if resp.StatusCode != http.StatusOK {
		conn.Close()
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	chunked := len(resp.TransferEncoding) > 0 && resp.TransferEncoding[0] == "chunked"
	leftover, _ := br.Peek(br.Buffered())
	leftover = append([]byte(nil), leftover...)
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		conn.Close()
		return err
	}
	// Take a duplicate of the socket and close the net.Conn, so Go's own
	// poller forgets it and only this tool's epoll watches it.
	fd, derr := -1, error(nil)
	_ = raw.Control(func(f uintptr) { fd, derr = syscall.Dup(int(f)) })
	conn.Close()
	if derr != nil {
		return derr
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = syscall.Close(fd)
		return nil
	}
	c.fd, c.pending, c.dc = fd, c.pending[:0], dechunker{chunked: chunked}
	c.mu.Unlock()
	c.feed(leftover, time.Now().UnixNano())
	return c.poller.add(fd, c)
}

// lost is called by the poller when the stream ended: reconnect (resuming
// after the last id seen, as a browser's EventSource does).
func (c *client) lost() {
	c.mu.Lock()
	if c.fd >= 0 {
		_ = syscall.Close(c.fd)
		c.fd = -1
	}
	closed := c.closed
	if !closed {
		c.reconnects++
	}
	c.mu.Unlock()
	if !closed {
		c.start()
	}
}

var frameEnd = []byte("\n\n")

// feed takes bytes read from the socket and hands every complete frame to
// the handler.
func (c *client) feed(data []byte, now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = c.dc.decode(c.pending, data)
	done := 0
	for {
		end := bytes.Index(c.pending[done:], frameEnd)
		if end < 0 {
			break
		}
		f := c.pending[done : done+end]
		done += end + 2
		if id, ok := field(f, "id: "); ok {
			c.lastID = string(id)
		}
		c.h.frame(c, f, now)
	}
	c.pending = append(c.pending[:0], c.pending[done:]...)
}

// dechunker undoes HTTP/1.1 chunked transfer coding incrementally (both
// servers use it; a chunk boundary may fall anywhere in a frame).
type dechunker struct {
	chunked bool
	state   int // 0 size line, 1 data, 2 CRLF after data, 3 ended
	remain  int
	line    []byte
}

// decode appends the payload bytes of in to out.
func (d *dechunker) decode(out, in []byte) []byte {
	if !d.chunked {
		return append(out, in...)
	}
	for len(in) > 0 {
		switch d.state {
		case 0:
			i := bytes.IndexByte(in, '\n')
			if i < 0 {
				d.line = append(d.line, in...)
				return out
			}
			d.line = append(d.line, in[:i]...)
			in = in[i+1:]
			s := strings.TrimSpace(string(d.line))
			if j := strings.IndexByte(s, ';'); j >= 0 {
				s = s[:j]
			}
			d.line = d.line[:0]
			if s == "" {
				continue
			}
			n, err := strconv.ParseInt(s, 16, 64)
			if err != nil || n == 0 {
				d.state = 3
				return out
			}
			d.remain, d.state = int(n), 1
		case 1:
			n := min(d.remain, len(in))
			out = append(out, in[:n]...)
			in, d.remain = in[n:], d.remain-n
			if d.remain == 0 {
				d.state = 2
			}
		case 2:
			i := bytes.IndexByte(in, '\n')
			if i < 0 {
				return out
			}
			in, d.state = in[i+1:], 0
		default:
			return out
		}
	}
	return out
}

// bitset is a growable set of small non-negative integers.
type bitset []uint64

func (b bitset) has(n int) bool { return n/64 < len(b) && b[n/64]&(1<<(n%64)) != 0 }

func (b *bitset) set(n int) {
	for n/64 >= len(*b) {
		*b = append(*b, 0)
	}
	(*b)[n/64] |= 1 << (n % 64)
}

// count returns how many numbers in [lo, hi) are in the set.
func (b bitset) count(lo, hi int) int {
	n := 0
	for i := lo; i < hi; i++ {
		if b.has(i) {
			n++
		}
	}
	return n
}

// poller reads many sockets from one goroutine with epoll: one read per
// readiness, no goroutine switch per frame, so the measuring side costs as
// little as possible next to the server on a small machine.
type poller struct {
	epfd int
	stop chan struct{} // closed to end run
	done chan struct{} // closed when run has returned
	mu   sync.Mutex
	byFD map[int32]*client
}

func newPoller() (*poller, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	p := &poller{epfd: fd, stop: make(chan struct{}), done: make(chan struct{}), byFD: map[int32]*client{}}
	go p.run()
	return p, nil
}

// halt ends run and waits for it. Only then may the epoll descriptor and
// the sockets be closed: a run still going could otherwise meet their
// numbers reused by the next scenario's poller and sockets, and read (and
// lose) another subscriber's frames.
func (p *poller) halt() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// close halts the poller and closes its epoll descriptor.
func (p *poller) close() {
	p.halt()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.epfd >= 0 {
		_ = syscall.Close(p.epfd)
		p.epfd = -1
	}
}

func (p *poller) add(fd int, c *client) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.epfd < 0 {
		return errors.New("poller closed")
	}
	p.byFD[int32(fd)] = c
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(fd)}
	return syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev)
}

func (p *poller) run() {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 512)
	buf := make([]byte, 64<<10)
	for {
		select {
		case <-p.stop:
			return
		default:
		}
		n, err := syscall.EpollWait(p.epfd, events, 100)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return
		}
		for _, ev := range events[:n] {
			p.mu.Lock()
			c := p.byFD[ev.Fd]
			p.mu.Unlock()
			if c == nil {
				continue
			}
			fd := int(ev.Fd)
			for {
				m, err := syscall.Read(fd, buf)
				now := time.Now().UnixNano()
				if m > 0 {
					c.feed(buf[:m], now)
				}
				if m == len(buf) {
					continue
				}
				if errors.Is(err, syscall.EAGAIN) {
					break
				}
				if m <= 0 {
					p.mu.Lock()
					delete(p.byFD, ev.Fd)
					p.mu.Unlock()
					_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
					c.lost()
				}
				break
			}
		}
	}
}

// subscribers is a set of clients read by a couple of pollers.
type subscribers struct {
	clients []*client
	pollers []*poller
}

// connectAll opens n subscribers (mk builds the i-th, without its poller),
// at most 100 handshakes at a time, and waits until every one has its first
// frame.
func connectAll(n int, mk func(i int) *client) (*subscribers, error) {
	s := &subscribers{clients: make([]*client, n), pollers: make([]*poller, 2)}
	for i := range s.pollers {
		p, err := newPoller()
		if err != nil {
			s.close()
			return nil, err
		}
		s.pollers[i] = p
	}
	sem := make(chan struct{}, 100)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range s.clients {
		c := mk(i)
		c.poller, c.fd, c.ready = s.pollers[i%len(s.pollers)], -1, make(chan struct{})
		s.clients[i] = c
		sem <- struct{}{}
		c.start()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			select {
			case <-c.ready:
			case <-time.After(30 * time.Second):
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if k := failed.Load(); k > 0 {
		s.close()
		return nil, fmt.Errorf("%d subscribers got no first frame within 30 s (e.g. %v)", k, s.clients[0].lastErr())
	}
	return s, nil
}

// received returns the frames recorded so far.
func (s *subscribers) received() int64 {
	var n int64
	for _, c := range s.clients {
		n += c.count.Load()
	}
	return n
}

// waitFor waits until want frames are recorded or limit passes.
func (s *subscribers) waitFor(want int64, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for s.received() < want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

// close ends every subscriber and poller: the pollers stop first, so none
// reads a descriptor after it was closed (and perhaps reused).
func (s *subscribers) close() {
	for _, p := range s.pollers {
		if p != nil {
			p.halt()
		}
	}
	for _, c := range s.clients {
		if c != nil {
			c.close()
		}
	}
	for _, p := range s.pollers {
		if p != nil {
			p.close()
		}
	}
}

// jsonInt finds key in f and parses the integer after it.
func jsonInt(f []byte, key string) (int64, bool) {
	i := bytes.Index(f, []byte(key))
	if i < 0 {
		return 0, false
	}
	j := i + len(key)
	for j < len(f) && f[j] == ' ' {
		j++
	}
	k := j
	for k < len(f) && f[k] >= '0' && f[k] <= '9' {
		k++
	}
	n, err := strconv.ParseInt(string(f[j:k]), 10, 64)
	return n, err == nil
}

// jsonString returns the string value after key (`"key":"`), unescaped
// characters only (ids and names).
func jsonString(f []byte, key string) ([]byte, bool) {
	i := bytes.Index(f, []byte(key))
	if i < 0 {
		return nil, false
	}
	rest := f[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil, false
	}
	return rest[:j], true
}

// field returns the value of the SSE field line starting with name (e.g.
// "event: ") in frame f.
func field(f []byte, name string) ([]byte, bool) {
	i := 0
	for {
		if bytes.HasPrefix(f[i:], []byte(name)) {
			v := f[i+len(name):]
			if nl := bytes.IndexByte(v, '\n'); nl >= 0 {
				v = v[:nl]
			}
			return bytes.TrimRight(v, "\r"), true
		}
		nl := bytes.IndexByte(f[i:], '\n')
		if nl < 0 {
			return nil, false
		}
		i += nl + 1
	}
}
