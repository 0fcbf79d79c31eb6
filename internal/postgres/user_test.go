package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
)

// newUser inserts a user with a placeholder hash.
func newUser(t *testing.T, db *postgres.DB, name string, role domain.Role) *domain.User {
	t.Helper()
	u := &domain.User{Username: name, PasswordHash: "hash-" + name, Role: role}
	require.NoError(t, db.CreateUser(context.Background(), u))
	return u
}

func TestUserEnsureAdminIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)

	created, err := db.EnsureAdmin(ctx, "admin", "first-hash", true)
	require.NoError(t, err)
	require.True(t, created)

	created, err = db.EnsureAdmin(ctx, "admin", "second-hash", false)
	require.NoError(t, err)
	require.False(t, created)

	u, err := db.GetUserByUsername(ctx, "admin")
	require.NoError(t, err)
	require.Equal(t, "first-hash", u.PasswordHash, "a re-run must not reset a changed password")
	require.Equal(t, domain.RoleAdmin, u.Role)
	require.True(t, u.MustChangePassword)

	users, err := db.ListUsers(ctx)
	require.NoError(t, err)
	require.Len(t, users, 1)
}

func TestUserEnsureAdminConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	const n = 8
	var wg sync.WaitGroup
	results := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = db.EnsureAdmin(ctx, "root", "h", true)
		}()
	}
	wg.Wait()
	createdCount := 0
	for i := range n {
		require.NoError(t, errs[i])
		if results[i] {
			createdCount++
		}
	}
	require.Equal(t, 1, createdCount, "exactly one release step creates the admin")
}

func TestUserLookupAndList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	newUser(t, db, "zed", domain.RoleViewer)
	a := newUser(t, db, "amy", domain.RoleAdmin)

	got, err := db.GetUserByUsername(ctx, "amy")
	require.NoError(t, err)
	require.Equal(t, a.UUID, got.UUID)

	_, err = db.GetUserByUsername(ctx, "AMY")
	require.Equal(t, domain.ENotFound, domain.ErrorCode(err), "usernames are exact")

	users, err := db.ListUsers(ctx)
	require.NoError(t, err)
	require.Len(t, users, 2)
	require.Equal(t, "amy", users[0].Username)
	require.Equal(t, "zed", users[1].Username)

	err = db.CreateUser(ctx, &domain.User{Username: "amy", PasswordHash: "x", Role: domain.RoleViewer})
	require.Equal(t, domain.EConflict, domain.ErrorCode(err))
}

func TestUserDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	u := newUser(t, db, "gone", domain.RoleViewer)
	require.NoError(t, db.RevokeToken(ctx, "jti-gone", u.UUID, time.Now().Add(time.Hour)))

	require.NoError(t, db.DeleteUser(ctx, u.UUID))
	_, err := db.GetUserByUsername(ctx, "gone")
	require.Equal(t, domain.ENotFound, domain.ErrorCode(err))

	err = db.DeleteUser(ctx, u.UUID)
	require.Equal(t, domain.ENotFound, domain.ErrorCode(err))
	err = db.DeleteUser(ctx, "not-a-uuid")
	require.Equal(t, domain.ENotFound, domain.ErrorCode(err))

	var n int
	require.NoError(t, db.GetContext(ctx, &n, `SELECT count(*) FROM revoked_tokens`))
	require.Zero(t, n, "denylist rows go with the user")
}

func TestUserSetRoleBumpsOnlyOnChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	change := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	db.Now = func() time.Time { return change }
	u := newUser(t, db, "vic", domain.RoleViewer)

	got, err := db.SetRole(ctx, u.UUID, domain.RoleViewer)
	require.NoError(t, err)
	require.Nil(t, got.TokensValidFrom, "same role: nobody is logged out")

	got, err = db.SetRole(ctx, u.UUID, domain.RoleAdmin)
	require.NoError(t, err)
	require.Equal(t, domain.RoleAdmin, got.Role)
	require.NotNil(t, got.TokensValidFrom)
	require.True(t, got.TokensValidFrom.Equal(change), "got %v", got.TokensValidFrom)

	_, err = db.SetRole(ctx, "8b0f3c1e-6f0e-4f8e-9d55-0c3c1f1e2a7b", domain.RoleAdmin)
	require.Equal(t, domain.ENotFound, domain.ErrorCode(err))
}

func TestUserSetPassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	change := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	db.Now = func() time.Time { return change }
	u := newUser(t, db, "pat", domain.RoleViewer)

	got, err := db.SetPassword(ctx, u.UUID, "new-hash", true)
	require.NoError(t, err)
	require.Equal(t, "new-hash", got.PasswordHash)
	require.True(t, got.MustChangePassword)
	require.NotNil(t, got.TokensValidFrom)
	require.True(t, got.TokensValidFrom.Equal(change))

	got, err = db.SetPassword(ctx, u.UUID, "newer-hash", false)
	require.NoError(t, err)
	require.False(t, got.MustChangePassword)

	stored, err := db.GetUserByUsername(ctx, "pat")
	require.NoError(t, err)
	require.Equal(t, "newer-hash", stored.PasswordHash)

	_, err = db.SetPassword(ctx, "8b0f3c1e-6f0e-4f8e-9d55-0c3c1f1e2a7b", "x", false)
	require.Equal(t, domain.ENotFound, domain.ErrorCode(err))
}

func TestUserRevokeAndPruneTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	u := newUser(t, db, "rita", domain.RoleViewer)
	now := time.Now()

	require.NoError(t, db.RevokeToken(ctx, "live", u.UUID, now.Add(time.Hour)))
	require.NoError(t, db.RevokeToken(ctx, "live", u.UUID, now.Add(time.Hour)), "revoking twice is fine")
	require.NoError(t, db.RevokeToken(ctx, "dead", u.UUID, now.Add(-time.Hour)))
	require.NoError(t, db.RevokeToken(ctx, "in-leeway", u.UUID, now.Add(-time.Second)))

	_, revoked, err := db.UserForToken(ctx, u.UUID, "live")
	require.NoError(t, err)
	require.True(t, revoked)
	_, revoked, err = db.UserForToken(ctx, u.UUID, "other")
	require.NoError(t, err)
	require.False(t, revoked)

	err = db.RevokeToken(ctx, "orphan", "8b0f3c1e-6f0e-4f8e-9d55-0c3c1f1e2a7b", now.Add(time.Hour))
	require.Equal(t, domain.ENotFound, domain.ErrorCode(err))

	n, err := db.PruneRevokedTokens(ctx, 100)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	var left []string
	require.NoError(t, db.SelectContext(ctx, &left, `SELECT jti FROM revoked_tokens ORDER BY jti`))
	require.Equal(t, []string{"in-leeway", "live"}, left)
}

func TestUserPruneIsBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	u := newUser(t, db, "bulk", domain.RoleViewer)
	for i := range 5 {
		require.NoError(t, db.RevokeToken(ctx, "old-"+strings.Repeat("x", i+1), u.UUID, time.Now().Add(-time.Hour)))
	}
	n, err := db.PruneRevokedTokens(ctx, 3)
	require.NoError(t, err)
	require.EqualValues(t, 3, n)
	n, err = db.PruneRevokedTokens(ctx, 3)
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
}

func TestUserLookupRejectsUnstorableNames(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	for _, name := range []string{"ad\x00min", "\xff\xfe", "admin\x00"} {
		_, err := db.GetUserByUsername(context.Background(), name)
		require.Equal(t, domain.ENotFound, domain.ErrorCode(err), "%q: %v", name, err)
	}
}

func TestUserKeepsLastAdmin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	a := newUser(t, db, "ann", domain.RoleAdmin)
	v := newUser(t, db, "val", domain.RoleViewer)

	_, err := db.SetRole(ctx, a.UUID, domain.RoleViewer)
	require.ErrorIs(t, err, postgres.ErrLastAdmin)
	require.Equal(t, domain.EConflict, domain.ErrorCode(err))
	require.ErrorIs(t, db.DeleteUser(ctx, a.UUID), postgres.ErrLastAdmin)
	got, err := db.SetRole(ctx, a.UUID, domain.RoleAdmin)
	require.NoError(t, err, "re-sending admin to the last admin is fine")
	require.Equal(t, domain.RoleAdmin, got.Role)

	// Viewers come and go freely, and with a second admin the first may go.
	_, err = db.SetRole(ctx, v.UUID, domain.RoleViewer)
	require.NoError(t, err)
	_, err = db.SetRole(ctx, v.UUID, domain.RoleAdmin)
	require.NoError(t, err)
	_, err = db.SetRole(ctx, a.UUID, domain.RoleViewer)
	require.NoError(t, err)
	require.ErrorIs(t, db.DeleteUser(ctx, v.UUID), postgres.ErrLastAdmin)
	require.NoError(t, db.DeleteUser(ctx, a.UUID))
}

// Issue 8, item 6: two admins removing each other at the same moment must
// not leave zero admins; exactly one of them gets the 409.
func TestUserLastAdminUnderConcurrency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	const rounds = 40
	removals := []struct {
		name string
		fn   func(id string) error
	}{
		{"demote", func(id string) error { _, err := db.SetRole(ctx, id, domain.RoleViewer); return err }},
		{"delete", func(id string) error { return db.DeleteUser(ctx, id) }},
	}
	for round := range rounds {
		_, err := db.ExecContext(ctx, `DELETE FROM users`)
		require.NoError(t, err)
		a := newUser(t, db, fmt.Sprintf("a%d", round), domain.RoleAdmin)
		b := newUser(t, db, fmt.Sprintf("b%d", round), domain.RoleAdmin)
		// Each goroutine removes the other admin: demote/demote,
		// demote/delete, delete/demote, delete/delete in turn.
		first, second := removals[round%2], removals[(round/2)%2]

		start := make(chan struct{})
		errs := make([]error, 2)
		var wg sync.WaitGroup
		wg.Go(func() { <-start; errs[0] = first.fn(b.UUID) })
		wg.Go(func() { <-start; errs[1] = second.fn(a.UUID) })
		close(start)
		wg.Wait()

		var admins int
		require.NoError(t, db.GetContext(ctx, &admins, `SELECT count(*) FROM users WHERE role = 'admin'`))
		require.Equal(t, 1, admins, "round %d (%s/%s): %v", round, first.name, second.name, errs)
		conflicts := 0
		for _, err := range errs {
			if err != nil {
				require.ErrorIs(t, err, postgres.ErrLastAdmin, "round %d", round)
				conflicts++
			}
		}
		require.Equal(t, 1, conflicts, "round %d (%s/%s): exactly one gets the 409", round, first.name, second.name)
	}
}
