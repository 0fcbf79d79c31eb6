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
type Ticket struct {
	UserUUID string      `json:"uuid"`
	Role     domain.Role `json:"role"`
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
	ticket := randomString(32)
	body, _ := json.Marshal(Ticket{UserUUID: userUUID, Role: role})
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
