package chaos

// A real SSE client, behaving as the dashboard's EventSource does: a fresh
// single-use ticket per connection, reconnection after `retry:` (or a short
// default) with the last id it saw in Last-Event-ID, and a refetch when the
// snapshot says `resume: incomplete`. It records every frame for the audit.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// sseEvent is one live frame a client received.
type sseEvent struct {
	ID    string // the frame's id: line ("" when it had none)
	Name  string // event: name
	MID   string // payload.mutation_id (mutation events)
	State string // payload.state (status events)
	Conn  int    // index of the connection it arrived on
	At    time.Time
}

// key identifies an event by what it is about, independently of its id.
func (e sseEvent) key() string { return e.MID + "/" + e.Name }

// sseConn is one connection attempt that got an HTTP answer.
type sseConn struct {
	Endpoint string
	Started  time.Time
	Status   int
	ResumeID string // Last-Event-ID sent ("" = none)
	Resume   string // the snapshot's resume field ("" = no snapshot received)
	Events   int
	End      string
}

// sseClient watches one topology's stream until its context ends.
type sseClient struct {
	name      string
	topo      string
	endpoints []string
	pref      int
	api       *apiClient
	hc        *http.Client
	idle      time.Duration

	mu        sync.Mutex
	events    []sseEvent
	conns     []sseConn
	lastID    string
	seen      map[string]int
	refetches int
	stalls    int
	dialFails int
	live      bool
	// noIncomplete marks a client that never lags behind by the retention
	// (1,000 events), so `resume: incomplete` would be a lie to it.
	noIncomplete bool
}

// newSSEClient makes a client for topo that prefers endpoints[pref] and
// fails over to the others, like a load balancer in front of several sse
// processes. idle is how long a silent stream is tolerated (several
// keepalive periods) before the client gives up on it, as a browser's
// network stack eventually does.
func newSSEClient(name, topo string, endpoints []string, pref int, a *apiClient, hc *http.Client, idle time.Duration) *sseClient {
	return &sseClient{name: name, topo: topo, endpoints: endpoints, pref: pref % len(endpoints), api: a, hc: hc,
		idle: idle, seen: map[string]int{}}
}

// sseHTTPClient is shared by all clients: no overall timeout (streams are
// long), many connections per host.
func sseHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4096, MaxConnsPerHost: 0,
		ResponseHeaderTimeout: 15 * time.Second, DisableCompression: true}}
}

// run connects and reconnects until ctx ends.
func (c *sseClient) run(ctx context.Context) {
	ep := c.pref
	var delay time.Duration
	for ctx.Err() == nil {
		if delay > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
		}
		delay = 300*time.Millisecond + rand.N(400*time.Millisecond)
		ticket, st, err := c.api.ticket(ctx)
		if err != nil || st != 200 {
			continue
		}
		retry, next := c.connect(ctx, c.endpoints[ep], ticket)
		if next {
			ep = (ep + 1) % len(c.endpoints)
		}
		if retry > 0 {
			delay = retry
		}
	}
}

// connect runs one connection; next asks to try another endpoint (this one
// refused the connection); retry is the server's `retry:` or Retry-After.
func (c *sseClient) connect(ctx context.Context, endpoint, ticket string) (retry time.Duration, next bool) {
	req, err := http.NewRequestWithContext(ctx, "GET", endpoint+"/api/v1/topologies/"+c.topo+"/events?ticket="+ticket, nil)
	if err != nil {
		return 0, false
	}
	req.Header.Set("Accept", "text/event-stream")
	c.mu.Lock()
	resumeID := c.lastID
	c.mu.Unlock()
	if resumeID != "" {
		req.Header.Set("Last-Event-ID", resumeID)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			c.api.census.record("GET sse events", 0, nil, nil, err)
			c.mu.Lock()
			c.dialFails++
			c.mu.Unlock()
		}
		return 0, errors.Is(err, syscall.ECONNREFUSED)
	}
	defer resp.Body.Close()
	conn := sseConn{Endpoint: endpoint, Started: time.Now(), Status: resp.StatusCode, ResumeID: resumeID}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		c.api.census.record("GET sse events", resp.StatusCode, resp.Header, b, nil)
		conn.End = "status " + strconv.Itoa(resp.StatusCode)
		c.mu.Lock()
		c.conns = append(c.conns, conn)
		c.mu.Unlock()
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			return time.Duration(min(s, 5)) * time.Second, false
		}
		return 0, false
	}
	c.api.census.record("GET sse events", 200, resp.Header, nil, nil)
	c.mu.Lock()
	c.conns = append(c.conns, conn)
	idx := len(c.conns) - 1
	c.mu.Unlock()
	retry, end := c.consume(ctx, resp.Body, idx)
	c.mu.Lock()
	c.conns[idx].End = end
	c.live = false
	c.mu.Unlock()
	return retry, false
}

// consume reads frames until the stream ends; it returns the last `retry:`
// and why the stream ended.
func (c *sseClient) consume(ctx context.Context, body io.ReadCloser, idx int) (time.Duration, string) {
	var stalled bool
	var smu sync.Mutex
	watchdog := time.AfterFunc(c.idle, func() {
		smu.Lock()
		stalled = true
		smu.Unlock()
		body.Close()
	})
	defer watchdog.Stop()
	r := bufio.NewReaderSize(body, 8192)
	var retry time.Duration
	var name, id string
	var hasID bool
	var data strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			smu.Lock()
			st := stalled
			smu.Unlock()
			switch {
			case ctx.Err() != nil:
				return retry, "client closed"
			case st:
				c.mu.Lock()
				c.stalls++
				c.mu.Unlock()
				return retry, fmt.Sprintf("silent for %s", c.idle)
			case errors.Is(err, io.EOF):
				return retry, "server closed the stream"
			default:
				return retry, "read error: " + err.Error()
			}
		}
		watchdog.Reset(c.idle)
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if hasID {
				c.mu.Lock()
				c.lastID = id
				c.mu.Unlock()
			}
			if data.Len() > 0 {
				c.dispatch(ctx, idx, name, id, hasID, data.String())
			}
			name, id, hasID = "", "", false
			data.Reset()
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			name = value
		case "data":
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(value)
		case "id":
			id, hasID = value, true
		case "retry":
			if ms, err := strconv.Atoi(value); err == nil {
				retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
}

// dispatch records one frame.
func (c *sseClient) dispatch(ctx context.Context, idx int, name, id string, hasID bool, data string) {
	if name == "" {
		name = "message"
	}
	switch name {
	case "snapshot":
		var v struct {
			Resume string `json:"resume"`
		}
		_ = json.Unmarshal([]byte(data), &v)
		if v.Resume == "" {
			v.Resume = "(missing)"
		}
		c.mu.Lock()
		c.conns[idx].Resume = v.Resume
		c.live = true
		c.mu.Unlock()
		if v.Resume == "incomplete" {
			// The client must rely on the snapshot: refetch the topology.
			if _, err := c.api.status(ctx, c.topo); err == nil {
				c.mu.Lock()
				c.refetches++
				c.mu.Unlock()
			}
		}
		return
	case "error":
		c.mu.Lock()
		c.conns[idx].End = "error frame: " + data
		c.mu.Unlock()
		return
	}
	var env struct {
		Payload struct {
			MutationID string `json:"mutation_id"`
			State      string `json:"state"`
		} `json:"payload"`
	}
	_ = json.Unmarshal([]byte(data), &env)
	ev := sseEvent{Name: name, MID: env.Payload.MutationID, State: env.Payload.State, Conn: idx, At: time.Now()}
	if hasID {
		ev.ID = id
	}
	c.mu.Lock()
	c.events = append(c.events, ev)
	c.conns[idx].Events++
	if ev.MID != "" {
		c.seen[ev.key()]++
	}
	c.mu.Unlock()
}

// has reports whether the client saw the event (mid, name).
func (c *sseClient) has(mid, name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[mid+"/"+name] > 0
}

// isLive reports whether the client is connected and past its snapshot.
func (c *sseClient) isLive() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live
}

// snapshot copies what the client recorded.
func (c *sseClient) snapshot() (events []sseEvent, conns []sseConn, refetches, stalls int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]sseEvent(nil), c.events...), append([]sseConn(nil), c.conns...), c.refetches, c.stalls
}

// lastSeenID is the id the client would resume from.
func (c *sseClient) lastSeenID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastID
}

// clientPool runs a set of clients.
type clientPool struct {
	clients []*sseClient
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// startClients starts the clients; stop ends them.
func startClients(ctx context.Context, cs []*sseClient) *clientPool {
	ctx, cancel := context.WithCancel(ctx)
	p := &clientPool{clients: cs, cancel: cancel}
	for _, c := range cs {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			c.run(ctx)
		}()
	}
	return p
}

// stop disconnects every client and waits for them.
func (p *clientPool) stop() {
	p.cancel()
	p.wg.Wait()
}

// liveCount is how many clients are connected past their snapshot.
func (p *clientPool) liveCount() int {
	n := 0
	for _, c := range p.clients {
		if c.isLive() {
			n++
		}
	}
	return n
}
