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

func TestTicketMintRedeem(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rd := dbtest.NewRedis(t)
	keys := rediskey.New(rd.Prefix)
	tickets := auth.NewTickets(rd.Client, keys)

	tk, err := tickets.Mint(ctx, "8b0f3c1e-6f0e-4f8e-9d55-0c3c1f1e2a7b", domain.RoleViewer)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(tk), 43, "32 random bytes, base64url")
	require.NotContains(t, tk, ".")
	require.Regexp(t, `^[A-Za-z0-9_-]+$`, tk)

	ttl, err := rd.Client.PTTL(ctx, keys.Ticket(tk)).Result()
	require.NoError(t, err)
	require.Greater(t, ttl, time.Duration(0))
	require.LessOrEqual(t, ttl, auth.TicketTTL)

	got, err := tickets.Redeem(ctx, tk)
	require.NoError(t, err)
	require.Equal(t, auth.Ticket{UserUUID: "8b0f3c1e-6f0e-4f8e-9d55-0c3c1f1e2a7b", Role: domain.RoleViewer}, got)

	_, err = tickets.Redeem(ctx, tk)
	require.ErrorIs(t, err, domain.ErrUnauthorized, "single use")
	_, err = tickets.Redeem(ctx, "")
	require.ErrorIs(t, err, domain.ErrUnauthorized)
	_, err = tickets.Redeem(ctx, "never-minted")
	require.ErrorIs(t, err, domain.ErrUnauthorized)
}
