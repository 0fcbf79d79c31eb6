package domain

import "time"

// Role is a user's role (DOMAIN §11.1).
type Role string

// The two roles.
const (
	RoleAdmin  Role = "admin"
	RoleViewer Role = "viewer"
)

// Valid reports whether r is admin or viewer.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleViewer }

// User is a dashboard account. PasswordHash never leaves the server.
type User struct {
	UUID               string     `json:"uuid" db:"uuid"`
	Username           string     `json:"username" db:"username"`
	PasswordHash       string     `json:"-" db:"password_hash"`
	Role               Role       `json:"role" db:"role"`
	MustChangePassword bool       `json:"must_change_password" db:"must_change_password"`
	TokensValidFrom    *time.Time `json:"-" db:"tokens_valid_from"`
	CreatedAt          time.Time  `json:"created_at" db:"created_at"`
}
