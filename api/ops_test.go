package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
)

func TestMetricsNeedAdminOrToken(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := *e.Server
	s.MetricsToken = "scrape-token-scrape-token"
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	_, pending := e.createUser("pending", domain.RoleAdmin, true)

	for _, tc := range []struct {
		auth string
		want int
	}{
		{"Bearer " + pending, http.StatusForbidden},
		{"", http.StatusUnauthorized},
		{"Bearer " + e.ViewerToken, http.StatusForbidden},
		{"Bearer " + e.AdminToken, http.StatusOK},
		{"Bearer scrape-token-scrape-token", http.StatusOK},
		{"Bearer wrong", http.StatusUnauthorized},
	} {
		req, _ := http.NewRequest("GET", srv.URL+"/metrics", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, tc.want, resp.StatusCode, "auth %q", tc.auth)
	}
}

func TestMonitoringNeedsAdminBasicAuth(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := *e.Server
	s.AsynqRedis = e.Redis.Options()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		user, pass string
		want       int
	}{
		{"", "", http.StatusUnauthorized},
		{"admin", "wrong password", http.StatusUnauthorized},
		{"viewer", testPassword, http.StatusForbidden},
		{"admin", testPassword, http.StatusOK},
		{"admin", testPassword, http.StatusOK}, // served from the login cache
	} {
		req, _ := http.NewRequest("GET", srv.URL+"/monitoring/", nil)
		if tc.user != "" {
			req.SetBasicAuth(tc.user, tc.pass)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, tc.want, resp.StatusCode, "user %q", tc.user)
		if tc.want == http.StatusUnauthorized {
			require.Contains(t, resp.Header.Get("WWW-Authenticate"), "Basic")
		}
	}
}

// monitoringServer serves e's stores with /monitoring mounted and the client
// IP taken from X-Forwarded-For, so a test can play several clients.
func monitoringServer(t *testing.T, e *testEnv) (*Server, string) {
	t.Helper()
	s := *e.Server
	s.AsynqRedis = e.Redis.Options()
	s.TrustProxyHeaders = true
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &s, srv.URL
}

// monitoringCall sends method path with Basic credentials from ip and extra
// headers, returning status, headers and body.
func monitoringCall(t *testing.T, base, method, path, user, pass, ip string, hdr map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	require.NoError(t, err)
	req.SetBasicAuth(user, pass)
	req.Header.Set("X-Forwarded-For", ip)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, raw
}

// Issue 8, item 1: /monitoring's Basic check is the login limiter's, with
// the same keys, limit, 429 and Retry-After.
func TestMonitoringSharesTheLoginLimit(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	_, base := monitoringServer(t, e)
	const ip = "198.51.100.20"
	half := auth.LoginMaxAttempts / 2

	// A verified credential sits in the cache before the guessing starts.
	status, _, raw := monitoringCall(t, base, "GET", "/monitoring/", "admin", testPassword, ip, nil)
	require.Equal(t, http.StatusOK, status, "%s", raw)

	for i := range half {
		status, _, raw := authCall(t, base, "POST", "/api/v1/auth/login",
			map[string]string{"username": "admin", "password": "wrong password"}, "", map[string]string{"X-Forwarded-For": ip})
		require.Equal(t, http.StatusUnauthorized, status, "login guess %d: %s", i, raw)
	}
	for i := half; i < auth.LoginMaxAttempts; i++ {
		status, hdr, raw := monitoringCall(t, base, "GET", "/monitoring/", "admin", "wrong password", ip, nil)
		require.Equal(t, http.StatusUnauthorized, status, "monitoring guess %d: %s", i, raw)
		require.Contains(t, hdr.Get("WWW-Authenticate"), "Basic")
	}
	status, hdr, raw := monitoringCall(t, base, "GET", "/monitoring/", "admin", "wrong password", ip, nil)
	require.Equal(t, http.StatusTooManyRequests, status, "%s", raw)
	require.Equal(t, "Too many login attempts; try again later", authDetail(t, raw))
	retry, err := strconv.Atoi(hdr.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", hdr.Get("Retry-After"))
	require.Positive(t, retry)
	require.LessOrEqual(t, retry, int(auth.LoginWindow/time.Second))

	// Locked out everywhere: login (another IP, same username), and the
	// cached right password too, which would otherwise tell a guesser it
	// found the password while every wrong guess gets 429.
	status, _, _ = authCall(t, base, "POST", "/api/v1/auth/login",
		map[string]string{"username": "admin", "password": testPassword}, "", map[string]string{"X-Forwarded-For": "198.51.100.21"})
	require.Equal(t, http.StatusTooManyRequests, status)
	status, _, _ = monitoringCall(t, base, "GET", "/monitoring/", "admin", testPassword, ip, nil)
	require.Equal(t, http.StatusTooManyRequests, status, "a cached credential is refused while locked out")
	status, _, _ = monitoringCall(t, base, "GET", "/monitoring/", "admin", testPassword, "198.51.100.22", nil)
	require.Equal(t, http.StatusTooManyRequests, status, "per-username limit from another IP")
}

// Issue 8, item 9: successes never count, on /monitoring as at login.
func TestMonitoringSuccessesDoNotCount(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	_, base := monitoringServer(t, e)
	for i := range 3 * auth.LoginMaxAttempts {
		// A fresh password each time would be the same check; alternate the
		// cached path and the bcrypt path by forgetting the cache.
		if i%2 == 0 {
			e.Server.basicCache.Clear()
		}
		status, _, raw := monitoringCall(t, base, "GET", "/monitoring/", "admin", testPassword, "198.51.100.30", nil)
		require.Equal(t, http.StatusOK, status, "request %d: %s", i, raw)
	}
	for _, key := range []string{e.Server.Keys.LoginByUser("admin"), e.Server.Keys.LoginByIP("198.51.100.30")} {
		n, err := e.Redis.Client.Get(context.Background(), key).Int()
		require.NoError(t, err, "the bcrypt path reserved an attempt in %s", key)
		require.Zero(t, n, "and gave it back: %s", key)
	}
}

// Issue 8, item 3: a cached credential stops working on the very next
// request after a password change, a reset, a demotion or a deletion.
func TestMonitoringRevocationIsImmediate(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	_, base := monitoringServer(t, e)
	ctx := context.Background()
	newHash, err := auth.HashPassword("an entirely new password", bcrypt.MinCost)
	require.NoError(t, err)

	for _, tc := range []struct {
		name   string
		revoke func(u *domain.User)
		want   int
	}{
		{"password change", func(u *domain.User) {
			_, err := e.DB.SetPassword(ctx, u.UUID, newHash, false)
			require.NoError(t, err)
		}, http.StatusUnauthorized},
		{"password reset", func(u *domain.User) {
			_, err := e.DB.SetPassword(ctx, u.UUID, newHash, true)
			require.NoError(t, err)
		}, http.StatusUnauthorized},
		{"demotion", func(u *domain.User) {
			status, raw := e.do("PUT", "/api/v1/config/users/"+u.UUID+"/role", map[string]string{"role": "viewer"}, e.AdminToken)
			require.Equal(t, http.StatusOK, status, "%s", raw)
		}, http.StatusForbidden},
		{"deletion", func(u *domain.User) {
			status, raw := e.do("DELETE", "/api/v1/config/users/"+u.UUID, nil, e.AdminToken)
			require.Equal(t, http.StatusNoContent, status, "%s", raw)
		}, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, _ := e.createUser("mon-"+strings.ReplaceAll(tc.name, " ", "-"), domain.RoleAdmin, false)
			for range 2 { // the second one is served by the cache
				status, _, raw := monitoringCall(t, base, "GET", "/monitoring/", u.Username, testPassword, "198.51.100.40", nil)
				require.Equal(t, http.StatusOK, status, "%s", raw)
			}
			tc.revoke(u)
			status, _, raw := monitoringCall(t, base, "GET", "/monitoring/", u.Username, testPassword, "198.51.100.40", nil)
			require.Equal(t, tc.want, status, "%s", raw)
		})
	}
}

// Issue 8, item 2: a browser attaches cached Basic credentials to requests a
// hostile page makes, so state-changing /monitoring requests from another
// site are refused before asynqmon sees them.
func TestMonitoringRefusesCrossSiteWrites(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	_, base := monitoringServer(t, e)
	host := strings.TrimPrefix(base, "http://")
	client := asynq.NewClientFromRedisClient(e.Redis.Client)
	_, err := client.Enqueue(asynq.NewTask("noop", nil), asynq.Queue(e.Redis.Queue))
	require.NoError(t, err)
	pause := "/monitoring/api/queues/" + e.Redis.Queue + ":pause"
	paused := func() bool {
		info, err := e.Inspector.GetQueueInfo(e.Redis.Queue)
		require.NoError(t, err)
		return info.Paused
	}

	for _, tc := range []struct {
		name    string
		hdr     map[string]string
		refused bool
	}{
		{"cross-site fetch metadata", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://" + host}, true},
		{"same-site (sibling subdomain)", map[string]string{"Sec-Fetch-Site": "same-site"}, true},
		{"foreign Origin", map[string]string{"Origin": "https://evil.example"}, true},
		{"null Origin", map[string]string{"Origin": "null"}, true},
		{"foreign Referer without Origin", map[string]string{"Referer": "https://evil.example/form.html"}, true},
		{"Origin wins over a matching Referer", map[string]string{"Origin": "https://evil.example", "Referer": "http://" + host + "/monitoring/"}, true},
		{"same origin", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://" + host}, false},
		{"same Referer", map[string]string{"Referer": "http://" + host + "/monitoring/queues"}, false},
		{"no browser headers (curl)", nil, false},
	} {
		status, _, raw := monitoringCall(t, base, "POST", pause, "admin", testPassword, "198.51.100.50", tc.hdr)
		if tc.refused {
			require.Equal(t, http.StatusForbidden, status, "%s: %s", tc.name, raw)
			require.Equal(t, "Cross-site request refused", authDetail(t, raw), tc.name)
			require.False(t, paused(), "%s: the queue must not be paused", tc.name)
			continue
		}
		require.Less(t, status, 300, "%s: %s", tc.name, raw)
		require.True(t, paused(), tc.name)
		require.NoError(t, e.Inspector.UnpauseQueue(e.Redis.Queue))
	}

	// Reading stays possible from anywhere (a link from another site).
	status, _, raw := monitoringCall(t, base, "GET", "/monitoring/api/queues", "admin", testPassword, "198.51.100.50",
		map[string]string{"Sec-Fetch-Site": "cross-site"})
	require.Equal(t, http.StatusOK, status, "%s", raw)
}

// The /monitoring check fails closed like login: without the limiter's
// Redis it answers 503 (web.Unavailable), never a password check.
func TestMonitoringFailsClosedWithoutRedis(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	dead := dbtest.UnreachableRedis(t)
	s := NewServer(testConfig(e.Redis), e.DB, dead)
	s.AsynqRedis = e.Redis.Options() // the UI's own Redis is up; the limiter's is not
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	for _, pass := range []string{testPassword, "wrong password"} {
		status, hdr, raw := monitoringCall(t, srv.URL, "GET", "/monitoring/", "admin", pass, "198.51.100.70", nil)
		require.Equal(t, http.StatusServiceUnavailable, status, "%s", raw)
		require.NotEmpty(t, hdr.Get("Retry-After"))
		require.NotEmpty(t, authDetail(t, raw))
	}
}
