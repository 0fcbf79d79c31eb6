package sse

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/auth"
)

// Revocation reaches open streams (issue 8, item 3).
//
// A stream lives on the credential that opened it: the access token of the
// Authorization header, or, for a ticket, the access token that minted the
// ticket (auth.Ticket carries its jti, iat and exp). The stream ends when
// that credential would no longer authenticate (auth.Authenticate, DOMAIN
// §11.2): the user is deleted, its tokens_valid_from moves past the token's
// iat (password change or reset, role change), the jti is logged out, or the
// token expires.
//
// Two paths find out, so the bound holds even when one fails:
//
//   - Notice (milliseconds): after the commit, the api publishes an
//     auth.Revocation on rediskey.Revocations; every sse process subscribes
//     and re-checks the named user's open streams at once.
//   - Periodic re-check (the bound): pub/sub is lossy (a process cut off from
//     Redis misses notices), so every RecheckInterval each process re-checks
//     all its open streams against Postgres in ONE batched statement
//     (postgres.DB.CredentialStates), never one query per stream. A process
//     also re-checks everything each time its subscription is
//     (re)established, since notices sent while it was away are lost.
//
// So a revoked stream ends within RecheckInterval (default 15 s) plus one
// query, and normally within one Redis round trip of the api's commit. While
// Postgres cannot be reached, open streams are left running (the re-check
// is retried next interval); new handshakes fail closed as always.
//
// How it ends: the stream receives `event: revoked` with
// `data: {"message": "Session revoked"}` and is closed, with no `retry:`;
// the dashboard then mints a new ticket, which answers 401 for a dead token,
// and shows the login screen instead of reconnecting.

// DefaultRecheckInterval is how often every open stream's credential is
// re-checked against Postgres when no notice arrives: the upper bound on how
// long a revoked stream can outlive its revocation if the notice is lost.
// It matches the slot-lease refresh (DefaultSlotLease/3).
const DefaultRecheckInterval = DefaultSlotLease / 3

// revokedFrame tells the client its credential was revoked; the stream ends
// right after it.
var revokedFrame = []byte("event: revoked\ndata: {\"message\": \"Session revoked\"}\n\n")

// errRevoked ends a stream whose credential no longer authenticates.
var errRevoked = errors.New("sse: credential revoked")

// credential is what a stream was opened with: enough to re-run the checks
// of auth.Authenticate without keeping the token itself.
type credential struct {
	user string    // canonical (lower-case) user uuid
	jti  string    // "" when unknown (a ticket minted without a token)
	iat  time.Time // token iat, or the redemption time of such a ticket
	exp  time.Time // zero when unknown
}

// credentialFromClaims is the credential of a verified access token.
func credentialFromClaims(c auth.Claims) credential {
	return credential{user: strings.ToLower(c.UserUUID), jti: c.JTI, iat: c.IssuedAt, exp: c.ExpiresAt}
}

// credentialFromTicket is the credential a redeemed ticket stands for. A
// ticket without the minting token's claims (auth.Tickets.Mint) counts as
// issued when it was redeemed: any revocation after that still ends it.
func credentialFromTicket(tk auth.Ticket, now time.Time) credential {
	c := credential{user: strings.ToLower(tk.UserUUID), jti: tk.JTI, iat: now}
	if tk.IssuedAt != 0 {
		c.iat = time.Unix(tk.IssuedAt, 0)
	}
	if tk.ExpiresAt != 0 {
		c.exp = time.Unix(tk.ExpiresAt, 0)
	}
	return c
}

// expiryLeeway matches auth.Tokens.Verify's clock leeway.
const expiryLeeway = 5 * time.Second

// registry is the process's open streams by user, for re-checks.
type registry struct {
	mu     sync.Mutex
	byUser map[string]map[*session]struct{}
}

func (g *registry) add(ss *session) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.byUser == nil {
		g.byUser = map[string]map[*session]struct{}{}
	}
	m := g.byUser[ss.cred.user]
	if m == nil {
		m = map[*session]struct{}{}
		g.byUser[ss.cred.user] = m
	}
	m[ss] = struct{}{}
}

func (g *registry) remove(ss *session) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if m := g.byUser[ss.cred.user]; m != nil {
		delete(m, ss)
		if len(m) == 0 {
			delete(g.byUser, ss.cred.user)
		}
	}
}

// sessions returns the open streams of user, or of everyone when user is "".
func (g *registry) sessions(user string) []*session {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []*session
	for u, m := range g.byUser {
		if user != "" && u != user {
			continue
		}
		for ss := range m {
			out = append(out, ss)
		}
	}
	return out
}

// revocation is a session's revoked flag; its zero value is "not revoked".
type revocation struct{ flag atomic.Bool }

// revoke marks the session revoked and wakes its live loop, which sends
// revokedFrame and ends the stream. It reports whether this call did it.
func (ss *session) revoke() bool {
	if !ss.revoked.flag.CompareAndSwap(false, true) {
		return false
	}
	ss.sub.wake()
	return true
}

// recheck re-runs the checks of auth.Authenticate for sessions in one
// batched query and revokes those that no longer pass. It returns how many
// it revoked (or found revoked but not yet ended).
func (s *Server) recheck(ctx context.Context, sessions []*session) (int, error) {
	if len(sessions) == 0 {
		return 0, nil
	}
	users := map[string]struct{}{}
	var jtis []string
	for _, ss := range sessions {
		users[ss.cred.user] = struct{}{}
		if ss.cred.jti != "" {
			jtis = append(jtis, ss.cred.jti)
		}
	}
	ids := make([]string, 0, len(users))
	for u := range users {
		ids = append(ids, u)
	}
	states, revoked, err := s.DB.CredentialStates(ctx, ids, jtis)
	if err != nil {
		return 0, err
	}
	now := time.Now()
	n := 0
	for _, ss := range sessions {
		c := ss.cred
		st, ok := states[c.user]
		dead := !ok || !st.Role.Valid() || revoked[c.jti] ||
			!auth.TokenStillValid(auth.Claims{IssuedAt: c.iat}, st.TokensValidFrom) ||
			(!c.exp.IsZero() && now.After(c.exp.Add(expiryLeeway)))
		if dead {
			if ss.revoke() {
				s.metrics.revoked.Inc()
			}
			n++
		}
	}
	return n, nil
}

// recheckUser re-checks the open streams of one user (a notice arrived).
func (s *Server) recheckUser(ctx context.Context, user string) {
	if _, err := s.recheck(ctx, s.streams.sessions(strings.ToLower(user))); err != nil {
		s.Log.WarnContext(ctx, "sse: re-check after revocation notice (the periodic re-check will retry)", "err", err)
	}
}

// recheckAll re-checks every open stream of this process.
func (s *Server) recheckAll(ctx context.Context) {
	if _, err := s.recheck(ctx, s.streams.sessions("")); err != nil {
		s.Log.WarnContext(ctx, "sse: periodic credential re-check", "err", err)
	}
}

// watchRevocations runs both paths until ctx ends: the periodic re-check of
// every open stream, and the Redis subscription to revocation notices.
func (s *Server) watchRevocations(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(s.RecheckInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				rctx, cancel := context.WithTimeout(ctx, s.RecheckInterval)
				s.recheckAll(rctx)
				cancel()
			}
		}
	}()
	s.listenRevocations(ctx)
	wg.Wait()
}

// listenRevocations follows the notices. go-redis re-subscribes by itself
// after a lost connection and reports each (re)subscription; notices sent
// meanwhile are lost, so each one is followed by a full re-check.
func (s *Server) listenRevocations(ctx context.Context) {
	ps := s.Redis.Subscribe(ctx, s.Keys.Revocations())
	// Receive does not watch ctx; closing the subscription unblocks it.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer func() {
		if stop() {
			_ = ps.Close()
		}
	}()
	var bo backoff
	for {
		msg, err := ps.ReceiveTimeout(ctx, s.RecheckInterval)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Quiet channel: a PING proves the connection is alive, or
				// breaks it so the next receive reconnects and re-subscribes.
				_ = ps.Ping(ctx)
				continue
			}
			if !bo.wait(ctx) {
				return
			}
			continue
		}
		bo.reset()
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				s.subscribed.Store(true)
				s.recheckAll(ctx)
			}
		case *redis.Message:
			if rev, ok := auth.ParseRevocation(m.Payload); ok {
				s.recheckUser(ctx, rev.UserUUID)
			}
		}
	}
}

// RevocationsSubscribed reports whether the process has subscribed to
// revocation notices at least once (for tests: a notice published before
// that is not seen, only the periodic re-check would catch it).
func (s *Server) RevocationsSubscribed() bool {
	s.init()
	return s.subscribed.Load()
}

// RecheckNow re-checks every open stream of this process at once, as the
// periodic re-check does, and returns how many it ended.
func (s *Server) RecheckNow(ctx context.Context) (int, error) {
	s.init()
	return s.recheck(ctx, s.streams.sessions(""))
}
