// Package auth holds mazenet's credentials: bcrypt password hashes, HS256
// access tokens (DOMAIN §11.2), single-use SSE tickets (§11.4) and the login
// rate limiter. It is shared by the api (which issues) and the sse process
// (which verifies and redeems).
package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/decnet/mazenet/internal/domain"
)

// Token claims fixed by DOMAIN §11.2.
const (
	Issuer    = "decnet"
	Audience  = "decnet-dashboard"
	TokenType = "access"
)

// DefaultTokenTTL is the access-token lifetime (DECNET_JWT_EXP_MINUTES).
const DefaultTokenTTL = 240 * time.Minute

// MinSecretLen is the shortest acceptable DECNET_JWT_SECRET outside dev mode.
const MinSecretLen = 32

// Claims are the verified contents of an access token.
type Claims struct {
	UserUUID  string
	JTI       string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

type jwtClaims struct {
	UUID string `json:"uuid"`
	Typ  string `json:"typ"`
	jwt.RegisteredClaims
}

// Tokens issues and verifies HS256 access tokens.
type Tokens struct {
	secret []byte
	ttl    time.Duration
	now    func() time.Time
}

// NewTokens returns a token service; ttl 0 means DefaultTokenTTL.
func NewTokens(secret []byte, ttl time.Duration) *Tokens {
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	return &Tokens{secret: secret, ttl: ttl, now: time.Now}
}

// Issue mints an access token for a user.
func (t *Tokens) Issue(userUUID string) (string, Claims, error) {
	now := t.now()
	c := Claims{UserUUID: userUUID, JTI: randomString(16), IssuedAt: now.Truncate(time.Second), ExpiresAt: now.Add(t.ttl).Truncate(time.Second)}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwtClaims{
		UUID: userUUID,
		Typ:  TokenType,
		RegisteredClaims: jwt.RegisteredClaims{
			ID:        c.JTI,
			Issuer:    Issuer,
			Audience:  jwt.ClaimStrings{Audience},
			IssuedAt:  jwt.NewNumericDate(c.IssuedAt),
			ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
		},
	})
	s, err := tok.SignedString(t.secret)
	if err != nil {
		return "", Claims{}, fmt.Errorf("auth: sign: %w", err)
	}
	return s, c, nil
}

// Verify checks signature, algorithm, iss, aud, typ, exp and the presence of
// iat, jti and uuid. It does not consult the database: the caller checks the
// user row, tokens_valid_from and the denylist (see api's authenticate).
func (t *Tokens) Verify(token string) (Claims, error) {
	var jc jwtClaims
	_, err := jwt.ParseWithClaims(token, &jc, func(*jwt.Token) (any, error) { return t.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(Issuer), jwt.WithAudience(Audience),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithTimeFunc(t.now), jwt.WithLeeway(5*time.Second))
	if err != nil {
		return Claims{}, domain.ErrUnauthorized
	}
	if jc.Typ != TokenType || jc.UUID == "" || jc.ID == "" || jc.IssuedAt == nil {
		return Claims{}, domain.ErrUnauthorized
	}
	return Claims{UserUUID: jc.UUID, JTI: jc.ID, IssuedAt: jc.IssuedAt.Time, ExpiresAt: jc.ExpiresAt.Time}, nil
}

// TokenStillValid applies the bulk-revocation rule of DOMAIN §11.2: a token is
// rejected when its iat (whole seconds) is before tokens_valid_from truncated
// to whole seconds, so a token minted in the same second as the change survives.
func TokenStillValid(c Claims, validFrom *time.Time) bool {
	if validFrom == nil {
		return true
	}
	return c.IssuedAt.Unix() >= validFrom.Unix()
}

// BcryptCost is the cost of stored hashes (DOMAIN §2.7).
const BcryptCost = 12

// MaxPasswordBytes is bcrypt's input limit.
const MaxPasswordBytes = 72

// MinPasswordBytes is the shortest password a user may set (DOMAIN §11.2).
const MinPasswordBytes = 12

// ValidateNewPassword enforces the 12–72 byte rule on a password being set
// (422 otherwise). Bytes, not characters: 72 is bcrypt's input limit, and
// silently ignoring the tail of a longer password would be worse than refusing it.
func ValidateNewPassword(pw string) error {
	if len(pw) < MinPasswordBytes || len(pw) > MaxPasswordBytes {
		return domain.Errorf(domain.EUnprocessable, "Password must be between %d and %d bytes", MinPasswordBytes, MaxPasswordBytes)
	}
	return nil
}

// HashPassword hashes pw with cost (0 means BcryptCost).
func HashPassword(pw string, cost int) (string, error) {
	if cost == 0 {
		cost = BcryptCost
	}
	if len(pw) > MaxPasswordBytes {
		return "", domain.Errorf(domain.EUnprocessable, "Password must be at most %d bytes", MaxPasswordBytes)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		return "", fmt.Errorf("auth: hash: %w", err)
	}
	return string(h), nil
}

// CheckPassword reports whether pw matches hash.
func CheckPassword(hash, pw string) bool {
	if len(pw) > MaxPasswordBytes {
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
}

// dummyHashes caches, per bcrypt cost, the hash compared against when the
// username is unknown, so a login for a missing user costs the same time as a
// wrong password. Each is built on first use.
var dummyHashes sync.Map // int → func() []byte

func dummyHash(cost int) []byte {
	f, _ := dummyHashes.LoadOrStore(cost, sync.OnceValue(func() []byte {
		h, _ := bcrypt.GenerateFromPassword([]byte("not-a-real-password"), cost)
		return h
	}))
	return f.(func() []byte)()
}

// CheckPasswordOrDummy runs a bcrypt comparison even without a user, at the
// production cost BcryptCost.
func CheckPasswordOrDummy(hash *string, pw string) bool {
	return CheckPasswordOrDummyCost(hash, pw, BcryptCost)
}

// CheckPasswordOrDummyCost is CheckPasswordOrDummy with the dummy hash at
// cost (0 means BcryptCost): pass the cost stored hashes are made with, so
// the unknown-user path takes as long as the known-user one.
func CheckPasswordOrDummyCost(hash *string, pw string, cost int) bool {
	if hash == nil {
		if cost == 0 {
			cost = BcryptCost
		}
		_ = bcrypt.CompareHashAndPassword(dummyHash(cost), []byte(pw))
		return false
	}
	return CheckPassword(*hash, pw)
}

// randomString returns n random bytes, URL-safe base64 without padding.
func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(errors.New("auth: crypto/rand failed")) // the OS entropy source is gone: nothing is safe
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
