package api

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/web"
)

// Auth errors with the observable texts of DOMAIN §11.
var (
	errBadCredentials = domain.Errorf(domain.EUnauthorized, "Incorrect username or password")
	errTooManyLogins  = domain.Errorf(domain.ERateLimited, "Too many login attempts; try again later")
	errWrongPassword  = domain.Errorf(domain.EInvalid, "Incorrect password")
	errSamePassword   = domain.Errorf(domain.EUnprocessable, "New password must differ from the old one")
)

// pruneRevokedBatch bounds the denylist clean-up piggybacked on each logout.
const pruneRevokedBatch = 100

// authRoutes registers the auth endpoints (DOMAIN §11).
//
// /auth/me is readable during a forced password change, like change-password
// and logout (a narrow widening of §11.1): it shows only the caller's own
// row, and the dashboard needs it to know it must show the change form.
func (s *Server) authRoutes(r chi.Router) {
	r.Method(http.MethodPost, "/auth/login", web.Handler(s.handleLogin))
	r.With(s.authenticated(true)).Method(http.MethodPost, "/auth/logout", web.Handler(s.handleLogout))
	r.With(s.authenticated(true)).Method(http.MethodPost, "/auth/change-password", web.Handler(s.handleChangePassword))
	r.With(s.authenticated(true)).Method(http.MethodGet, "/auth/me", web.Handler(s.handleMe))
	r.With(s.viewer).Method(http.MethodPost, "/auth/sse-ticket", web.Handler(s.handleSSETicket))
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type loginResponse struct {
	AccessToken        string `json:"access_token"`
	TokenType          string `json:"token_type"`
	MustChangePassword bool   `json:"must_change_password"`
}

// handleLogin exchanges a username and password for an access token.
//
// Every well-formed attempt reserves an attempt against the client IP and
// the username before the password is looked at, and a right password gives
// it back (auth.LoginLimiter): only failures count, so once the window holds
// 10 failures the next attempt is refused even when it would have been
// right, while an operator logging in from many tabs never is. An unknown user
// costs one bcrypt comparison like a wrong password, and both answer the
// same 401. A password over 72 bytes is simply wrong here (it could never
// have been set).
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Username == "" || req.Password == "" {
		return domain.Errorf(domain.EUnprocessable, "username and password are required")
	}
	if err := s.allowLoginAttempt(w, r, req.Username); err != nil {
		return err
	}
	u, err := s.DB.GetUserByUsername(r.Context(), req.Username)
	var hash *string
	switch domain.ErrorCode(err) {
	case "":
		hash = &u.PasswordHash
	case domain.ENotFound:
	default: // an outage is no failed guess
		s.releaseLoginAttempt(r, req.Username)
		return err
	}
	if !auth.CheckPasswordOrDummyCost(hash, req.Password, s.BcryptCost) {
		return errBadCredentials
	}
	s.releaseLoginAttempt(r, req.Username)
	token, _, err := s.Tokens.Issue(u.UUID)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return web.JSON(w, http.StatusOK, loginResponse{AccessToken: token, TokenType: "bearer", MustChangePassword: u.MustChangePassword})
}

// allowLoginAttempt reserves one password attempt for username from the
// request's client IP, before the password is compared. When the limit is
// hit it sets Retry-After and returns the 429. A Redis failure fails closed
// (503 through web.Error's outage classifier): the limiter is the only brake
// on online guessing. The reservation stays counted as a failure unless
// releaseLoginAttempt gives it back.
func (s *Server) allowLoginAttempt(w http.ResponseWriter, r *http.Request, username string) error {
	ok, retry, err := s.limiter().Allow(r.Context(), s.clientIP(r), username)
	return s.limitAnswer(w, ok, retry, err)
}

// checkLoginLimit refuses, without counting anything, a request for username
// while its IP or username is locked out: credentials already verified (the
// /monitoring cache) are successes, yet must not answer differently from a
// guess while the key is locked out.
func (s *Server) checkLoginLimit(w http.ResponseWriter, r *http.Request, username string) error {
	ok, retry, err := s.limiter().Check(r.Context(), s.clientIP(r), username)
	return s.limitAnswer(w, ok, retry, err)
}

// limitAnswer turns a limiter verdict into nil, the 429 with Retry-After, or
// the Redis error.
func (s *Server) limitAnswer(w http.ResponseWriter, ok bool, retry time.Duration, err error) error {
	if err != nil {
		return err
	}
	if !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
		return errTooManyLogins
	}
	return nil
}

// releaseLoginAttempt gives back the attempt allowLoginAttempt reserved,
// once the password proved right (or could not be checked because the store
// was down): only failures count. A Redis failure here is logged, not
// returned: the counter then keeps one attempt too many, the safe side.
func (s *Server) releaseLoginAttempt(r *http.Request, username string) {
	if err := s.limiter().Release(r.Context(), s.clientIP(r), username); err != nil {
		s.Log.WarnContext(r.Context(), "release login attempt", "err", err)
	}
}

// limiter is the login limiter of DOMAIN §11.2, shared by every password
// check (login, change-password, /monitoring).
func (s *Server) limiter() *auth.LoginLimiter { return auth.NewLoginLimiter(s.Redis, s.Keys) }

// clientIP is the address login attempts are counted against: the peer of
// the TCP connection, or with TrustProxyHeaders the last X-Forwarded-For
// entry (the address Heroku's router saw). An unparsable header falls back to
// the peer. IPv6 clients are counted per /64, the block one subscriber
// normally controls, so rotating addresses within it does not reset the limit.
func (s *Server) clientIP(r *http.Request) string {
	var addr netip.Addr
	if s.TrustProxyHeaders {
		if vals := r.Header.Values("X-Forwarded-For"); len(vals) > 0 {
			last := vals[len(vals)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			addr, _ = netip.ParseAddr(strings.TrimSpace(last))
		}
	}
	if !addr.IsValid() {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		addr, _ = netip.ParseAddr(host)
	}
	if !addr.IsValid() {
		return r.RemoteAddr
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		return netip.PrefixFrom(addr, 64).Masked().String()
	}
	return addr.String()
}

// handleLogout denylists the presented token's jti until it expires, and
// prunes a few expired denylist rows on the way. Other tokens of the same
// user, and SSE tickets already minted (§11.4), are unaffected.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) error {
	u, c := userFrom(r.Context()), claimsFrom(r.Context())
	if err := s.DB.RevokeToken(r.Context(), c.JTI, u.UUID, c.ExpiresAt); err != nil {
		return err
	}
	s.announceRevocation(r, u.UUID, c.JTI)
	if _, err := s.DB.PruneRevokedTokens(r.Context(), pruneRevokedBatch); err != nil {
		s.Log.WarnContext(r.Context(), "prune revoked tokens", "err", err)
	}
	return web.JSON(w, http.StatusOK, map[string]string{"detail": "Logged out"})
}

type changePasswordRequest struct {
	OldPassword string `json:"old_password"`
	NewPassword string `json:"new_password"`
}

// handleChangePassword sets the caller's own password and clears
// must_change_password. It moves tokens_valid_from to now, so every token
// the user holds from an earlier second dies, the caller's included: the
// client logs in again with the new password.
//
// A wrong old_password is 400 `Incorrect password`, not 401: the bearer
// token is valid, only a form field is wrong, and a 401 would make the
// dashboard (and any client following RFC 9110) drop a good session. Wrong
// old passwords count against the login limiter (IP and username), because
// the old password is a credential being guessed just as at login; the new password
// must be 12–72 bytes (422) and differ from the old one (422).
func (s *Server) handleChangePassword(w http.ResponseWriter, r *http.Request) error {
	var req changePasswordRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := auth.ValidateNewPassword(req.NewPassword); err != nil {
		return err
	}
	u := userFrom(r.Context())
	if err := s.allowLoginAttempt(w, r, u.Username); err != nil {
		return err
	}
	if !auth.CheckPassword(u.PasswordHash, req.OldPassword) {
		return errWrongPassword
	}
	s.releaseLoginAttempt(r, u.Username)
	if req.NewPassword == req.OldPassword {
		return errSamePassword
	}
	hash, err := auth.HashPassword(req.NewPassword, s.BcryptCost)
	if err != nil {
		return err
	}
	if _, err := s.DB.SetPassword(r.Context(), u.UUID, hash, false); err != nil {
		return err
	}
	s.announceRevocation(r, u.UUID, "")
	return web.JSON(w, http.StatusOK, map[string]string{"detail": "Password changed"})
}

// handleMe returns the caller's own user row (never the hash).
func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-store")
	return web.JSON(w, http.StatusOK, userFrom(r.Context()))
}

type sseTicketResponse struct {
	Ticket    string `json:"ticket"`
	ExpiresIn int    `json:"expires_in"`
}

// handleSSETicket mints a single-use SSE ticket bound to the caller's uuid
// and current role (§11.4), and to the caller's token (jti, iat, exp), so
// the stream it opens ends when that token is revoked. The ticket is never
// logged.
func (s *Server) handleSSETicket(w http.ResponseWriter, r *http.Request) error {
	u := userFrom(r.Context())
	ticket, err := s.Tickets.MintFor(r.Context(), claimsFrom(r.Context()), u.Role)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return web.JSON(w, http.StatusOK, sseTicketResponse{Ticket: ticket, ExpiresIn: int(auth.TicketTTL / time.Second)})
}
