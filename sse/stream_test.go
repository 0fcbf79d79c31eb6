package sse_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/stream"
	"github.com/decnet/mazenet/sse"
)

// snapshotBody is the topology snapshot frame's data.
type snapshotBody struct {
	TopologyID string `json:"topology_id"`
	Status     string `json:"status"`
	InFlight   []struct {
		ID         string          `json:"id"`
		TopologyID string          `json:"topology_id"`
		Op         string          `json:"op"`
		Payload    json.RawMessage `json:"payload"`
		State      string          `json:"state"`
	} `json:"in_flight"`
	Resume string `json:"resume"`
}

func TestSnapshotContents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, base := e.server(nil)
	tid := e.topology(domain.StatusDegraded)
	other := e.topology(domain.StatusActive)
	p1 := e.mutation(tid, 1, domain.MutationApplied, `{}`)
	p2 := e.mutation(tid, 2, domain.MutationFailed, `{}`)
	a := e.mutation(tid, 3, domain.MutationApplying, `{"name":"lan-x","subnet":"10.0.9.0/24"}`)
	b := e.mutation(tid, 4, domain.MutationPending, `{"name":"lan-y"}`)
	c := e.mutation(tid, 5, domain.MutationPending, `{}`)
	e.mutation(other, 1, domain.MutationPending, `{}`)
	_, tok := e.user(domain.RoleViewer, false)

	_, conn := open(t, base, eventsPath(tid, nil), bearerHeader(tok))
	require.NotNil(t, conn)
	var snap snapshotBody
	conn.snapshot(&snap)
	require.Equal(t, tid, snap.TopologyID)
	require.Equal(t, "degraded", snap.Status)
	require.Equal(t, "none", snap.Resume)
	got := map[string]string{}
	for _, m := range snap.InFlight {
		require.Equal(t, tid, m.TopologyID)
		require.Equal(t, "add_lan", m.Op)
		require.True(t, strings.HasPrefix(string(m.Payload), "{"), "payload is an object: %s", m.Payload)
		got[m.ID] = m.State
	}
	require.Equal(t, map[string]string{a: "applying", b: "pending", c: "pending"}, got)
	require.NotContains(t, got, p1)
	require.NotContains(t, got, p2)
	for _, m := range snap.InFlight {
		if m.ID == a {
			require.JSONEq(t, `{"name":"lan-x","subnet":"10.0.9.0/24"}`, string(m.Payload))
		}
	}
}

func TestEventOrderForOneMutation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, base := e.server(nil)
	tid := e.topology(domain.StatusActive)
	_, tok := e.user(domain.RoleViewer, false)
	_, conn := open(t, base, eventsPath(tid, nil), bearerHeader(tok))
	var snap snapshotBody
	conn.snapshot(&snap)

	pl := map[string]any{"name": "lan-a"}
	want := []stream.Entry{
		e.emitEvent(tid, domain.EventEnqueued, map[string]any{"mutation_id": "m1", "op": "add_lan", "payload": pl}),
		e.emitEvent(tid, domain.EventApplying, map[string]any{"mutation_id": "m1", "op": "add_lan", "payload": pl}),
		e.emitEvent(tid, domain.EventApplied, map[string]any{"mutation_id": "m1", "op": "add_lan"}),
	}
	got := conn.events(3)
	for i, f := range got {
		require.Equal(t, want[i].ID.String(), f.ID)
		require.Equal(t, want[i].Name, f.Event)
		var env struct {
			Topic   string         `json:"topic"`
			Type    string         `json:"type"`
			TS      float64        `json:"ts"`
			Payload map[string]any `json:"payload"`
		}
		require.NoError(t, json.Unmarshal([]byte(f.Data), &env))
		require.Equal(t, "topology."+tid+"."+want[i].Name, env.Topic)
		require.Equal(t, "m1", env.Payload["mutation_id"])
		require.Positive(t, env.TS)
	}
	require.Equal(t, []string{"mutation.enqueued", "mutation.applying", "mutation.applied"},
		[]string{got[0].Event, got[1].Event, got[2].Event})
}

func TestOnlyOwnTopologyAndOnlyNewEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, base := e.server(nil)
	tid := e.topology(domain.StatusActive)
	other := e.topology(domain.StatusActive)
	e.emit(nil, tid, 3) // before connecting: not replayed without a resume id
	_, tok := e.user(domain.RoleViewer, false)
	_, conn := open(t, base, eventsPath(tid, nil), bearerHeader(tok))
	var snap snapshotBody
	conn.snapshot(&snap)
	e.emit(nil, other, 2)
	want := e.emit(nil, tid, 2)
	require.Equal(t, entryIDs(want), ids(conn.events(2)))
}

func TestKeepaliveAfterSilence(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, base := e.server(func(s *sse.Server) { s.Keepalive = 100 * time.Millisecond })
	tid := e.topology(domain.StatusActive)
	_, tok := e.user(domain.RoleViewer, false)
	_, conn := open(t, base, eventsPath(tid, nil), bearerHeader(tok))
	var comments int
	for f := range conn.frames {
		if f.Comment == "keepalive" {
			comments++
		}
		if comments >= 3 { // the immediate one, then two after silence
			return
		}
	}
	t.Fatal("stream ended")
}

func TestResumeAcrossProcesses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.startSSE(), e.startSSE()
	tid := e.topology(domain.StatusActive)
	u, tok := e.user(domain.RoleViewer, false)

	_, ca := open(t, a.URL, eventsPath(tid, nil), bearerHeader(tok))
	require.NotNil(t, ca)
	var snap snapshotBody
	ca.snapshot(&snap)
	all := e.emit(nil, tid, 200)
	const k = 83
	seen := ca.events(k)
	require.Equal(t, entryIDs(all[:k]), ids(seen))
	ca.Close()

	// Reconnect to the other process with the dashboard's query parameter.
	_, cb := open(t, b.URL, eventsPath(tid, url.Values{"ticket": {e.ticket(u)}, "lastEventId": {seen[k-1].ID}}), nil)
	require.NotNil(t, cb)
	cb.snapshot(&snap)
	require.Equal(t, "complete", snap.Resume)
	require.Equal(t, entryIDs(all[k:]), ids(cb.events(200-k)))
	// Then live, without duplicates.
	more := e.emit(nil, tid, 5)
	require.Equal(t, entryIDs(more), ids(cb.events(5)))

	// The header wins over the query parameter.
	h := bearerHeader(tok)
	h.Set("Last-Event-ID", all[197].ID.String())
	_, cc := open(t, a.URL, eventsPath(tid, url.Values{"lastEventId": {all[10].ID.String()}}), h)
	cc.snapshot(&snap)
	require.Equal(t, "complete", snap.Resume)
	require.Equal(t, append(entryIDs(all[198:]), entryIDs(more)...), ids(cc.events(7)))
}

func TestResumeMalformedIDIsIgnored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, base := e.server(nil)
	tid := e.topology(domain.StatusActive)
	e.emit(nil, tid, 5)
	_, tok := e.user(domain.RoleViewer, false)
	for _, bad := range []string{"garbage", "12", "-1-0", "1-x", "$"} {
		h := bearerHeader(tok)
		h.Set("Last-Event-ID", bad)
		_, conn := open(t, base, eventsPath(tid, nil), h)
		var snap snapshotBody
		conn.snapshot(&snap)
		require.Equal(t, "none", snap.Resume, bad)
		live := e.emit(nil, tid, 1)
		require.Equal(t, entryIDs(live), ids(conn.events(1)), "no replay for %q", bad)
		conn.Close()
	}
}

func TestResumeOlderThanRetentionIsIncomplete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, base := e.server(nil)
	tid := e.topology(domain.StatusActive)
	_, tok := e.user(domain.RoleViewer, false)
	all := e.emit(nil, tid, 450)
	// The sweep confirms the stream and prunes the outbox down to the newest
	// 100 of the topology (production keeps 1,000).
	require.NoError(t, e.Relay.Sweep(context.Background()))
	n, err := e.DB.PruneEvents(context.Background(), 100)
	require.NoError(t, err)
	require.EqualValues(t, 350, n)
	retained := all[350:]

	resume := func(id string) (snapshotBody, *conn) {
		h := bearerHeader(tok)
		h.Set("Last-Event-ID", id)
		_, conn := open(t, base, eventsPath(tid, nil), h)
		var snap snapshotBody
		conn.snapshot(&snap)
		return snap, conn
	}

	// Pruned: incomplete, then every retained event in order.
	snap, conn := resume(all[4].ID.String())
	require.Equal(t, "incomplete", snap.Resume)
	require.Equal(t, entryIDs(retained), ids(conn.events(len(retained))))

	// Resuming from the last pruned event misses nothing: seqs are
	// consecutive, so the answer is exact.
	snap, conn = resume(all[349].ID.String())
	require.Equal(t, "complete", snap.Resume)
	require.Equal(t, entryIDs(retained), ids(conn.events(len(retained))))

	// Inside the retained window: complete.
	snap, conn = resume(retained[5].ID.String())
	require.Equal(t, "complete", snap.Resume)
	require.Equal(t, entryIDs(retained[6:]), ids(conn.events(len(retained)-6)))
	live := e.emit(nil, tid, 1)
	require.Equal(t, entryIDs(live), ids(conn.events(1)), "then live, nothing repeated")
}

// Ids that name no event this stream sent are unusable: no replay, resume
// none, then live events only.
func TestResumeUnusableIDsSayNone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, base := e.server(nil)
	tid := e.topology(domain.StatusActive)
	other := e.topology(domain.StatusActive)
	mine := e.emit(nil, tid, 3)
	foreign := e.emit(nil, other, 3)
	_, tok := e.user(domain.RoleViewer, false)

	// The zero id sorts before every event: everything retained follows.
	h := bearerHeader(tok)
	h.Set("Last-Event-ID", "0-0")
	_, conn := open(t, base, eventsPath(tid, nil), h)
	var snap snapshotBody
	conn.snapshot(&snap)
	require.Equal(t, "complete", snap.Resume)
	require.Equal(t, entryIDs(mine), ids(conn.events(3)))
	conn.Close()

	for _, id := range []string{
		"1764600000000-0",      // a Redis-era id
		"1764600000000-3",      // a Redis-era id with a plausible seq
		"999999-1",             // from the future
		"0-1",                  // no event has position 0
		"2-0",                  // no event has seq 0
		foreign[2].ID.String(), // an event of another topology at a seq this one has
	} {
		h := bearerHeader(tok)
		h.Set("Last-Event-ID", id)
		_, conn := open(t, base, eventsPath(tid, nil), h)
		var snap snapshotBody
		conn.snapshot(&snap)
		require.Equal(t, "none", snap.Resume, id)
		live := e.emit(nil, tid, 1)
		require.Equal(t, entryIDs(live), ids(conn.events(1)), "no replay for %q", id)
		conn.Close()
	}
}

func TestOverviewStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, base := e.server(nil)
	t1 := e.topology(domain.StatusActive)
	t2 := e.topology(domain.StatusPending)
	e.mutation(t1, 1, domain.MutationPending, `{}`)
	e.mutation(t1, 2, domain.MutationApplying, `{}`)
	e.mutation(t1, 3, domain.MutationApplied, `{}`)
	u, tok := e.user(domain.RoleViewer, false)

	_, conn := open(t, base, "/api/v1/stream", bearerHeader(tok))
	require.NotNil(t, conn)
	var snap struct {
		Topologies []struct {
			ID       string `json:"id"`
			Name     string `json:"name"`
			Status   string `json:"status"`
			InFlight int    `json:"in_flight"`
		} `json:"topologies"`
		Resume string `json:"resume"`
	}
	conn.snapshot(&snap)
	require.Equal(t, "none", snap.Resume)
	byID := map[string]int{}
	for _, tp := range snap.Topologies {
		byID[tp.ID] = tp.InFlight
		require.NotEmpty(t, tp.Name)
		require.NotEmpty(t, tp.Status)
	}
	require.Equal(t, map[string]int{t1: 2, t2: 0}, byID)

	a := e.emit(nil, t1, 2)
	b := e.emit(nil, t2, 2)
	c := e.emit(nil, t1, 1)
	want := append(append(append([]stream.Entry{}, a...), b...), c...)
	got := conn.events(5)
	require.Equal(t, entryIDs(want), ids(got))
	conn.Close()

	// Resume, by ticket and query parameter: from the outbox, in position
	// order across topologies.
	_, conn = open(t, base, "/api/v1/stream?"+url.Values{"ticket": {e.ticket(u)}, "lastEventId": {got[1].ID}}.Encode(), nil)
	conn.snapshot(&snap)
	require.Equal(t, "complete", snap.Resume)
	require.Equal(t, entryIDs(want[2:]), ids(conn.events(3)))
	conn.Close()

	// Once anything after the resume position was pruned, the overview
	// cannot prove completeness: incomplete, then what is retained.
	d := e.emit(nil, t2, 3)
	require.NoError(t, e.Relay.Sweep(context.Background()))
	n, err := e.DB.PruneEvents(context.Background(), 2)
	require.NoError(t, err)
	require.Positive(t, n)
	for _, tc := range []struct {
		from   string
		resume string
	}{
		{got[1].ID, "incomplete"},
		{d[0].ID.String(), "complete"}, // t2's seq 3; everything after it is retained
		{"1764600000000-0", "none"},
	} {
		_, conn = open(t, base, "/api/v1/stream?"+url.Values{"ticket": {e.ticket(u)}, "lastEventId": {tc.from}}.Encode(), nil)
		conn.snapshot(&snap)
		require.Equal(t, tc.resume, snap.Resume, tc.from)
		if tc.resume == "complete" {
			require.Equal(t, entryIDs(d[1:]), ids(conn.events(2)))
		}
		conn.Close()
	}
}

func TestSlowClientIsDroppedOthersKeepReceiving(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv, base := e.server(func(s *sse.Server) { s.BufferSize = 32 })
	tid := e.topology(domain.StatusActive)
	_, tok := e.user(domain.RoleViewer, false)

	_, fast := open(t, base, eventsPath(tid, nil), bearerHeader(tok))
	var snap snapshotBody
	fast.snapshot(&snap)

	// The slow client reads the head and the snapshot, then stops reading;
	// a tiny receive buffer makes its socket fill quickly.
	u, _ := url.Parse(base)
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	raw, err := d.Dial("tcp", u.Host)
	require.NoError(t, err)
	defer raw.Close()
	_, err = raw.Write([]byte("GET " + eventsPath(tid, nil) + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\n\r\n"))
	require.NoError(t, err)
	br := bufio.NewReaderSize(raw, 1<<16)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	slowBody := bufio.NewReader(resp.Body)
	readFrame := func() (frame, bool) {
		var f frame
		for {
			line, err := slowBody.ReadString('\n')
			if err != nil {
				return f, false
			}
			line = strings.TrimSuffix(line, "\n")
			if line == "" {
				return f, true
			}
			k, v, _ := strings.Cut(line, ": ")
			switch k {
			case "id":
				f.ID = v
			case "event":
				f.Event = v
			case "data":
				f.Data = v
			}
		}
	}
	for {
		f, ok := readFrame()
		require.True(t, ok)
		if f.Event == "snapshot" {
			break
		}
	}

	// One event both read, so the slow client has an id to resume from.
	sent := e.emit(nil, tid, 1)
	require.Equal(t, entryIDs(sent), ids(fast.events(1)))
	f0, ok := readFrame()
	require.True(t, ok)
	require.Equal(t, sent[0].ID.String(), f0.ID)

	// Publish in rounds, each read in full by the fast client, until the hub
	// drops the slow one.
	for round := 0; srv.SlowClientDrops() == 0; round++ {
		require.Less(t, round, 400, "the slow client was never dropped")
		batch := e.emitPadded(nil, tid, 10, 8<<10)
		require.Equal(t, entryIDs(batch), ids(fast.events(len(batch))))
		sent = append(sent, batch...)
	}
	require.Equal(t, 1, srv.SlowClientDrops())

	// The slow client, reading again, sees a prefix of the events and then the
	// end of its stream.
	got := []string{f0.ID}
	for {
		f, ok := readFrame()
		if !ok {
			break
		}
		if f.ID != "" {
			got = append(got, f.ID)
		}
	}
	require.Less(t, len(got), len(sent))
	require.Equal(t, entryIDs(sent[:len(got)]), got)

	// It resumes without loss.
	h := bearerHeader(tok)
	h.Set("Last-Event-ID", got[len(got)-1])
	_, again := open(t, base, eventsPath(tid, nil), h)
	again.snapshot(&snap)
	require.Equal(t, "complete", snap.Resume)
	require.Equal(t, entryIDs(sent[len(got):]), ids(again.events(len(sent)-len(got))))
}

// TestHTTP2StreamsThroughResponseWriter covers the path for connections that
// cannot be taken over from net/http (HTTP/2): the same frames, flushed
// through http.ResponseController.
func TestHTTP2StreamsThroughResponseWriter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := &sse.Server{
		DB: e.DB, Redis: e.Redis.Client, Keys: e.Keys, Streams: stream.New(e.Redis.Client, e.Keys),
		Tokens: e.Tokens, Tickets: e.Tickets, Log: slog.New(slog.DiscardHandler), Keepalive: 200 * time.Millisecond,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Run(ctx)
	}()
	hs := httptest.NewUnstartedServer(s.Handler())
	hs.EnableHTTP2 = true
	hs.StartTLS()
	t.Cleanup(func() {
		_ = s.Shutdown(context.Background())
		hs.Close()
		cancel()
		<-done
	})
	tid := e.topology(domain.StatusActive)
	_, tok := e.user(domain.RoleViewer, false)

	client := hs.Client()
	waitFor(t, 20*time.Second, "ready", func() bool {
		resp, err := client.Get(hs.URL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	req, _ := http.NewRequest(http.MethodGet, hs.URL+eventsPath(tid, nil), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := client.Do(req)
	require.NoError(t, err)
	require.Equal(t, 2, resp.ProtoMajor)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	c := &conn{t: t, Resp: resp, frames: make(chan frame, 1000), errc: make(chan error, 1), cancel: func() {}}
	go c.read()
	t.Cleanup(c.Close)
	var snap snapshotBody
	c.snapshot(&snap)
	require.Equal(t, "none", snap.Resume)
	want := e.emit(nil, tid, 3)
	require.Equal(t, entryIDs(want), ids(c.events(3)))

	// The cap and the slot release work the same way.
	require.Equal(t, 1, s.HeldSlots())
	c.Close()
	waitFor(t, 5*time.Second, "slot released", func() bool { return s.HeldSlots() == 0 })
}
