package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"

	"github.com/decnet/mazenet/internal/domain"
)

// CredentialState is what re-checking open SSE streams needs of one user
// (DOMAIN §11.2): the role (a row whose role is no longer valid fails like
// a missing one) and tokens_valid_from.
type CredentialState struct {
	Role            domain.Role
	TokensValidFrom *time.Time
}

// CredentialStates answers, in one statement, which of users still exist
// (with their role and tokens_valid_from) and which of jtis are on the
// logout denylist. The sse process calls it once per re-check interval for
// every open stream it serves, instead of one query per stream. Ids that are
// not uuids are simply absent from the result (a missing user).
func (db *DB) CredentialStates(ctx context.Context, users, jtis []string) (map[string]CredentialState, map[string]bool, error) {
	valid := make([]string, 0, len(users))
	for _, u := range users {
		if isUUID(u) {
			valid = append(valid, u)
		}
	}
	if jtis == nil {
		jtis = []string{}
	}
	rows, err := db.QueryContext(ctx, `
		SELECT 'u', uuid::text, role, tokens_valid_from FROM users WHERE uuid = ANY($1::uuid[])
		UNION ALL
		SELECT 'j', jti, '', NULL FROM revoked_tokens WHERE jti = ANY($2::text[])`,
		pq.Array(valid), pq.Array(jtis))
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: credential states: %w", err)
	}
	defer rows.Close()
	states := make(map[string]CredentialState, len(valid))
	revoked := map[string]bool{}
	for rows.Next() {
		var kind, id, role string
		var from *time.Time
		if err := rows.Scan(&kind, &id, &role, &from); err != nil {
			return nil, nil, fmt.Errorf("postgres: credential states: %w", err)
		}
		if kind == "u" {
			states[id] = CredentialState{Role: domain.Role(role), TokensValidFrom: from}
		} else {
			revoked[id] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("postgres: credential states: %w", err)
	}
	return states, revoked, nil
}
