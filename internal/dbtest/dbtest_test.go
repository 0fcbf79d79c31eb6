package dbtest

import (
	"context"
	"testing"
)

func TestSchemaIsolation(t *testing.T) {
	t.Parallel()
	a, b := New(t), New(t)
	ctx := context.Background()
	if _, err := a.ExecContext(ctx, `INSERT INTO users (uuid, username, password_hash) VALUES (gen_random_uuid(), 'x', 'h')`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.GetContext(ctx, &n, `SELECT count(*) FROM users`); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("schema b sees %d users from schema a", n)
	}
	if err := a.GetContext(ctx, &n, `SELECT count(*) FROM users`); err != nil || n != 1 {
		t.Fatalf("schema a: n=%d err=%v", n, err)
	}
}

func TestRedisPrefix(t *testing.T) {
	t.Parallel()
	r1, r2 := NewRedis(t), NewRedis(t)
	if r1.Prefix == r2.Prefix || r1.Queue == r2.Queue {
		t.Fatalf("slices share a prefix or queue: %q %q", r1.Prefix, r2.Prefix)
	}
	ctx := context.Background()
	if err := r1.Client.Set(ctx, r1.Prefix+"k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n := r2.Client.Exists(ctx, r2.Prefix+"k").Val(); n != 0 {
		t.Fatalf("r2 sees r1's key")
	}
}
