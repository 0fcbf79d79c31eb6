package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
)

// TestCredentialStates: one statement answers which users exist (with role
// and tokens_valid_from) and which jtis are denylisted; unknown and
// malformed ids are simply absent.
func TestCredentialStates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	a := newUser(t, db, "cs-a", domain.RoleAdmin)
	v := newUser(t, db, "cs-v", domain.RoleViewer)
	_, err := db.SetPassword(ctx, v.UUID, "h2", false)
	require.NoError(t, err)
	require.NoError(t, db.RevokeToken(ctx, "jti-out", a.UUID, time.Now().Add(time.Hour)))

	missing := uuid.NewString()
	states, revoked, err := db.CredentialStates(ctx, []string{a.UUID, v.UUID, missing, "not-a-uuid"},
		[]string{"jti-out", "jti-live"})
	require.NoError(t, err)
	require.Len(t, states, 2)
	require.Equal(t, domain.RoleAdmin, states[a.UUID].Role)
	require.Nil(t, states[a.UUID].TokensValidFrom)
	require.Equal(t, domain.RoleViewer, states[v.UUID].Role)
	require.NotNil(t, states[v.UUID].TokensValidFrom, "a password change moves tokens_valid_from")
	require.Equal(t, map[string]bool{"jti-out": true}, revoked)

	states, revoked, err = db.CredentialStates(ctx, nil, nil)
	require.NoError(t, err)
	require.Empty(t, states)
	require.Empty(t, revoked)
}
