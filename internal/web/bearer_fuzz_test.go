package web_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/web"
)

// FuzzBearerToken feeds arbitrary Authorization headers through the bearer
// extraction and the access-token check every authenticated route runs.
// Properties: never a panic; BearerToken returns "" unless the header starts
// with the (case-insensitive) "Bearer " scheme, and otherwise the trimmed
// rest of the header; and Verify accepts nothing but the one token this test
// signed, so no mutation of it (claims, header, alg, signature) is a forgery
// that passes with other claims.
func FuzzBearerToken(f *testing.F) {
	// The genuine token is signed here with a fixed jti rather than by
	// Issue (random jti), so the coordinator and every fuzzing worker hold
	// the same token: the seeds computed in one process are checked in another.
	at := time.Unix(1_800_000_000, 0)
	secret := []byte("fuzz-secret-fuzz-secret-fuzz-secret!")
	tokens := auth.NewTokens(secret, time.Hour).WithClock(func() time.Time { return at })
	const owner, jti = "8b0f3c1e-6f0e-4f8e-9d55-0c3c1f1e2a7b", "fuzz-jti"
	genuine, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"uuid": owner, "typ": auth.TokenType, "jti": jti, "iss": auth.Issuer, "aud": []string{auth.Audience},
		"iat": at.Unix(), "exp": at.Add(time.Hour).Unix(),
	}).SignedString(secret)
	if err != nil {
		f.Fatal(err)
	}
	claims, err := tokens.Verify(genuine)
	if err != nil || claims.UserUUID != owner || claims.JTI != jti {
		f.Fatalf("the genuine token does not verify: %+v %v", claims, err)
	}
	parts := strings.Split(genuine, ".")
	for _, h := range []string{
		"Bearer " + genuine, "bearer " + genuine, "BEARER  " + genuine + " ", "Basic " + genuine, "Bearer",
		"Bearer ", "", "Token " + genuine, genuine,
		"Bearer " + parts[0] + "." + parts[1] + ".",                    // no signature
		"Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + ".", // alg none
		"Bearer eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9." + parts[1] + "." + parts[2],
		"Bearer " + parts[0] + "." + parts[1] + "A." + parts[2],
		"Bearer " + genuine + "." + parts[2],
		"Bearer \x00", "Bearer " + genuine + "\x00", "Bearer \xed\xa0\x80", "Bearer a.b.c", "Bearer ....",
	} {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Authorization"] = []string{header}
		tok := web.BearerToken(r)
		if len(header) > 7 && strings.EqualFold(header[:7], "bearer ") {
			if tok != strings.TrimSpace(header[7:]) {
				t.Fatalf("BearerToken(%q) = %q", header, tok)
			}
		} else if tok != "" {
			t.Fatalf("BearerToken(%q) = %q without the Bearer scheme", header, tok)
		}
		got, err := tokens.Verify(tok)
		if err != nil {
			return
		}
		if got != claims {
			t.Fatalf("Verify accepted %q with claims %+v; the only token signed was %+v", tok, got, claims)
		}
	})
}
