package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/domain"
)

// authCall sends a request to base+path with an optional JSON body, bearer
// token and extra headers, returning status, headers and body.
func authCall(t *testing.T, base, method, path string, body any, token string, hdr map[string]string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, base+path, rd)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
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

// authDetail decodes the "detail" of an error body.
func authDetail(t *testing.T, raw []byte) string {
	t.Helper()
	var body struct {
		Detail string `json:"detail"`
	}
	require.NoError(t, json.Unmarshal(raw, &body), "body %s", raw)
	return body.Detail
}

// authLogin logs username in with password and returns the response.
func authLogin(t *testing.T, e *testEnv, username, password string) (int, loginResponse) {
	t.Helper()
	var resp loginResponse
	status := e.doJSON("POST", "/api/v1/auth/login", map[string]string{"username": username, "password": password}, "", &resp)
	return status, resp
}

func TestAuthRoleTable(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	const none = ""
	cases := []struct {
		name                   string
		method, path           string
		body                   any
		anon, viewer, adminRes int
	}{
		{name: "me", method: "GET", path: "/api/v1/auth/me",
			anon: 401, viewer: 200, adminRes: 200},
		{name: "mint ticket", method: "POST", path: "/api/v1/auth/sse-ticket",
			anon: 401, viewer: 200, adminRes: 200},
		{name: "list users", method: "GET", path: "/api/v1/config/users",
			anon: 401, viewer: 403, adminRes: 200},
		{name: "create user", method: "POST", path: "/api/v1/config/users",
			body: map[string]string{"username": "newbie", "password": "a long enough password", "role": "viewer"},
			anon: 401, viewer: 403, adminRes: 201},
		{name: "delete unknown user", method: "DELETE", path: "/api/v1/config/users/8b0f3c1e-6f0e-4f8e-9d55-0c3c1f1e2a7b",
			anon: 401, viewer: 403, adminRes: 404},
		{name: "set role of unknown user", method: "PUT", path: "/api/v1/config/users/8b0f3c1e-6f0e-4f8e-9d55-0c3c1f1e2a7b/role",
			body: map[string]string{"role": "admin"}, anon: 401, viewer: 403, adminRes: 404},
		{name: "reset password of unknown user", method: "PUT", path: "/api/v1/config/users/8b0f3c1e-6f0e-4f8e-9d55-0c3c1f1e2a7b/reset-password",
			body: map[string]string{"new_password": "a long enough password"}, anon: 401, viewer: 403, adminRes: 404},
	}
	for _, tc := range cases {
		status, raw := e.do(tc.method, tc.path, tc.body, none)
		require.Equal(t, tc.anon, status, "%s anonymous: %s", tc.name, raw)
		require.Equal(t, "Not authenticated", authDetail(t, raw), tc.name)

		status, raw = e.do(tc.method, tc.path, tc.body, e.ViewerToken)
		require.Equal(t, tc.viewer, status, "%s viewer: %s", tc.name, raw)
		if tc.viewer == http.StatusForbidden {
			require.Equal(t, "Insufficient permissions", authDetail(t, raw), tc.name)
		}

		status, raw = e.do(tc.method, tc.path, tc.body, e.AdminToken)
		require.Equal(t, tc.adminRes, status, "%s admin: %s", tc.name, raw)
	}
}

func TestLoginSuccess(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	status, hdr, raw := authCall(t, e.HTTP.URL, "POST", "/api/v1/auth/login",
		map[string]string{"username": "admin", "password": testPassword}, "", nil)
	require.Equal(t, http.StatusOK, status, "%s", raw)
	require.Equal(t, "no-store", hdr.Get("Cache-Control"))
	var resp loginResponse
	require.NoError(t, json.Unmarshal(raw, &resp))
	require.Equal(t, "bearer", resp.TokenType)
	require.False(t, resp.MustChangePassword)
	require.Equal(t, 2, strings.Count(resp.AccessToken, "."), "a JWT")

	var me domain.User
	require.Equal(t, http.StatusOK, e.doJSON("GET", "/api/v1/auth/me", nil, resp.AccessToken, &me))
	require.Equal(t, e.Admin.UUID, me.UUID)
	require.Equal(t, "admin", me.Username)
	require.Equal(t, domain.RoleAdmin, me.Role)
	require.NotContains(t, string(raw), "password_hash")
}

func TestLoginBadCredentials(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	cases := []struct {
		name, username, password string
	}{
		{name: "wrong password", username: "admin", password: "wrong password!"},
		{name: "unknown user", username: "nobody", password: testPassword},
		{name: "password over 72 bytes", username: "admin", password: strings.Repeat("p", 73)},
		{name: "correct password plus a tail past 72 bytes", username: "admin", password: testPassword + strings.Repeat(" ", 72)},
	}
	for _, tc := range cases {
		status, raw := e.do("POST", "/api/v1/auth/login", map[string]string{"username": tc.username, "password": tc.password}, "")
		require.Equal(t, http.StatusUnauthorized, status, "%s: %s", tc.name, raw)
		require.Equal(t, "Incorrect username or password", authDetail(t, raw), tc.name)
		require.NotContains(t, string(raw), tc.password, tc.name)
	}

	status, raw := e.do("POST", "/api/v1/auth/login", map[string]string{"username": "admin"}, "")
	require.Equal(t, http.StatusUnprocessableEntity, status, "%s", raw)
	status, raw = e.do("POST", "/api/v1/auth/login", `{"username": "admin", "password": `, "")
	require.Equal(t, http.StatusUnprocessableEntity, status, "%s", raw)
}

func TestLoginMustChangePasswordFlag(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.createUser("fresh", domain.RoleViewer, true)
	status, resp := authLogin(t, e, "fresh", testPassword)
	require.Equal(t, http.StatusOK, status)
	require.True(t, resp.MustChangePassword)
}

func TestLoginRateLimit(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	behindProxy := *e.Server // same stores; Handler is built once per Server
	behindProxy.TrustProxyHeaders = true
	srv := httptest.NewServer(behindProxy.Handler())
	t.Cleanup(srv.Close)
	from := func(ip string) map[string]string { return map[string]string{"X-Forwarded-For": "203.0.113.77, " + ip} }
	bad := map[string]string{"username": "viewer", "password": "not the password"}

	for i := 1; i <= auth.LoginMaxAttempts; i++ {
		status, _, raw := authCall(t, srv.URL, "POST", "/api/v1/auth/login", bad, "", from("198.51.100.1"))
		require.Equal(t, http.StatusUnauthorized, status, "attempt %d: %s", i, raw)
	}
	status, hdr, raw := authCall(t, srv.URL, "POST", "/api/v1/auth/login", bad, "", from("198.51.100.1"))
	require.Equal(t, http.StatusTooManyRequests, status, "%s", raw)
	require.Equal(t, "Too many login attempts; try again later", authDetail(t, raw))
	retry, err := strconv.Atoi(hdr.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", hdr.Get("Retry-After"))
	require.Greater(t, retry, 0)
	require.LessOrEqual(t, retry, int(auth.LoginWindow/time.Second))

	// Even the right password is refused for this username, from anywhere.
	right := map[string]string{"username": "viewer", "password": testPassword}
	status, _, _ = authCall(t, srv.URL, "POST", "/api/v1/auth/login", right, "", from("198.51.100.2"))
	require.Equal(t, http.StatusTooManyRequests, status, "per-username limit")

	// Another username from the blocked IP is refused too.
	other := map[string]string{"username": "admin", "password": testPassword}
	status, _, _ = authCall(t, srv.URL, "POST", "/api/v1/auth/login", other, "", from("198.51.100.1"))
	require.Equal(t, http.StatusTooManyRequests, status, "per-IP limit")

	// A different username from another IP is unaffected.
	status, _, raw = authCall(t, srv.URL, "POST", "/api/v1/auth/login", other, "", from("198.51.100.3"))
	require.Equal(t, http.StatusOK, status, "%s", raw)
}

func TestLoginClientIP(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		trust  bool
		remote string
		xff    []string
		want   string
	}{
		{name: "peer by default", remote: "192.0.2.10:5555", xff: []string{"198.51.100.9"}, want: "192.0.2.10"},
		{name: "last XFF entry behind a proxy", trust: true, remote: "10.1.2.3:80", xff: []string{"1.1.1.1, 198.51.100.9"}, want: "198.51.100.9"},
		{name: "last of several XFF headers", trust: true, remote: "10.1.2.3:80", xff: []string{"1.1.1.1", "2.2.2.2, 198.51.100.8"}, want: "198.51.100.8"},
		{name: "forged garbage falls back to peer", trust: true, remote: "10.1.2.3:80", xff: []string{"1.1.1.1, not-an-ip"}, want: "10.1.2.3"},
		{name: "no header falls back to peer", trust: true, remote: "10.1.2.3:80", want: "10.1.2.3"},
		{name: "IPv4-mapped IPv6", remote: "[::ffff:192.0.2.7]:1234", want: "192.0.2.7"},
		{name: "IPv6 per /64", remote: "[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443", want: "2001:db8:1:2::/64"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{TrustProxyHeaders: tc.trust}
			r := httptest.NewRequest("POST", "/api/v1/auth/login", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			require.Equal(t, tc.want, s.clientIP(r))
		})
	}
}

func TestAuthForcedPasswordChange(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	forced, token := e.createUser("forced", domain.RoleAdmin, true)

	for _, req := range []struct{ method, path string }{
		{"POST", "/api/v1/auth/sse-ticket"},
		{"GET", "/api/v1/config/users"},
		{"POST", "/api/v1/config/users"},
	} {
		status, raw := e.do(req.method, req.path, nil, token)
		require.Equal(t, http.StatusForbidden, status, "%s %s: %s", req.method, req.path, raw)
		require.Equal(t, "Password change required before accessing this resource", authDetail(t, raw))
	}

	var me domain.User
	require.Equal(t, http.StatusOK, e.doJSON("GET", "/api/v1/auth/me", nil, token, &me))
	require.True(t, me.MustChangePassword)
	require.Equal(t, forced.UUID, me.UUID)

	// A second token of the same user can log out despite the pending change.
	other, _, err := e.Server.Tokens.Issue(forced.UUID)
	require.NoError(t, err)
	status, raw := e.do("POST", "/api/v1/auth/logout", nil, other)
	require.Equal(t, http.StatusOK, status, "%s", raw)

	status, raw = e.do("POST", "/api/v1/auth/change-password",
		map[string]string{"old_password": testPassword, "new_password": "a brand new password"}, token)
	require.Equal(t, http.StatusOK, status, "%s", raw)
	require.Equal(t, "Password changed", authDetail(t, raw))

	status, resp := authLogin(t, e, "forced", "a brand new password")
	require.Equal(t, http.StatusOK, status)
	require.False(t, resp.MustChangePassword)
	status, raw = e.do("GET", "/api/v1/config/users", nil, resp.AccessToken)
	require.Equal(t, http.StatusOK, status, "%s", raw)
}

func TestAuthLogoutRevokesOnlyThatToken(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	_, first := authLogin(t, e, "viewer", testPassword)
	_, second := authLogin(t, e, "viewer", testPassword)

	status, raw := e.do("POST", "/api/v1/auth/logout", nil, first.AccessToken)
	require.Equal(t, http.StatusOK, status, "%s", raw)
	require.Equal(t, "Logged out", authDetail(t, raw))

	status, raw = e.do("GET", "/api/v1/auth/me", nil, first.AccessToken)
	require.Equal(t, http.StatusUnauthorized, status, "%s", raw)
	status, _ = e.do("POST", "/api/v1/auth/logout", nil, first.AccessToken)
	require.Equal(t, http.StatusUnauthorized, status, "a revoked token cannot log out again")

	status, raw = e.do("GET", "/api/v1/auth/me", nil, second.AccessToken)
	require.Equal(t, http.StatusOK, status, "other sessions survive: %s", raw)
	status, _ = e.do("GET", "/api/v1/auth/me", nil, e.ViewerToken)
	require.Equal(t, http.StatusOK, status)
}

func TestAuthChangePasswordRevokesEveryToken(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	_, older := authLogin(t, e, "viewer", testPassword)
	// DOMAIN §11.2 compares whole seconds: tokens of an earlier second die.
	e.Clock.Advance(time.Second)

	status, raw := e.do("POST", "/api/v1/auth/change-password",
		map[string]string{"old_password": testPassword, "new_password": "another long password"}, e.ViewerToken)
	require.Equal(t, http.StatusOK, status, "%s", raw)

	for _, tok := range []string{e.ViewerToken, older.AccessToken} {
		status, raw = e.do("GET", "/api/v1/auth/me", nil, tok)
		require.Equal(t, http.StatusUnauthorized, status, "%s", raw)
	}
	status, _ = e.do("GET", "/api/v1/auth/me", nil, e.AdminToken)
	require.Equal(t, http.StatusOK, status, "other users are unaffected")

	status, _ = authLogin(t, e, "viewer", testPassword)
	require.Equal(t, http.StatusUnauthorized, status, "the old password is gone")
	// Logging in within the same second as the change works.
	status, fresh := authLogin(t, e, "viewer", "another long password")
	require.Equal(t, http.StatusOK, status)
	status, raw = e.do("GET", "/api/v1/auth/me", nil, fresh.AccessToken)
	require.Equal(t, http.StatusOK, status, "%s", raw)
}

func TestAuthChangePasswordValidation(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	cases := []struct {
		name     string
		old, new string
		status   int
		detail   string
	}{
		{name: "wrong old password", old: "not my password", new: "a long enough password", status: 400, detail: "Incorrect password"},
		{name: "new too short", old: testPassword, new: "short", status: 422, detail: "between 12 and 72 bytes"},
		{name: "new too long", old: testPassword, new: strings.Repeat("n", 73), status: 422, detail: "between 12 and 72 bytes"},
		{name: "new equals old", old: testPassword, new: testPassword, status: 422, detail: "must differ"},
	}
	for _, tc := range cases {
		status, raw := e.do("POST", "/api/v1/auth/change-password",
			map[string]string{"old_password": tc.old, "new_password": tc.new}, e.ViewerToken)
		require.Equal(t, tc.status, status, "%s: %s", tc.name, raw)
		require.Contains(t, authDetail(t, raw), tc.detail, tc.name)
	}
	status, raw := e.do("GET", "/api/v1/auth/me", nil, e.ViewerToken)
	require.Equal(t, http.StatusOK, status, "failed changes revoke nothing: %s", raw)
	status, _ = authLogin(t, e, "viewer", testPassword)
	require.Equal(t, http.StatusOK, status, "failed changes keep the password")
}

func TestTicketMint(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	status, hdr, raw := authCall(t, e.HTTP.URL, "POST", "/api/v1/auth/sse-ticket", nil, e.ViewerToken, nil)
	require.Equal(t, http.StatusOK, status, "%s", raw)
	require.Equal(t, "no-store", hdr.Get("Cache-Control"))
	var resp struct {
		Ticket    string `json:"ticket"`
		ExpiresIn int    `json:"expires_in"`
	}
	require.NoError(t, json.Unmarshal(raw, &resp))
	require.Equal(t, 60, resp.ExpiresIn)
	require.GreaterOrEqual(t, len(resp.Ticket), 43)
	require.NotContains(t, resp.Ticket, ".")

	ttl, err := e.Redis.Client.PTTL(context.Background(), e.Server.Keys.Ticket(resp.Ticket)).Result()
	require.NoError(t, err)
	require.Greater(t, ttl, time.Duration(0))
	require.LessOrEqual(t, ttl, 60*time.Second)

	// A ticket is not a bearer credential.
	status, raw = e.do("GET", "/api/v1/auth/me", nil, resp.Ticket)
	require.Equal(t, http.StatusUnauthorized, status, "%s", raw)

	got, err := e.Server.Tickets.Redeem(context.Background(), resp.Ticket)
	require.NoError(t, err)
	require.Equal(t, e.Viewer.UUID, got.UserUUID)
	require.Equal(t, domain.RoleViewer, got.Role)
	_, err = e.Server.Tickets.Redeem(context.Background(), resp.Ticket)
	require.Equal(t, domain.EUnauthorized, domain.ErrorCode(err), "single use")

	var admin struct {
		Ticket string `json:"ticket"`
	}
	require.Equal(t, http.StatusOK, e.doJSON("POST", "/api/v1/auth/sse-ticket", nil, e.AdminToken, &admin))
	require.NotEqual(t, resp.Ticket, admin.Ticket)
	got, err = e.Server.Tickets.Redeem(context.Background(), admin.Ticket)
	require.NoError(t, err)
	require.Equal(t, domain.RoleAdmin, got.Role)
}

func TestAuthRejectsBadTokens(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	foreign, _, err := auth.NewTokens([]byte("some-other-secret-some-other-secret"), 0).Issue(e.Admin.UUID)
	require.NoError(t, err)
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{
		"uuid": e.Admin.UUID, "jti": "x", "typ": "access", "iss": auth.Issuer, "aud": auth.Audience,
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	ghost, ghostToken := e.createUser("ghost", domain.RoleAdmin, false)
	require.NoError(t, e.DB.DeleteUser(context.Background(), ghost.UUID))

	for name, tok := range map[string]string{
		"garbage":        "garbage",
		"three dots":     "a.b.c",
		"foreign secret": foreign,
		"alg none":       none,
		"deleted user":   ghostToken,
	} {
		status, hdr, raw := authCall(t, e.HTTP.URL, "GET", "/api/v1/auth/me", nil, tok, nil)
		require.Equal(t, http.StatusUnauthorized, status, "%s: %s", name, raw)
		require.Equal(t, "Bearer", hdr.Get("WWW-Authenticate"), name)
	}

	// The JWT is never read from the query string (DOMAIN §11.3).
	for _, q := range []string{"token", "access_token", "ticket"} {
		status, raw := e.do("GET", "/api/v1/auth/me?"+q+"="+e.AdminToken, nil, "")
		require.Equal(t, http.StatusUnauthorized, status, "?%s=: %s", q, raw)
	}
	// A non-Bearer scheme is not accepted either.
	status, _, _ := authCall(t, e.HTTP.URL, "GET", "/api/v1/auth/me", nil, "", map[string]string{"Authorization": "Basic " + e.AdminToken})
	require.Equal(t, http.StatusUnauthorized, status)
}

// Issue 8, item 9: an operator opening many tabs (a login each) never locks
// themselves out; failures still do.
func TestLoginSuccessesDoNotCount(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for i := range 3 * auth.LoginMaxAttempts {
		status, _ := authLogin(t, e, "viewer", testPassword)
		require.Equal(t, http.StatusOK, status, "login %d", i)
	}
	// A right old password at change-password is a success too.
	status, raw := e.do("POST", "/api/v1/auth/change-password",
		map[string]string{"old_password": testPassword, "new_password": "a brand new password"}, e.ViewerToken)
	require.Equal(t, http.StatusOK, status, "%s", raw)

	for i := range auth.LoginMaxAttempts {
		status, raw := e.do("POST", "/api/v1/auth/login", map[string]string{"username": "viewer", "password": "wrong password"}, "")
		require.Equal(t, http.StatusUnauthorized, status, "failure %d: %s", i, raw)
	}
	status, raw = e.do("POST", "/api/v1/auth/login", map[string]string{"username": "viewer", "password": "a brand new password"}, "")
	require.Equal(t, http.StatusTooManyRequests, status, "the failures lock it out: %s", raw)
}
