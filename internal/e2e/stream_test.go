package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/domain"
)

// The whole product without a browser: api, worker and sse started through
// their Run functions on loopback ports, driven over HTTP only. An operator
// logs in, creates and deploys a topology, opens its event stream with a
// ticket, posts a mutation and reads its three events as SSE frames, in
// order.
func TestMutationEventsOverSSE(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	apiURL := startAPI(t, b.apiConfig())
	startWorker(t, b.workerConfig("e2e-sse"))
	sseURL := startSSE(t, b.sseConfig())
	b.createUser(t, "operator", domain.RoleAdmin, false)
	c := &client{t: t, base: apiURL}

	var login struct {
		AccessToken        string `json:"access_token"`
		TokenType          string `json:"token_type"`
		MustChangePassword bool   `json:"must_change_password"`
	}
	c.do("POST", "/api/v1/auth/login", map[string]string{"username": "operator", "password": testPassword}, http.StatusOK, &login)
	require.Equal(t, "bearer", login.TokenType)
	require.False(t, login.MustChangePassword)
	c.token = login.AccessToken

	var topo struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	c.do("POST", "/api/v1/topologies/blank", map[string]string{"name": "over-sse"}, http.StatusCreated, &topo)
	require.Equal(t, "pending", topo.Status)

	var ticket struct {
		Ticket string `json:"ticket"`
	}
	c.do("POST", "/api/v1/auth/sse-ticket", nil, http.StatusOK, &ticket)
	s := openSSE(t, sseURL+"/api/v1/topologies/"+topo.ID+"/events?ticket="+ticket.Ticket)
	snap := s.next()
	require.Equal(t, "snapshot", snap.Event)
	require.Empty(t, snap.ID, "the snapshot has no id")
	require.JSONEq(t, `{"topology_id": "`+topo.ID+`", "status": "pending", "in_flight": [], "resume": "none"}`, snap.Data)

	// Deploy: the stream says deploying, then active.
	c.do("POST", "/api/v1/topologies/"+topo.ID+"/deploy", nil, http.StatusAccepted, nil)
	var states []string
	var last string
	for _, f := range s.frames(2) {
		require.Equal(t, domain.EventStatus, f.Event)
		requireAfter(t, f.ID, last)
		last = f.ID
		states = append(states, f.payload(t)["state"].(string))
	}
	require.Equal(t, []string{"deploying", "active"}, states)

	// A mutation: enqueued, applying, applied, each naming it, in order.
	var accepted struct {
		MutationID string `json:"mutation_id"`
	}
	c.do("POST", "/api/v1/topologies/"+topo.ID+"/mutations",
		map[string]any{"op": "add_lan", "payload": map[string]any{"name": "corp"}}, http.StatusAccepted, &accepted)
	var names []string
	for _, f := range s.frames(3) {
		requireAfter(t, f.ID, last)
		last = f.ID
		names = append(names, f.Event)
		env := f.envelope(t)
		require.Equal(t, accepted.MutationID, env.Payload["mutation_id"], "%s", f.Data)
		require.Equal(t, "add_lan", env.Payload["op"])
		require.Equal(t, "topology."+topo.ID+"."+f.Event, env.Topic)
	}
	require.Equal(t, []string{domain.EventEnqueued, domain.EventApplying, domain.EventApplied}, names)

	var m struct {
		State string `json:"state"`
	}
	c.do("GET", "/api/v1/topologies/"+topo.ID+"/mutations/"+accepted.MutationID, nil, http.StatusOK, &m)
	require.Equal(t, "applied", m.State)
}

// client is an HTTP client of the api with an optional bearer token.
type client struct {
	t     *testing.T
	base  string
	token string
}

// do sends body (JSON, when not nil), requires status want and decodes the
// answer into out (when not nil).
func (c *client) do(method, path string, body any, want int, out any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(c.t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	require.NoError(c.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	require.Equal(c.t, want, resp.StatusCode, "%s %s: %s", method, path, raw)
	if out != nil {
		require.NoError(c.t, json.Unmarshal(raw, out), "%s %s: %s", method, path, raw)
	}
}

// sseFrame is one parsed SSE frame (comments are skipped).
type sseFrame struct {
	ID, Event, Data string
}

// envelope is the data of a live event frame (DOMAIN §9.2).
type envelope struct {
	Topic   string         `json:"topic"`
	Type    string         `json:"type"`
	TS      float64        `json:"ts"`
	Payload map[string]any `json:"payload"`
}

// envelope decodes the frame's data.
func (f sseFrame) envelope(t *testing.T) envelope {
	t.Helper()
	var env envelope
	require.NoError(t, json.Unmarshal([]byte(f.Data), &env), "%s", f.Data)
	return env
}

// payload is the frame's envelope payload.
func (f sseFrame) payload(t *testing.T) map[string]any {
	t.Helper()
	return f.envelope(t).Payload
}

// sseStream reads frames from one open event stream.
type sseStream struct {
	t  *testing.T
	ch chan sseFrame
}

// openSSE opens url and parses its frames on a goroutine until the test
// ends.
func openSSE(t *testing.T, url string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	s := &sseStream{t: t, ch: make(chan sseFrame, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(s.ch)
		var f sseFrame
		var data []string
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line := sc.Text()
			if line == "" {
				if f.Event != "" || len(data) > 0 {
					f.Data = strings.Join(data, "\n")
					s.ch <- f
				}
				f, data = sseFrame{}, nil
				continue
			}
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				f.ID = value
			case "event":
				f.Event = value
			case "data":
				data = append(data, value)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		<-done
	})
	return s
}

// next returns the next frame; the bound only stops a hung test.
func (s *sseStream) next() sseFrame {
	s.t.Helper()
	select {
	case f, ok := <-s.ch:
		require.True(s.t, ok, "the stream ended")
		return f
	case <-time.After(30 * time.Second):
		s.t.Fatal("no frame within 30 s")
		return sseFrame{}
	}
}

// frames returns the next n frames.
func (s *sseStream) frames(n int) []sseFrame {
	s.t.Helper()
	out := make([]sseFrame, n)
	for i := range out {
		out[i] = s.next()
	}
	return out
}

// requireAfter requires the SSE id got ("<a>-<b>") to follow prev (""
// before the first).
func requireAfter(t *testing.T, got, prev string) {
	t.Helper()
	var a, b, pa, pb uint64
	_, err := fmt.Sscanf(got, "%d-%d", &a, &b)
	require.NoError(t, err, "id %q", got)
	if prev == "" {
		return
	}
	_, err = fmt.Sscanf(prev, "%d-%d", &pa, &pb)
	require.NoError(t, err, "id %q", prev)
	require.True(t, a > pa || (a == pa && b > pb), "id %s does not follow %s", got, prev)
}
