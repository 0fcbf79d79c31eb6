package auth

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/rediskey"
)

// Revocation is the notice the api publishes on rediskey.Revocations after
// committing a change that may kill a user's credentials: a logout (JTI
// set), a password change or reset, a role change, a deletion. It carries
// no secret: the sse processes re-check the user's open streams against the
// database, so a notice is only a hint to look now, and a lost one costs at
// most the periodic re-check interval (sse.DefaultRecheckInterval).
type Revocation struct {
	UserUUID string `json:"uuid"`
	JTI      string `json:"jti,omitempty"`
}

// PublishRevocation announces rev to every sse process. Call it after the
// commit; Redis pub/sub is fire-and-forget, so an error only delays the end
// of the user's streams until the next periodic re-check.
func PublishRevocation(ctx context.Context, rdb redis.UniversalClient, keys rediskey.Keys, rev Revocation) error {
	body, _ := json.Marshal(rev)
	if err := rdb.Publish(ctx, keys.Revocations(), body).Err(); err != nil {
		return fmt.Errorf("auth: publish revocation: %w", err)
	}
	return nil
}

// ParseRevocation decodes a notice; a malformed one reports ok false.
func ParseRevocation(payload string) (Revocation, bool) {
	var rev Revocation
	if err := json.Unmarshal([]byte(payload), &rev); err != nil || rev.UserUUID == "" {
		return Revocation{}, false
	}
	return rev, true
}
