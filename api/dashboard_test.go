package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dashboardServer serves a copy of e's Server with the given SSE public URL
// (a copy, so the shared env is never written while its handler runs).
func dashboardServer(t *testing.T, e *testEnv, sseURL string) *httptest.Server {
	t.Helper()
	s := *e.Server
	s.SSEPublicURL = sseURL
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

// dashGet fetches url with optional headers and returns the response with its body read.
func dashGet(t *testing.T, url string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

func TestDashboardIndexInjectsSSEURL(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	srv := dashboardServer(t, e, "https://sse.example.test:8443/")

	for _, path := range []string{"/", "/ui", "/ui/t/123"} {
		resp, body := dashGet(t, srv.URL+path)
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"), path)
		assert.Equal(t, "no-cache", resp.Header.Get("Cache-Control"), path)
		assert.Contains(t, body, `<meta name="mazenet-sse-url" content="https://sse.example.test:8443">`, path)
		assert.Contains(t, body, `<script type="module" src="/assets/js/main.js">`, path)
		assert.Contains(t, body, `<link rel="modulepreload" href="/assets/js/shell.js">`, path)
		csp := resp.Header.Get("Content-Security-Policy")
		assert.Contains(t, csp, "connect-src 'self' https://sse.example.test:8443;", path)
		assert.Contains(t, csp, "script-src 'self';", path)
		assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), path)
	}
}

func TestDashboardIndexSameOrigin(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	resp, body := dashGet(t, e.HTTP.URL+"/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, `<meta name="mazenet-sse-url" content="">`)
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "connect-src 'self';")
}

func TestDashboardIndexEscapesSSEURL(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	srv := dashboardServer(t, e, `https://sse.test/a"><script>alert(1)</script>`)
	resp, body := dashGet(t, srv.URL+"/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.NotContains(t, body, "<script>alert(1)")
	assert.NotContains(t, resp.Header.Get("Content-Security-Policy"), "<")
}

func TestDashboardAssets(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for path, ctype := range map[string]string{
		"/assets/js/main.js":  "text/javascript; charset=utf-8",
		"/assets/js/api.js":   "text/javascript; charset=utf-8",
		"/assets/app.css":     "text/css; charset=utf-8",
		"/assets/favicon.svg": "image/svg+xml",
	} {
		resp, body := dashGet(t, e.HTTP.URL+path)
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		assert.Equal(t, ctype, resp.Header.Get("Content-Type"), path)
		assert.Equal(t, "no-cache", resp.Header.Get("Cache-Control"), path)
		assert.NotEmpty(t, body, path)
		etag := resp.Header.Get("ETag")
		require.NotEmpty(t, etag, path)

		again, rest := dashGet(t, e.HTTP.URL+path, "If-None-Match", etag)
		assert.Equal(t, http.StatusNotModified, again.StatusCode, path)
		assert.Empty(t, rest, path)
	}

	// The template and unknown files are not assets: JSON 404s.
	for _, path := range []string{"/assets/index.html", "/assets/nope.js", "/assets/", "/assets/js/", "/assets/js", "/assets/app.js", "/assets/../dashboard.go"} {
		resp, body := dashGet(t, e.HTTP.URL+path)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, path)
		assertDashJSONDetail(t, resp, body, path)
	}
}

// The dashboard registers only /, /ui/* and /assets/*: nothing else is
// shadowed, and API errors stay JSON.
func TestDashboardDoesNotShadowAPI(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for path, status := range map[string]int{
		"/api/v1/topologies":   http.StatusUnauthorized,
		"/api/v1/auth/me":      http.StatusUnauthorized,
		"/api/v1/no-such-path": http.StatusNotFound,
		"/no-such-page":        http.StatusNotFound,
		"/metrics":             http.StatusUnauthorized,
	} {
		resp, body := dashGet(t, e.HTTP.URL+path)
		assert.Equal(t, status, resp.StatusCode, path)
		assertDashJSONDetail(t, resp, body, path)
	}
	resp, body := dashGet(t, e.HTTP.URL+"/healthz")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.NotContains(t, body, "<html")
}

func assertDashJSONDetail(t *testing.T, resp *http.Response, body, path string) {
	t.Helper()
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"), path)
	assert.NotContains(t, body, "<html", path)
	var v struct {
		Detail string `json:"detail"`
	}
	if assert.NoError(t, json.Unmarshal([]byte(body), &v), path) {
		assert.NotEmpty(t, v.Detail, path)
	}
}

func TestSSEBase(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, base, origin string }{
		{"", "", ""},
		{"   ", "", ""},
		{"https://sse.example.com", "https://sse.example.com", "https://sse.example.com"},
		{"https://sse.example.com/", "https://sse.example.com", "https://sse.example.com"},
		{"http://127.0.0.1:8081", "http://127.0.0.1:8081", "http://127.0.0.1:8081"},
		{"https://edge.example.com/mazenet/", "https://edge.example.com/mazenet", "https://edge.example.com"},
		{"javascript:alert(1)", "", ""},
		{"//sse.example.com", "", ""},
		{"/relative", "", ""},
		{"https://user:pw@sse.example.com", "", ""},
		{"https://sse.example.com/?x=1", "", ""},
		{"ftp://sse.example.com", "", ""},
	} {
		base, origin := sseBase(tc.in)
		assert.Equal(t, tc.base, base, tc.in)
		assert.Equal(t, tc.origin, origin, tc.in)
	}
}

// The page never carries a token and never builds DOM from strings, in any
// of its modules.
func TestDashboardAppHygiene(t *testing.T) {
	t.Parallel()
	var all strings.Builder
	n := 0
	for name, a := range dashboardAssets {
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		n++
		js := string(a.body)
		all.WriteString(js)
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "localStorage", "eval(", "new Function"} {
			assert.False(t, strings.Contains(js, bad), "%s uses %s", name, bad)
		}
	}
	require.Greater(t, n, 1, "the dashboard's modules are embedded")
	js := all.String()
	assert.Contains(t, js, "sessionStorage")
	assert.Contains(t, js, "Authorization")
	assert.Contains(t, js, "/auth/sse-ticket")
}
