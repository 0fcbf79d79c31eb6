package postgres

import "github.com/google/uuid"

// isUUID reports whether s parses as a UUID, so malformed ids in URLs are a
// plain 404 instead of a database error.
func isUUID(s string) bool {
	if len(s) != 36 { // uuid.Parse also takes urn:uuid:, braces and bare hex, which Postgres rejects
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

// newID returns a fresh UUIDv4 string.
func newID() string { return uuid.NewString() }
