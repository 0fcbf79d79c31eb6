package auth

import (
	"context"

	"github.com/decnet/mazenet/internal/domain"
)

// UserStore is what token authentication needs from the database.
type UserStore interface {
	// UserForToken loads the user a token names and whether its jti is on
	// the logout denylist.
	UserForToken(ctx context.Context, userUUID, jti string) (*domain.User, bool, error)
}

// Authenticate resolves an access token to its user, the same way in every
// process: signature and claims, then the user row, the logout denylist and
// tokens_valid_from (DOMAIN §11.2). must_change_password is the caller's.
func Authenticate(ctx context.Context, tokens *Tokens, users UserStore, token string) (*domain.User, Claims, error) {
	if token == "" {
		return nil, Claims{}, domain.Errorf(domain.EUnauthorized, "Not authenticated")
	}
	c, err := tokens.Verify(token)
	if err != nil {
		return nil, c, err
	}
	u, revoked, err := users.UserForToken(ctx, c.UserUUID, c.JTI)
	if err != nil {
		return nil, c, err
	}
	if revoked || !TokenStillValid(c, u.TokensValidFrom) || !u.Role.Valid() {
		return nil, c, domain.ErrUnauthorized
	}
	return u, c, nil
}
