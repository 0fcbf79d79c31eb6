package sse_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/sse"
)

// revokeEnv is a testEnv whose store stamps tokens_valid_from two seconds
// ahead, so a change revokes the tokens issued just before it instead of
// sparing them for sharing its second (DOMAIN §11.2's whole-second rule).
func revokeEnv(t *testing.T) *testEnv {
	e := newEnv(t)
	e.DB.Now = func() time.Time { return time.Now().Add(2 * time.Second) }
	return e
}

// mintFor mints a ticket the way the api does: bound to the token's claims.
func (e *testEnv) mintFor(u *domain.User, token string) string {
	e.t.Helper()
	c, err := e.Tokens.Verify(token)
	require.NoError(e.t, err)
	tk, err := e.Tickets.MintFor(context.Background(), c, u.Role)
	require.NoError(e.t, err)
	return tk
}

// notify publishes a revocation notice as the api does after its commit.
func (e *testEnv) notify(user, jti string) {
	e.t.Helper()
	require.NoError(e.t, auth.PublishRevocation(context.Background(), e.Redis.Client, e.Keys,
		auth.Revocation{UserUUID: user, JTI: jti}))
}

// expectRevoked reads c to its end and requires the last frame to be
// `event: revoked` (and no retry: frame, so EventSource does not come back
// by itself).
func expectRevoked(t *testing.T, c *conn) {
	t.Helper()
	frames := c.drainToEnd()
	require.NotEmpty(t, frames, "the stream ends with a revoked frame")
	last := frames[len(frames)-1]
	require.Equal(t, "revoked", last.Event, "frames: %+v", frames)
	require.JSONEq(t, `{"message": "Session revoked"}`, last.Data)
	for _, f := range frames {
		require.Empty(t, f.Retry, "a revoked stream is not told to retry")
	}
}

// openBoth opens the topology stream on base with a bearer header and the
// overview stream with a ticket minted for token, and reads both snapshots.
func (e *testEnv) openBoth(t *testing.T, base, tid string, u *domain.User, token string) (*conn, *conn) {
	t.Helper()
	resp, header := open(t, base, eventsPath(tid, nil), bearerHeader(token))
	require.Equal(t, 200, resp.StatusCode)
	resp, ticket := open(t, base, "/api/v1/stream?"+url.Values{"ticket": {e.mintFor(u, token)}}.Encode(), nil)
	require.Equal(t, 200, resp.StatusCode)
	var snap map[string]any
	header.snapshot(&snap)
	ticket.snapshot(&snap)
	return header, ticket
}

// TestRevocationEndsOpenStreams: each revocation kind, announced the way the
// api announces it, ends the user's open streams on every sse process, both
// the header-authenticated and the ticket-opened ones, and frees their
// slots; another user's stream goes on.
func TestRevocationEndsOpenStreams(t *testing.T) {
	cases := []struct {
		name   string
		revoke func(t *testing.T, e *testEnv, u *domain.User, token string)
	}{
		{"logout", func(t *testing.T, e *testEnv, u *domain.User, token string) {
			c, err := e.Tokens.Verify(token)
			require.NoError(t, err)
			require.NoError(t, e.DB.RevokeToken(context.Background(), c.JTI, u.UUID, c.ExpiresAt))
			e.notify(u.UUID, c.JTI)
		}},
		{"password change", func(t *testing.T, e *testEnv, u *domain.User, _ string) {
			_, err := e.DB.SetPassword(context.Background(), u.UUID, "y", false)
			require.NoError(t, err)
			e.notify(u.UUID, "")
		}},
		{"password reset", func(t *testing.T, e *testEnv, u *domain.User, _ string) {
			_, err := e.DB.SetPassword(context.Background(), u.UUID, "y", true)
			require.NoError(t, err)
			e.notify(u.UUID, "")
		}},
		{"demotion", func(t *testing.T, e *testEnv, u *domain.User, _ string) {
			_, err := e.DB.SetRole(context.Background(), u.UUID, domain.RoleViewer)
			require.NoError(t, err)
			e.notify(u.UUID, "")
		}},
		{"deleted user", func(t *testing.T, e *testEnv, u *domain.User, _ string) {
			require.NoError(t, e.DB.DeleteUser(context.Background(), u.UUID))
			e.notify(u.UUID, "")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := revokeEnv(t)
			// A re-check interval far beyond the test: only the notice can
			// end these streams.
			slow := func(s *sse.Server) { s.RecheckInterval = time.Hour }
			s1, base1 := e.server(slow)
			s2, base2 := e.server(slow)
			require.Eventually(t, func() bool { return s1.RevocationsSubscribed() && s2.RevocationsSubscribed() },
				20*time.Second, 20*time.Millisecond, "both processes follow the notices")
			tid := e.topology(domain.StatusActive)
			u, token := e.user(domain.RoleAdmin, false)
			// Another admin: the last admin can be neither demoted nor deleted.
			other, otherTok := e.user(domain.RoleAdmin, false)

			a1, b1 := e.openBoth(t, base1, tid, u, token)
			a2, b2 := e.openBoth(t, base2, tid, u, token)
			o1, o2 := e.openBoth(t, base1, tid, other, otherTok)
			require.Equal(t, 4, s1.HeldSlots())

			tc.revoke(t, e, u, token)
			for _, c := range []*conn{a1, b1, a2, b2} {
				expectRevoked(t, c)
			}
			require.Eventually(t, func() bool { return s1.HeldSlots() == 2 && s2.HeldSlots() == 0 },
				10*time.Second, 20*time.Millisecond, "the revoked streams' slots are released")

			// The other user's streams still carry events.
			ev := e.emit(nil, tid, 1)
			require.Equal(t, ev[0].ID.String(), o1.mustNext().ID)
			require.Equal(t, ev[0].ID.String(), o2.mustNext().ID)
		})
	}
}

// TestLogoutEndsOnlyThatTokensStreams: a logout denylists one jti; streams
// opened with another token of the same user (another browser) go on.
func TestLogoutEndsOnlyThatTokensStreams(t *testing.T) {
	e := revokeEnv(t)
	s, base := e.server(func(s *sse.Server) { s.RecheckInterval = time.Hour })
	require.Eventually(t, s.RevocationsSubscribed, 20*time.Second, 20*time.Millisecond)
	tid := e.topology(domain.StatusActive)
	u, token := e.user(domain.RoleViewer, false)
	second, _, err := e.Tokens.Issue(u.UUID)
	require.NoError(t, err)

	a, b := e.openBoth(t, base, tid, u, token)
	keepA, keepB := e.openBoth(t, base, tid, u, second)

	c, err := e.Tokens.Verify(token)
	require.NoError(t, err)
	require.NoError(t, e.DB.RevokeToken(context.Background(), c.JTI, u.UUID, c.ExpiresAt))
	e.notify(u.UUID, c.JTI)
	expectRevoked(t, a)
	expectRevoked(t, b)

	ev := e.emit(nil, tid, 1)
	require.Equal(t, ev[0].ID.String(), keepA.mustNext().ID)
	require.Equal(t, ev[0].ID.String(), keepB.mustNext().ID)
}

// TestRecheckEndsStreamWhoseNoticeWasLost: with no notice at all (an sse
// process cut off from Redis pub/sub misses them), the periodic re-check
// ends the stream by itself, within RecheckInterval.
func TestRecheckEndsStreamWhoseNoticeWasLost(t *testing.T) {
	e := revokeEnv(t)
	_, base := e.server(func(s *sse.Server) { s.RecheckInterval = 200 * time.Millisecond })
	tid := e.topology(domain.StatusActive)
	u, token := e.user(domain.RoleViewer, false)
	a, b := e.openBoth(t, base, tid, u, token)

	_, err := e.DB.SetPassword(context.Background(), u.UUID, "y", false) // no notice
	require.NoError(t, err)
	expectRevoked(t, a)
	expectRevoked(t, b)
}

// TestRecheckNow: one batched re-check ends exactly the streams whose
// credential is dead (deleted user, logged-out jti, expired token) and
// leaves the live ones; no notice is sent, and the periodic re-check is
// out of the picture.
func TestRecheckNow(t *testing.T) {
	e := revokeEnv(t)
	s, base := e.server(func(s *sse.Server) { s.RecheckInterval = time.Hour })
	tid := e.topology(domain.StatusActive)
	ctx := context.Background()

	gone, goneTok := e.user(domain.RoleViewer, false)
	out, outTok := e.user(domain.RoleViewer, false)
	live, liveTok := e.user(domain.RoleAdmin, false)
	expiring, _ := e.user(domain.RoleViewer, false)
	shortTok, _, err := e.Tokens.WithClock(func() time.Time { return time.Now().Add(-auth.DefaultTokenTTL + 2*time.Second) }).Issue(expiring.UUID)
	require.NoError(t, err)

	g1, g2 := e.openBoth(t, base, tid, gone, goneTok)
	o1, o2 := e.openBoth(t, base, tid, out, outTok)
	l1, l2 := e.openBoth(t, base, tid, live, liveTok)
	x1, x2 := e.openBoth(t, base, tid, expiring, shortTok)

	n, err := s.RecheckNow(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "nothing is revoked yet")

	require.NoError(t, e.DB.DeleteUser(ctx, gone.UUID))
	c, err := e.Tokens.Verify(outTok)
	require.NoError(t, err)
	require.NoError(t, e.DB.RevokeToken(ctx, c.JTI, out.UUID, c.ExpiresAt))
	n, err = s.RecheckNow(ctx)
	require.NoError(t, err)
	require.Equal(t, 4, n)
	for _, c := range []*conn{g1, g2, o1, o2} {
		expectRevoked(t, c)
	}

	// The short token expires (plus the 5 s verification leeway) within
	// about 7 s; the re-check then ends its streams.
	require.Eventually(t, func() bool {
		n, err := s.RecheckNow(ctx)
		return err == nil && n == 2
	}, 30*time.Second, 250*time.Millisecond, "an expired token's streams end")
	expectRevoked(t, x1)
	expectRevoked(t, x2)

	ev := e.emit(nil, tid, 1)
	require.Equal(t, ev[0].ID.String(), l1.mustNext().ID)
	require.Equal(t, ev[0].ID.String(), l2.mustNext().ID)
}
