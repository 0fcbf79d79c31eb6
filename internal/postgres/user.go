package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/decnet/mazenet/internal/domain"
)

const userColumns = `uuid, username, password_hash, role, must_change_password, tokens_valid_from, created_at`

// UserForToken loads the user a verified token names and whether its jti is
// on the logout denylist, in one round trip. A missing user is ErrUnauthorized.
func (db *DB) UserForToken(ctx context.Context, userUUID, jti string) (*domain.User, bool, error) {
	if !isUUID(userUUID) {
		return nil, false, domain.ErrUnauthorized
	}
	var row struct {
		domain.User
		Revoked bool `db:"revoked"`
	}
	err := db.GetContext(ctx, &row, `SELECT `+userColumns+`,
		EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $2) AS revoked
		FROM users WHERE uuid = $1`, userUUID, jti)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, domain.ErrUnauthorized
	} else if err != nil {
		return nil, false, fmt.Errorf("postgres: user for token: %w", err)
	}
	return &row.User, row.Revoked, nil
}

// CreateUser inserts a user; a taken username is a 409.
func (db *DB) CreateUser(ctx context.Context, u *domain.User) error {
	if u.UUID == "" {
		u.UUID = newID()
	}
	err := db.GetContext(ctx, &u.CreatedAt, `INSERT INTO users (uuid, username, password_hash, role, must_change_password)
		VALUES ($1, $2, $3, $4, $5) RETURNING created_at`, u.UUID, u.Username, u.PasswordHash, u.Role, u.MustChangePassword)
	if isUniqueViolation(err) {
		return domain.Errorf(domain.EConflict, "User '%s' already exists", u.Username)
	} else if err != nil {
		return fmt.Errorf("postgres: create user: %w", err)
	}
	return nil
}

// GetUserByUsername returns a user by exact username, or a 404. Login uses it
// and answers 401 either way, so the 404 never reaches a client from there.
func (db *DB) GetUserByUsername(ctx context.Context, username string) (*domain.User, error) {
	if domain.CheckText("username", username) != nil {
		// No user can have a name PostgreSQL cannot store (a NUL, invalid
		// UTF-8), and asking would fail the query: a credential from a
		// header (HTTP Basic on /monitoring) reaches here undecoded.
		return nil, notFound("User")
	}
	var u domain.User
	err := db.GetContext(ctx, &u, `SELECT `+userColumns+` FROM users WHERE username = $1`, username)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("User")
	} else if err != nil {
		return nil, fmt.Errorf("postgres: get user by username: %w", err)
	}
	return &u, nil
}

// ListUsers returns every user, ordered by username.
func (db *DB) ListUsers(ctx context.Context) ([]domain.User, error) {
	users := []domain.User{}
	if err := db.SelectContext(ctx, &users, `SELECT `+userColumns+` FROM users ORDER BY username`); err != nil {
		return nil, fmt.Errorf("postgres: list users: %w", err)
	}
	return users, nil
}

// ErrLastAdmin refuses a demotion or deletion that would leave no admin.
var ErrLastAdmin = domain.Errorf(domain.EConflict, "At least one admin must remain")

// DeleteUser removes a user; their denylisted tokens go with them (ON DELETE
// CASCADE) and any token they still hold fails because the row is gone.
// Deleting the last admin is ErrLastAdmin (409), even when two admins delete
// each other at the same moment (see keepAnAdmin).
func (db *DB) DeleteUser(ctx context.Context, userUUID string) error {
	if !isUUID(userUUID) {
		return notFound("User")
	}
	return db.InTx(ctx, func(tx *sqlx.Tx) error {
		if err := keepAnAdmin(ctx, tx, userUUID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE uuid = $1`, userUUID)
		if err != nil {
			return fmt.Errorf("postgres: delete user: %w", err)
		}
		return requireOneUser(res)
	})
}

// SetRole changes a user's role. When the role actually changes it also moves
// tokens_valid_from to now, revoking every token the user holds (DOMAIN
// §11.2); re-sending the current role is a no-op that logs nobody out.
// Demoting the last admin is ErrLastAdmin (409), even when two admins demote
// each other at the same moment (see keepAnAdmin).
func (db *DB) SetRole(ctx context.Context, userUUID string, role domain.Role) (*domain.User, error) {
	if !isUUID(userUUID) {
		return nil, notFound("User")
	}
	var u domain.User
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		if role != domain.RoleAdmin {
			if err := keepAnAdmin(ctx, tx, userUUID); err != nil {
				return err
			}
		}
		err := tx.GetContext(ctx, &u, `UPDATE users SET role = $2,
			tokens_valid_from = CASE WHEN role <> $2 THEN $3 ELSE tokens_valid_from END
			WHERE uuid = $1 RETURNING `+userColumns, userUUID, role, db.userClock())
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("User")
		} else if err != nil {
			return fmt.Errorf("postgres: set role: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// keepAnAdmin returns ErrLastAdmin when userUUID is the only admin left, so
// the caller's demotion or deletion would leave none (issue 8, item 6).
//
// It locks every admin row (FOR UPDATE, in uuid order so two callers never
// deadlock) for the rest of tx. Two admins demoting or deleting each other at
// once therefore run one after the other: the second waits on the first's
// lock, and under READ COMMITTED its locking read re-checks the rows the
// first changed, so it no longer counts the admin the first one removed and
// gets the 409. An admin promoted concurrently may be missed, which can only
// refuse a change that would have been safe, never allow a bad one.
func keepAnAdmin(ctx context.Context, tx *sqlx.Tx, userUUID string) error {
	var isTarget []bool
	if err := tx.SelectContext(ctx, &isTarget, `SELECT uuid = $1 FROM users WHERE role = $2
		ORDER BY uuid FOR UPDATE`, userUUID, domain.RoleAdmin); err != nil {
		return fmt.Errorf("postgres: lock admins: %w", err)
	}
	if len(isTarget) == 1 && isTarget[0] {
		return ErrLastAdmin
	}
	return nil
}

// SetPassword stores a new password hash, sets must_change_password and moves
// tokens_valid_from to now, so every token issued before this second stops
// working. It serves both a user's own change (mustChange=false) and an
// admin's reset (mustChange=true).
//
// tokens_valid_from comes from the api's clock (DB.Now), the same clock that
// stamps iat on new tokens, so a login right after the change is accepted even
// when the database's clock runs ahead.
func (db *DB) SetPassword(ctx context.Context, userUUID, passwordHash string, mustChange bool) (*domain.User, error) {
	if !isUUID(userUUID) {
		return nil, notFound("User")
	}
	var u domain.User
	err := db.GetContext(ctx, &u, `UPDATE users SET password_hash = $2, must_change_password = $3, tokens_valid_from = $4
		WHERE uuid = $1 RETURNING `+userColumns, userUUID, passwordHash, mustChange, db.userClock())
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("User")
	} else if err != nil {
		return nil, fmt.Errorf("postgres: set password: %w", err)
	}
	return &u, nil
}

// EnsureAdmin creates the seeded admin (DOMAIN §11.2) unless a user with that
// username already exists, in which case it changes nothing: re-running the
// release step never resets a password the operator has since changed.
func (db *DB) EnsureAdmin(ctx context.Context, username, passwordHash string, mustChange bool) (created bool, err error) {
	var id string
	err = db.GetContext(ctx, &id, `INSERT INTO users (uuid, username, password_hash, role, must_change_password)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (username) DO NOTHING RETURNING uuid`,
		newID(), username, passwordHash, domain.RoleAdmin, mustChange)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("postgres: ensure admin: %w", err)
	}
	return true, nil
}

// RevokeToken puts a token's jti on the logout denylist until expiresAt.
// Revoking the same jti twice is not an error.
func (db *DB) RevokeToken(ctx context.Context, jti, userUUID string, expiresAt time.Time) error {
	if !isUUID(userUUID) {
		return notFound("User")
	}
	_, err := db.ExecContext(ctx, `INSERT INTO revoked_tokens (jti, user_uuid, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (jti) DO NOTHING`, jti, userUUID, expiresAt)
	if pgCode(err) == codeForeignKeyViolation {
		return notFound("User")
	} else if err != nil {
		return fmt.Errorf("postgres: revoke token: %w", err)
	}
	return nil
}

// revokedGrace keeps a denylist row a little past its token's exp, because
// token verification allows a few seconds of clock leeway.
const revokedGrace = time.Minute

// PruneRevokedTokens deletes at most limit denylist rows whose tokens have
// expired (they can no longer verify anyway) and reports how many it deleted.
// Callers run it opportunistically; the bound keeps each call cheap.
func (db *DB) PruneRevokedTokens(ctx context.Context, limit int) (int64, error) {
	res, err := db.ExecContext(ctx, `DELETE FROM revoked_tokens WHERE jti IN (
		SELECT jti FROM revoked_tokens WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)`,
		db.userClock().Add(-revokedGrace), limit)
	if err != nil {
		return 0, fmt.Errorf("postgres: prune revoked tokens: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("postgres: prune revoked tokens: %w", err)
	}
	return n, nil
}

// userClock is DB.Now, or the wall clock when a DB was built without one.
func (db *DB) userClock() time.Time {
	if db.Now != nil {
		return db.Now()
	}
	return time.Now()
}

// requireOneUser turns "no row affected" into the user 404.
func requireOneUser(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("postgres: rows affected: %w", err)
	}
	if n == 0 {
		return notFound("User")
	}
	return nil
}
