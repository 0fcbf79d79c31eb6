package sse_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/domain"
)

func TestCapSixthConnectionIs429(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv, base := e.server(nil)
	tid := e.topology(domain.StatusActive)
	u, tok := e.user(domain.RoleViewer, false)
	_, otherTok := e.user(domain.RoleViewer, false)

	var conns []*conn
	for i := 0; i < 5; i++ {
		path := eventsPath(tid, nil)
		if i%2 == 1 {
			path = "/api/v1/stream" // the cap counts every SSE endpoint
		}
		resp, c := open(t, base, path, bearerHeader(tok))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		conns = append(conns, c)
	}
	// Tickets count against the same user.
	resp, c := open(t, base, eventsPath(tid, url.Values{"ticket": {e.ticket(u)}}), nil)
	require.Nil(t, c)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Equal(t, "SSE connection limit (5) reached", detail(t, resp))
	resp, c = open(t, base, "/api/v1/stream", bearerHeader(tok))
	require.Nil(t, c)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.NotContains(t, resp.Header.Get("Content-Type"), "event-stream")
	require.Equal(t, "SSE connection limit (5) reached", detail(t, resp))

	// Another user is not affected.
	resp, c = open(t, base, eventsPath(tid, nil), bearerHeader(otherTok))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	c.Close()

	// A disconnect frees the slot within a few seconds.
	conns[0].Close()
	await(t, "a freed slot", func() bool {
		resp, c := open(t, base, eventsPath(tid, nil), bearerHeader(tok))
		if c != nil {
			c.Close()
			return true
		}
		resp.Body.Close()
		return false
	})
	for _, c := range conns[1:] {
		c.Close()
	}
	await(t, "every slot released", func() bool {
		n, err := e.Redis.Client.ZCard(context.Background(), e.Keys.SSESlots(u.UUID)).Result()
		return err == nil && n == 0 && srv.HeldSlots() == 0
	})
}

func TestCapIsExactAcrossProcesses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.startSSE(), e.startSSE()
	tid := e.topology(domain.StatusActive)
	u, tok := e.user(domain.RoleViewer, false)

	const n = 100
	var mu sync.Mutex
	statuses := map[int]int{}
	var open200 []*conn
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		base := a.URL
		if i%2 == 1 {
			base = b.URL
		}
		var h http.Header
		path := eventsPath(tid, nil)
		if i%3 == 0 {
			path = eventsPath(tid, url.Values{"ticket": {e.ticket(u)}})
		} else {
			h = bearerHeader(tok)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, c := open(t, base, path, h)
			mu.Lock()
			defer mu.Unlock()
			statuses[resp.StatusCode]++
			if c != nil {
				open200 = append(open200, c)
			} else {
				resp.Body.Close()
			}
		}()
	}
	close(start)
	wg.Wait()
	require.Equal(t, map[int]int{200: 5, 429: 95}, statuses)
	n5, err := e.Redis.Client.ZCard(context.Background(), e.Keys.SSESlots(u.UUID)).Result()
	require.NoError(t, err)
	require.EqualValues(t, 5, n5)
	for _, c := range open200 {
		c.Close()
	}
	await(t, "slots released", func() bool {
		n, err := e.Redis.Client.ZCard(context.Background(), e.Keys.SSESlots(u.UUID)).Result()
		return err == nil && n == 0
	})
}

func TestKilledProcessSlotsExpire(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A short lease so the test waits seconds, not the production 45 s.
	victim := e.startSSE("DECNET_SSE_SLOT_LEASE=3s")
	survivor := e.startSSE("DECNET_SSE_SLOT_LEASE=3s")
	tid := e.topology(domain.StatusActive)
	u, tok := e.user(domain.RoleViewer, false)
	for i := 0; i < 5; i++ {
		resp, c := open(t, victim.URL, eventsPath(tid, nil), bearerHeader(tok))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		_ = c
	}
	resp, _ := open(t, survivor.URL, eventsPath(tid, nil), bearerHeader(tok))
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	resp.Body.Close()

	victim.signal(t, syscall.SIGKILL)
	<-victim.done
	// Once their leases lapse (here 3 s), every slot is usable again.
	var got []*conn
	await(t, "the killed process's slots to expire", func() bool {
		resp, c := open(t, survivor.URL, eventsPath(tid, nil), bearerHeader(tok))
		if c == nil {
			resp.Body.Close()
			return false
		}
		got = append(got, c)
		return len(got) == 5
	})
	n, err := e.Redis.Client.ZCard(context.Background(), e.Keys.SSESlots(u.UUID)).Result()
	require.NoError(t, err)
	require.EqualValues(t, 5, n)
}

func TestSIGTERMEndsStreamsAndReleasesSlots(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.startSSE("DECNET_SSE_MAX_PER_USER=1000")
	tid := e.topology(domain.StatusActive)
	u, tok := e.user(domain.RoleViewer, false)

	const clients = 200
	conns := make([]*conn, clients)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := eventsPath(tid, nil)
			if i%2 == 1 {
				path = "/api/v1/stream"
			}
			resp, c := open(t, p.URL, path, bearerHeader(tok))
			if resp.StatusCode != http.StatusOK {
				t.Errorf("client %d: %d", i, resp.StatusCode)
				return
			}
			c.mustNext() // snapshot
			conns[i] = c
		}()
	}
	wg.Wait()
	require.False(t, t.Failed())
	n, err := e.Redis.Client.ZCard(context.Background(), e.Keys.SSESlots(u.UUID)).Result()
	require.NoError(t, err)
	require.EqualValues(t, clients, n)

	p.signal(t, syscall.SIGTERM)
	<-p.done // the drain's own bounds end it; a hang is the test binary's timeout
	require.NoError(t, p.err, "clean exit")
	for i, c := range conns {
		frames := c.drainToEnd()
		require.NotEmpty(t, frames, "client %d", i)
		last := frames[len(frames)-1]
		retry, err := strconv.Atoi(last.Retry)
		require.NoError(t, err, "client %d: the stream ends with retry:", i)
		require.GreaterOrEqual(t, retry, 1000)
		require.LessOrEqual(t, retry, 3000)
	}
	n, err = e.Redis.Client.ZCard(context.Background(), e.Keys.SSESlots(u.UUID)).Result()
	require.NoError(t, err)
	require.EqualValues(t, 0, n)
}

// await polls cond until it holds. It sets no time limit of its own (a
// bound that is generous on an idle machine fails on a busy one under
// -race); a condition that never holds fails at the test's deadline.
func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline, hasDeadline := t.Deadline()
	for !cond() {
		if hasDeadline && time.Until(deadline) < 5*time.Second {
			t.Fatalf("still waiting for %s at the test's deadline", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
