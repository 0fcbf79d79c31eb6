package api

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

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
