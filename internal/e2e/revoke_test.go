package e2e

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/domain"
)

// expectRevokedEnd reads s to its end and requires its last frame to be
// `event: revoked` (the sse process ended it because its credential died).
func expectRevokedEnd(t *testing.T, s *sseStream) {
	t.Helper()
	var last sseFrame
	deadline := time.After(30 * time.Second) // a hang, not a timing claim
	for {
		select {
		case f, ok := <-s.ch:
			if !ok {
				require.Equal(t, "revoked", last.Event, "the stream's last frame")
				return
			}
			last = f
		case <-deadline:
			t.Fatal("the stream did not end within 30 s")
		}
	}
}

// authFlow is the real api and two sse processes of one backend, every
// process logging (at debug level) into one captured buffer.
type authFlow struct {
	b        *backend
	api      string
	sse      [2]string
	logs     *syncBuffer
	username string
}

func newAuthFlow(t *testing.T) *authFlow {
	t.Helper()
	b := newBackend(t)
	logs := &syncBuffer{}
	b.Log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := &authFlow{b: b, logs: logs, username: "flow-admin"}
	f.api = startAPI(t, b.apiConfig())
	f.sse[0] = startSSE(t, b.sseConfig())
	f.sse[1] = startSSE(t, b.sseConfig())
	b.createUser(t, f.username, domain.RoleAdmin, false)
	return f
}

// login signs in through the api and returns the access token.
func (f *authFlow) login(t *testing.T, password string) string {
	t.Helper()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	(&client{t: t, base: f.api}).do(http.MethodPost, "/api/v1/auth/login",
		map[string]string{"username": f.username, "password": password}, http.StatusOK, &out)
	require.NotEmpty(t, out.AccessToken)
	return out.AccessToken
}

// ticket mints an SSE ticket through the api.
func (f *authFlow) ticket(t *testing.T, token string) string {
	t.Helper()
	var out struct {
		Ticket string `json:"ticket"`
	}
	(&client{t: t, base: f.api, token: token}).do(http.MethodPost, "/api/v1/auth/sse-ticket", nil, http.StatusOK, &out)
	require.NotEmpty(t, out.Ticket)
	return out.Ticket
}

// stream opens the overview stream on sse process i with a fresh ticket and
// reads its snapshot; it returns the stream and the ticket used.
func (f *authFlow) stream(t *testing.T, i int, token string) (*sseStream, string) {
	t.Helper()
	tk := f.ticket(t, token)
	s := openSSE(t, f.sse[i]+"/api/v1/stream?"+url.Values{"ticket": {tk}}.Encode())
	require.Equal(t, "snapshot", s.next().Event)
	return s, tk
}

// nextSecond waits for the next whole second. A password change revokes the
// tokens issued in an earlier second only (DOMAIN §11.2 compares whole
// seconds, so a token minted in the same second as the change survives):
// this sets up the case, it checks nothing.
func nextSecond() {
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
}

// TestRevocationThroughAPI: a logout and a password change made through the
// real api end the user's open streams on both sse processes (the api's
// notice, not the periodic re-check: that runs every 15 s, and each stream
// must end well before the test's 30 s hang bound anyway). After the change
// the dashboard's next ticket request answers 401, which sends it to the
// login screen instead of reconnecting (api/dashboard/js/stream.js).
func TestRevocationThroughAPI(t *testing.T) {
	f := newAuthFlow(t)
	tok := f.login(t, testPassword)
	a, _ := f.stream(t, 0, tok)
	b, _ := f.stream(t, 1, tok)
	(&client{t: t, base: f.api, token: tok}).do(http.MethodPost, "/api/v1/auth/logout", nil, http.StatusOK, nil)
	expectRevokedEnd(t, a)
	expectRevokedEnd(t, b)
	(&client{t: t, base: f.api, token: tok}).do(http.MethodPost, "/api/v1/auth/sse-ticket", nil, http.StatusUnauthorized, nil)

	tok = f.login(t, testPassword)
	a, _ = f.stream(t, 0, tok)
	b, _ = f.stream(t, 1, tok)
	nextSecond()
	(&client{t: t, base: f.api, token: tok}).do(http.MethodPost, "/api/v1/auth/change-password",
		map[string]string{"old_password": testPassword, "new_password": "another long password"}, http.StatusOK, nil)
	expectRevokedEnd(t, a)
	expectRevokedEnd(t, b)
	(&client{t: t, base: f.api, token: tok}).do(http.MethodPost, "/api/v1/auth/sse-ticket", nil, http.StatusUnauthorized, nil)
}

// TestLogsCarryNoSecrets captures every log line of the api and both sse
// processes (debug level) across a failed login, a login, ticket minting,
// SSE handshakes (a ticket, a bearer header, a refused JWT in the query, a
// refused used ticket), a change of password and a logout, and requires
// that no password, token or ticket appears in them.
func TestLogsCarryNoSecrets(t *testing.T) {
	f := newAuthFlow(t)
	const wrongPassword = "not-the-password-9f3k"
	const newPassword = "a brand new password 7q2"
	var secrets []string

	(&client{t: t, base: f.api}).do(http.MethodPost, "/api/v1/auth/login",
		map[string]string{"username": f.username, "password": wrongPassword}, http.StatusUnauthorized, nil)
	tok := f.login(t, testPassword)
	secrets = append(secrets, testPassword, wrongPassword, newPassword, tok)

	s, tk := f.stream(t, 0, tok)
	secrets = append(secrets, tk)
	// The used ticket again, the JWT in the query, a bearer-header stream.
	for _, u := range []string{
		f.sse[1] + "/api/v1/stream?ticket=" + url.QueryEscape(tk),
		f.sse[1] + "/api/v1/stream?token=" + url.QueryEscape(tok),
		f.sse[1] + "/api/v1/stream?ticket=" + url.QueryEscape(tok),
	} {
		resp, err := http.Get(u)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	}
	req, err := http.NewRequest(http.MethodGet, f.sse[1]+"/api/v1/stream", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp.Body.Close()

	(&client{t: t, base: f.api, token: tok}).do(http.MethodPost, "/api/v1/auth/change-password",
		map[string]string{"old_password": wrongPassword, "new_password": newPassword}, http.StatusBadRequest, nil)
	nextSecond()
	(&client{t: t, base: f.api, token: tok}).do(http.MethodPost, "/api/v1/auth/change-password",
		map[string]string{"old_password": testPassword, "new_password": newPassword}, http.StatusOK, nil)
	expectRevokedEnd(t, s)

	tok2 := f.login(t, newPassword)
	tk2 := f.ticket(t, tok2)
	secrets = append(secrets, tok2, tk2)
	(&client{t: t, base: f.api, token: tok2}).do(http.MethodPost, "/api/v1/auth/logout", nil, http.StatusOK, nil)

	out := f.logs.String()
	require.Contains(t, out, "/api/v1/auth/login", "the capture holds the request log")
	require.Contains(t, out, "/api/v1/stream", "the capture holds the sse processes' log")
	for _, sec := range secrets {
		require.NotContains(t, out, sec, "a secret appears in the logs")
		// Also the JSON-escaped and URL-escaped spellings.
		require.NotContains(t, out, url.QueryEscape(sec))
		require.NotContains(t, out, strings.ReplaceAll(sec, " ", "+"))
	}
	// The JWT's signature alone is enough to forge nothing but identifies
	// the token; it must not appear either.
	for _, jwt := range []string{tok, tok2} {
		parts := strings.Split(jwt, ".")
		require.Len(t, parts, 3)
		require.NotContains(t, out, parts[2])
	}
}
