package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/decnet/mazenet/internal/domain"
)

var testSecret = []byte("unit-test-secret-unit-test-secret!")

const testUser = "8b0f3c1e-6f0e-4f8e-9d55-0c3c1f1e2a7b"

func TestTokenIssueVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	tokens := NewTokens(testSecret, time.Hour)
	tok, issued, err := tokens.Issue(testUser)
	require.NoError(t, err)
	got, err := tokens.Verify(tok)
	require.NoError(t, err)
	require.Equal(t, testUser, got.UserUUID)
	require.Equal(t, issued.JTI, got.JTI)
	require.NotEmpty(t, got.JTI)
	require.True(t, got.IssuedAt.Equal(issued.IssuedAt), "iat %v, want %v", got.IssuedAt, issued.IssuedAt)
	require.True(t, got.ExpiresAt.Equal(issued.ExpiresAt), "exp %v, want %v", got.ExpiresAt, issued.ExpiresAt)
	require.InDelta(t, time.Hour.Seconds(), got.ExpiresAt.Sub(got.IssuedAt).Seconds(), 1)

	tok2, _, err := tokens.Issue(testUser)
	require.NoError(t, err)
	got2, err := tokens.Verify(tok2)
	require.NoError(t, err)
	require.NotEqual(t, got.JTI, got2.JTI, "every token needs its own jti for logout")
}

func TestTokenDefaultTTL(t *testing.T) {
	t.Parallel()
	_, claims, err := NewTokens(testSecret, 0).Issue(testUser)
	require.NoError(t, err)
	require.Equal(t, DefaultTokenTTL, claims.ExpiresAt.Sub(claims.IssuedAt))
	require.Equal(t, 240*time.Minute, DefaultTokenTTL)
}

func TestTokenVerifyExpiredByClock(t *testing.T) {
	t.Parallel()
	past := &Tokens{secret: testSecret, ttl: time.Minute, now: func() time.Time { return time.Now().Add(-time.Hour) }}
	tok, _, err := past.Issue(testUser)
	require.NoError(t, err)
	_, err = NewTokens(testSecret, 0).Verify(tok)
	require.ErrorIs(t, err, domain.ErrUnauthorized)
}

// signed builds a token from valid claims with set applied and drop removed.
func signed(t *testing.T, method jwt.SigningMethod, key any, set map[string]any, drop string) string {
	t.Helper()
	now := time.Now()
	claims := jwt.MapClaims{
		"uuid": testUser, "jti": "jti-1", "typ": TokenType,
		"iss": Issuer, "aud": Audience,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	for k, v := range set {
		claims[k] = v
	}
	delete(claims, drop)
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	require.NoError(t, err)
	return s
}

func TestTokenVerifyRejects(t *testing.T) {
	t.Parallel()
	tokens := NewTokens(testSecret, 0)
	hour := time.Hour
	cases := []struct {
		name   string
		method jwt.SigningMethod
		key    any
		set    map[string]any
		drop   string
	}{
		{name: "expired", method: jwt.SigningMethodHS256, key: testSecret,
			set: map[string]any{"iat": time.Now().Add(-2 * hour).Unix(), "exp": time.Now().Add(-hour).Unix()}},
		{name: "wrong audience", method: jwt.SigningMethodHS256, key: testSecret, set: map[string]any{"aud": "someone-else"}},
		{name: "wrong issuer", method: jwt.SigningMethodHS256, key: testSecret, set: map[string]any{"iss": "evil"}},
		{name: "wrong typ", method: jwt.SigningMethodHS256, key: testSecret, set: map[string]any{"typ": "refresh"}},
		{name: "iat in the future", method: jwt.SigningMethodHS256, key: testSecret, set: map[string]any{"iat": time.Now().Add(hour).Unix()}},
		{name: "no uuid", method: jwt.SigningMethodHS256, key: testSecret, drop: "uuid"},
		{name: "no jti", method: jwt.SigningMethodHS256, key: testSecret, drop: "jti"},
		{name: "no iat", method: jwt.SigningMethodHS256, key: testSecret, drop: "iat"},
		{name: "no exp", method: jwt.SigningMethodHS256, key: testSecret, drop: "exp"},
		{name: "no aud", method: jwt.SigningMethodHS256, key: testSecret, drop: "aud"},
		{name: "no iss", method: jwt.SigningMethodHS256, key: testSecret, drop: "iss"},
		{name: "no typ", method: jwt.SigningMethodHS256, key: testSecret, drop: "typ"},
		{name: "other secret", method: jwt.SigningMethodHS256, key: []byte("another-secret-another-secret-another")},
		{name: "alg HS512", method: jwt.SigningMethodHS512, key: testSecret},
		{name: "alg none", method: jwt.SigningMethodNone, key: jwt.UnsafeAllowNoneSignatureType},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := tokens.Verify(signed(t, tc.method, tc.key, tc.set, tc.drop))
			require.ErrorIs(t, err, domain.ErrUnauthorized)
		})
	}
	t.Run("control: the same builder with nothing changed verifies", func(t *testing.T) {
		t.Parallel()
		c, err := tokens.Verify(signed(t, jwt.SigningMethodHS256, testSecret, nil, ""))
		require.NoError(t, err)
		require.Equal(t, testUser, c.UserUUID)
	})
	t.Run("not a JWT", func(t *testing.T) {
		t.Parallel()
		for _, s := range []string{"", "garbage", "a.b.c", randomString(32)} {
			_, err := tokens.Verify(s)
			require.ErrorIs(t, err, domain.ErrUnauthorized, "token %q", s)
		}
	})
}

func TestTokenStillValid(t *testing.T) {
	t.Parallel()
	change := time.Date(2026, 3, 1, 12, 0, 0, 700_000_000, time.UTC) // 12:00:00.7
	cases := []struct {
		name      string
		iat       time.Time
		validFrom *time.Time
		want      bool
	}{
		{name: "never revoked", iat: change.Add(-time.Hour), validFrom: nil, want: true},
		{name: "same second as the change", iat: change.Truncate(time.Second), validFrom: &change, want: true},
		{name: "one second before", iat: change.Truncate(time.Second).Add(-time.Second), validFrom: &change, want: false},
		{name: "long before", iat: change.Add(-time.Hour), validFrom: &change, want: false},
		{name: "after", iat: change.Add(time.Second).Truncate(time.Second), validFrom: &change, want: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := TokenStillValid(Claims{IssuedAt: tc.iat}, tc.validFrom)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestTokenMintedRightAfterChangeSurvives(t *testing.T) {
	t.Parallel()
	// A re-login in the same second as a password change must work: issue a
	// token with a clock pinned just after the change and verify the rule.
	change := time.Date(2026, 3, 1, 12, 0, 0, 900_000_000, time.UTC)
	tokens := &Tokens{secret: testSecret, ttl: time.Hour, now: func() time.Time { return change.Add(50 * time.Millisecond) }}
	_, c, err := tokens.Issue(testUser)
	require.NoError(t, err)
	require.True(t, c.IssuedAt.Before(change), "iat is truncated to the second, so it precedes the change instant")
	require.True(t, TokenStillValid(c, &change))
}

func TestValidateNewPassword(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		pw   string
		ok   bool
	}{
		{name: "empty", pw: "", ok: false},
		{name: "11 bytes", pw: strings.Repeat("a", 11), ok: false},
		{name: "12 bytes", pw: strings.Repeat("a", 12), ok: true},
		{name: "72 bytes", pw: strings.Repeat("a", 72), ok: true},
		{name: "73 bytes", pw: strings.Repeat("a", 73), ok: false},
		{name: "6 two-byte characters", pw: strings.Repeat("é", 6), ok: true},
		{name: "37 two-byte characters", pw: strings.Repeat("é", 37), ok: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateNewPassword(tc.pw)
			if tc.ok {
				require.NoError(t, err)
				return
			}
			require.Equal(t, domain.EUnprocessable, domain.ErrorCode(err))
		})
	}
}

func TestPasswordHashing(t *testing.T) {
	t.Parallel()
	hash, err := HashPassword("correct horse battery", bcrypt.MinCost)
	require.NoError(t, err)
	require.True(t, CheckPassword(hash, "correct horse battery"))
	require.False(t, CheckPassword(hash, "correct horse batterx"))
	require.True(t, CheckPasswordOrDummy(&hash, "correct horse battery"))

	_, err = HashPassword(strings.Repeat("x", MaxPasswordBytes+1), bcrypt.MinCost)
	require.Equal(t, domain.EUnprocessable, domain.ErrorCode(err))
	// A >72-byte candidate whose first 72 bytes match must not log in.
	long := strings.Repeat("y", MaxPasswordBytes)
	h, err := HashPassword(long, bcrypt.MinCost)
	require.NoError(t, err)
	require.False(t, CheckPassword(h, long+"z"))

	require.Equal(t, 12, BcryptCost, "DOMAIN §2.7")
	h, err = HashPassword("cost is honoured", bcrypt.MinCost+1)
	require.NoError(t, err)
	cost, err := bcrypt.Cost([]byte(h))
	require.NoError(t, err)
	require.Equal(t, bcrypt.MinCost+1, cost)
}

func TestCheckPasswordOrDummyCost(t *testing.T) {
	t.Parallel()
	require.False(t, CheckPasswordOrDummyCost(nil, "anything at all", bcrypt.MinCost))
	cost, err := bcrypt.Cost(dummyHash(bcrypt.MinCost))
	require.NoError(t, err)
	require.Equal(t, bcrypt.MinCost, cost, "the dummy comparison costs what real ones do")
	hash, err := HashPassword("correct horse battery", bcrypt.MinCost)
	require.NoError(t, err)
	require.True(t, CheckPasswordOrDummyCost(&hash, "correct horse battery", bcrypt.MinCost))
}
