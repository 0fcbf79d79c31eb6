package auth_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/rediskey"
)

// TestMintForCarriesTheToken: a ticket minted for a token redeems to that
// token's jti, iat and exp, so the stream it opens can be revoked with it.
func TestMintForCarriesTheToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rd := dbtest.NewRedis(t)
	tickets := auth.NewTickets(rd.Client, rediskey.New(rd.Prefix))
	c := auth.Claims{UserUUID: "8b0f3c1e-6f0e-4f8e-9d55-0c3c1f1e2a7b", JTI: "jti-1",
		IssuedAt: time.Unix(1_700_000_000, 0), ExpiresAt: time.Unix(1_700_014_400, 0)}
	tk, err := tickets.MintFor(ctx, c, domain.RoleAdmin)
	require.NoError(t, err)
	got, err := tickets.Redeem(ctx, tk)
	require.NoError(t, err)
	require.Equal(t, auth.Ticket{UserUUID: c.UserUUID, Role: domain.RoleAdmin, JTI: "jti-1",
		IssuedAt: 1_700_000_000, ExpiresAt: 1_700_014_400}, got)
}

// TestRevocationNotice: a published notice reaches a subscriber and parses
// back; malformed notices are refused.
func TestRevocationNotice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rd := dbtest.NewRedis(t)
	keys := rediskey.New(rd.Prefix)
	ps := rd.Client.Subscribe(ctx, keys.Revocations())
	defer ps.Close()
	_, err := ps.Receive(ctx) // the subscription is in place
	require.NoError(t, err)

	want := auth.Revocation{UserUUID: "8b0f3c1e-6f0e-4f8e-9d55-0c3c1f1e2a7b", JTI: "jti-1"}
	require.NoError(t, auth.PublishRevocation(ctx, rd.Client, keys, want))
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	msg, err := ps.ReceiveMessage(rctx)
	require.NoError(t, err)
	got, ok := auth.ParseRevocation(msg.Payload)
	require.True(t, ok)
	require.Equal(t, want, got)

	for _, bad := range []string{"", "{", `{"jti":"x"}`, `[]`, `{"uuid":""}`} {
		_, ok := auth.ParseRevocation(bad)
		require.False(t, ok, bad)
	}
}
