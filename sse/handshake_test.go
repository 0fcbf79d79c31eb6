package sse_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/domain"
)

func TestHandshakeMatrix(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, base := e.server(nil)
	tid := e.topology(domain.StatusActive)
	viewer, viewerTok := e.user(domain.RoleViewer, false)
	_, mustChangeTok := e.user(domain.RoleAdmin, true)

	q := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	used := e.ticket(viewer)
	resp, c := open(t, base, eventsPath(tid, q("ticket", used)), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	c.Close()
	expired := e.ticket(viewer)
	require.NoError(t, e.Redis.Client.Del(context.Background(), e.Keys.Ticket(expired)).Err())

	cases := []struct {
		name   string
		path   string
		header http.Header
		status int
		detail string
	}{
		{"no credentials", eventsPath(tid, nil), nil, 401, "Not authenticated"},
		{"bad ticket", eventsPath(tid, q("ticket", "nope")), nil, 401, ""},
		{"used ticket", eventsPath(tid, q("ticket", used)), nil, 401, ""},
		{"expired ticket", eventsPath(tid, q("ticket", expired)), nil, 401, ""},
		{"jwt in token query", eventsPath(tid, q("token", viewerTok)), nil, 401, ""},
		{"jwt in ticket query", eventsPath(tid, q("ticket", viewerTok)), nil, 401, ""},
		{"bad bearer", eventsPath(tid, nil), bearerHeader("garbage"), 401, ""},
		{"non-bearer header", eventsPath(tid, nil), http.Header{"Authorization": {"Basic eDp5"}}, 401, ""},
		{"unknown topology without auth", eventsPath(uuid.NewString(), nil), nil, 401, ""},
		{"unknown topology with auth", eventsPath(uuid.NewString(), nil), bearerHeader(viewerTok), 404, "Topology not found"},
		{"non-uuid topology with auth", eventsPath("not-a-uuid", nil), bearerHeader(viewerTok), 404, "Topology not found"},
		{"non-uuid topology without auth", eventsPath("not-a-uuid", nil), nil, 401, ""},
		{"must change password", eventsPath(tid, nil), bearerHeader(mustChangeTok), 403, "Password change required before accessing this resource"},
		{"overview without auth", "/api/v1/stream", nil, 401, ""},
		{"overview must change password", "/api/v1/stream", bearerHeader(mustChangeTok), 403, "Password change required before accessing this resource"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, c := open(t, base, tc.path, tc.header)
			require.Nil(t, c, "must not stream")
			require.Equal(t, tc.status, resp.StatusCode)
			d := detail(t, resp)
			if tc.detail != "" {
				require.Equal(t, tc.detail, d)
			}
			if tc.status == 401 {
				require.Equal(t, "Bearer", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestTicketConsumedEvenWhenTopologyMissing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, base := e.server(nil)
	u, _ := e.user(domain.RoleViewer, false)
	tk := e.ticket(u)
	resp, _ := open(t, base, eventsPath(uuid.NewString(), url.Values{"ticket": {tk}}), nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Equal(t, "Topology not found", detail(t, resp))
	resp, _ = open(t, base, eventsPath(e.topology(domain.StatusActive), url.Values{"ticket": {tk}}), nil)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp.Body.Close()
}

func TestHeaderWinsOverTicket(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, base := e.server(nil)
	tid := e.topology(domain.StatusActive)
	u, _ := e.user(domain.RoleViewer, false)
	tk := e.ticket(u)
	// A present header decides alone: a bad one is 401 even with a good
	// ticket, and the ticket is not redeemed.
	resp, _ := open(t, base, eventsPath(tid, url.Values{"ticket": {tk}}), bearerHeader("bad"))
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp.Body.Close()
	resp, c := open(t, base, eventsPath(tid, url.Values{"ticket": {tk}}), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	c.Close()
}

func TestStreamHeadersAndFirstBytes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, base := e.server(nil)
	tid := e.topology(domain.StatusPending)
	_, tok := e.user(domain.RoleViewer, false)
	req, err := http.NewRequest(http.MethodGet, base+eventsPath(tid, nil), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := streamClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	require.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
	require.Equal(t, "no", resp.Header.Get("X-Accel-Buffering"))
	first := make([]byte, len(": keepalive\n\n"))
	_, err = io.ReadFull(resp.Body, first)
	require.NoError(t, err)
	require.Equal(t, ": keepalive\n\n", string(first))
}

func TestViewerAndAdminGetIdenticalFrames(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, base := e.server(nil)
	tid := e.topology(domain.StatusActive)
	e.mutation(tid, 1, domain.MutationPending, `{"name":"lan-a"}`)
	viewer, _ := e.user(domain.RoleViewer, false)
	_, adminTok := e.user(domain.RoleAdmin, false)

	_, vc := open(t, base, eventsPath(tid, url.Values{"ticket": {e.ticket(viewer)}}), nil)
	_, ac := open(t, base, eventsPath(tid, nil), bearerHeader(adminTok))
	require.NotNil(t, vc)
	require.NotNil(t, ac)
	vs, as := vc.mustNext(), ac.mustNext()
	require.Equal(t, "snapshot", vs.Event)
	require.Equal(t, vs, as)
	e.emitEvent(tid, domain.EventApplying, map[string]any{"mutation_id": "m", "op": "add_lan", "payload": map[string]any{"name": "lan-a"}})
	e.emitEvent(tid, domain.EventFailed, map[string]any{"mutation_id": "m", "op": "add_lan", "reason": "MutationError: x"})
	require.Equal(t, vc.events(2), ac.events(2))
}

func TestCORS(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, base := e.server(nil)
	req, _ := http.NewRequest(http.MethodOptions, base+"/api/v1/stream", nil)
	req.Header.Set("Origin", "https://dash.example")
	req.Header.Set("Access-Control-Request-Method", "GET")
	req.Header.Set("Access-Control-Request-Headers", "Last-Event-ID")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Equal(t, "https://dash.example", resp.Header.Get("Access-Control-Allow-Origin"))
	require.Equal(t, "Origin", resp.Header.Get("Vary"))
	require.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), "Authorization")
	require.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), "Last-Event-ID")
	require.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "GET")

	// Error responses carry the header too, so the dashboard can read them.
	req, _ = http.NewRequest(http.MethodGet, base+"/api/v1/stream", nil)
	req.Header.Set("Origin", "https://dash.example")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Equal(t, "https://dash.example", resp.Header.Get("Access-Control-Allow-Origin"))

	req, _ = http.NewRequest(http.MethodGet, base+"/api/v1/stream", nil)
	req.Header.Set("Origin", "https://evil.example")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
}

func TestMetricsGuard(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, base := e.server(nil)
	_, viewerTok := e.user(domain.RoleViewer, false)
	_, adminTok := e.user(domain.RoleAdmin, false)
	_, pendingTok := e.user(domain.RoleAdmin, true)
	getPath := func(path string, h http.Header) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}
	get := func(h http.Header) (*http.Response, string) { return getPath("/metrics", h) }
	resp, _ := get(nil)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, _ = get(bearerHeader(viewerTok))
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp, body := get(bearerHeader(adminTok))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, "mazenet_sse_slow_client_drops_total")
	require.Contains(t, body, "mazenet_sse_events_fanned_out_total")
	resp, _ = get(bearerHeader("scrape-token"))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, _ = get(bearerHeader("wrong-token"))
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	// The same guard as the api's: a pending password change shuts admins out.
	resp, _ = get(bearerHeader(pendingTok))
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp, _ = getPath("/debug/pprof/", bearerHeader(pendingTok))
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp, _ = getPath("/debug/pprof/", nil)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, body = getPath("/debug/pprof/", bearerHeader(adminTok))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, "goroutine")
}

func TestHealth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, base := e.server(nil)
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(base + p)
		require.NoError(t, err)
		var v map[string]string
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, p)
	}
}
