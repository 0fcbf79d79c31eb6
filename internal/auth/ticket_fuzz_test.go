package auth_test

import (
	"context"
	"strings"
	"testing"

	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/rediskey"
)

// FuzzRedeemTicket presents arbitrary SSE tickets to Redeem (one GETDEL in
// the test's own Redis prefix per input). Properties: never a panic, never
// an error other than 401 for a made-up ticket, and nothing but the one
// ticket minted for this test is ever redeemed, including look-alikes:
// glob patterns, key separators, prefixes and extensions of it.
func FuzzRedeemTicket(f *testing.F) {
	ctx := context.Background()
	rd := dbtest.NewRedis(f)
	tickets := auth.NewTickets(rd.Client, rediskey.New(rd.Prefix))
	const owner = "8b0f3c1e-6f0e-4f8e-9d55-0c3c1f1e2a7b"
	genuine, err := tickets.Mint(ctx, owner, domain.RoleViewer)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		"", "*", "?", "[a-z]*", genuine[:10] + "*", genuine[:len(genuine)-1], genuine + "x", " " + genuine,
		genuine + "\x00", "\x00", ":" + genuine, "ticket:" + genuine, strings.ToUpper(genuine), "\xed\xa0\x80",
		strings.Repeat("A", 128), strings.Repeat("A", 129), "a.b.c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tk, err := tickets.Redeem(ctx, s)
		if err != nil {
			if domain.ErrorCode(err) != domain.EUnauthorized {
				t.Fatalf("Redeem(%q): %v, want 401", s, err)
			}
			return
		}
		if s != genuine || tk.UserUUID != owner {
			t.Fatalf("Redeem(%q) accepted a ticket that was never minted: %+v", s, tk)
		}
		t.Fatalf("the fuzzer guessed the minted ticket %q", s)
	})
}
