package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/rediskey"
)

// TicketTTL is how long an SSE ticket can be redeemed (DOMAIN §11.4).
const TicketTTL = 60 * time.Second

// Ticket is what a redeemed SSE ticket was bound to at mint time.
//
// JTI, IssuedAt and ExpiresAt are those of the access token that minted it
// (MintFor): a stream opened with the ticket lives on that token's
// credential, so the sse process ends it when the token is logged out, its
// user's tokens_valid_from moves past it, or it expires (sse/revoke.go).
// They are zero in a ticket minted by Mint.
type Ticket struct {
	UserUUID  string      `json:"uuid"`
	Role      domain.Role `json:"role"`
	JTI       string      `json:"jti,omitempty"`
	IssuedAt  int64       `json:"iat,omitempty"` // unix seconds
	ExpiresAt int64       `json:"exp,omitempty"` // unix seconds
}

// Tickets mints and redeems single-use SSE tickets in Redis, shared by every
// api and sse process (D8).
type Tickets struct {
	rdb  redis.UniversalClient
	keys rediskey.Keys
}

// NewTickets returns a ticket store.
func NewTickets(rdb redis.UniversalClient, keys rediskey.Keys) *Tickets {
	return &Tickets{rdb: rdb, keys: keys}
}

// Mint creates a ticket bound to user and role: 32 random bytes, URL-safe,
// no dots, so it can never be mistaken for a JWT.
func (t *Tickets) Mint(ctx context.Context, userUUID string, role domain.Role) (string, error) {
	return t.mint(ctx, Ticket{UserUUID: userUUID, Role: role})
}

// MintFor is Mint for the holder of the access token c: the ticket also
// carries the token's jti, iat and exp, so a stream it opens can be revoked
// with the token.
func (t *Tickets) MintFor(ctx context.Context, c Claims, role domain.Role) (string, error) {
	return t.mint(ctx, Ticket{UserUUID: c.UserUUID, Role: role, JTI: c.JTI,
		IssuedAt: c.IssuedAt.Unix(), ExpiresAt: c.ExpiresAt.Unix()})
}

func (t *Tickets) mint(ctx context.Context, tk Ticket) (string, error) {
	ticket := randomString(32)
	body, _ := json.Marshal(tk)
	if err := t.rdb.Set(ctx, t.keys.Ticket(ticket), body, TicketTTL).Err(); err != nil {
		return "", fmt.Errorf("auth: mint ticket: %w", err)
	}
	return ticket, nil
}

// Redeem consumes a ticket atomically (GETDEL): unknown, expired or used
// tickets are ErrUnauthorized.
func (t *Tickets) Redeem(ctx context.Context, ticket string) (Ticket, error) {
	if ticket == "" || len(ticket) > 128 {
		return Ticket{}, domain.ErrUnauthorized
	}
	body, err := t.rdb.GetDel(ctx, t.keys.Ticket(ticket)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Ticket{}, domain.ErrUnauthorized
	} else if err != nil {
		return Ticket{}, fmt.Errorf("auth: redeem ticket: %w", err)
	}
	var tk Ticket
	if err := json.Unmarshal(body, &tk); err != nil || tk.UserUUID == "" {
		return Ticket{}, domain.ErrUnauthorized
	}
	return tk, nil
}
