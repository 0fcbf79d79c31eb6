package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

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

// GetUser returns a user by uuid, or a 404.
func (db *DB) GetUser(ctx context.Context, userUUID string) (*domain.User, error) {
	if !isUUID(userUUID) {
		return nil, notFound("User")
	}
	var u domain.User
	err := db.GetContext(ctx, &u, `SELECT `+userColumns+` FROM users WHERE uuid = $1`, userUUID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("User")
	} else if err != nil {
		return nil, fmt.Errorf("postgres: get user: %w", err)
	}
	return &u, nil
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
