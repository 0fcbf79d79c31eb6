package api

import (
	"context"
	"net/http"
	"time"

	"github.com/decnet/mazenet/internal/auth"
)

// announceRevocation tells every sse process, after the commit, that user's
// credentials changed (jti set for a logout), so their open streams are
// re-checked at once instead of at the next periodic re-check (sse/revoke.go).
// It never fails the request: the change is committed, and a lost notice is
// covered by that periodic re-check. The notice outlives a client that has
// already hung up.
func (s *Server) announceRevocation(r *http.Request, user, jti string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 2*time.Second)
	defer cancel()
	if err := auth.PublishRevocation(ctx, s.Redis, s.Keys, auth.Revocation{UserUUID: user, JTI: jti}); err != nil {
		s.Log.WarnContext(ctx, "revocation notice not sent; sse streams end at their next periodic re-check", "err", err)
	}
}
