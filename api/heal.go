package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/materializer"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/web"
	"github.com/decnet/mazenet/tasks"
)

// healSettleTimeout bounds the heal's last writes (finish or release, the
// event, the wake-up), which run even when the client has left.
const healSettleTimeout = 5 * time.Second

// handleTopologyHeal is POST /topologies/{id}/heal (admin; DOMAIN §3, D12):
// the only way from degraded back to active. The protocol, and why it holds
// the topology's lease, is told in internal/postgres/heal.go: take the lease
// (404; 409 unless degraded, or while a drain is under way), re-validate the
// live view with the deploy-time rules of DOMAIN §8.3 and ask the
// materializer for the health of its units (agent-pinned topologies are not
// materialised here, so only the view is checked), then either move it to
// active with reason `healed` (200, the summary; the `status` event is
// published) or refuse with 409 {"detail", "issues", "unhealthy"} and
// change nothing. Drains held off by the heal are woken when it ends.
func (s *Server) handleTopologyHeal(w http.ResponseWriter, r *http.Request) error {
	tid := chi.URLParam(r, "id")
	owner := "heal:" + uuid.NewString()
	hl, err := s.DB.BeginHeal(r.Context(), tid, owner, postgres.HealLease)
	if err != nil {
		return err
	}
	settle, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), healSettleTimeout)
	defer cancel()
	defer s.wakeDrains(settle, tid)

	issues := domain.Validate(hl.View, true)
	var unhealthy []materializer.Unit
	if hl.View.Topology.Mode != domain.ModeAgent {
		scope := materializer.Scope{Topology: &hl.View.Topology, Fence: hl.Fence}
		if unhealthy, err = s.materializer().Health(r.Context(), scope, hl.View); err != nil {
			s.releaseHeal(settle, tid, owner)
			if errors.Is(err, materializer.ErrFenced) {
				return postgres.ErrHealOvertaken
			}
			return fmt.Errorf("heal: health check: %w", err)
		}
	}
	if refusal := healRefusal(issues, unhealthy); refusal != nil {
		s.releaseHeal(settle, tid, owner)
		return refusal
	}
	t, ev, err := s.DB.FinishHeal(settle, tid, owner)
	if err != nil {
		return err
	}
	s.Relay.Publish(settle, ev)
	return web.JSON(w, http.StatusOK, t)
}

// healRefusal is the 409 of a heal whose view has error-severity issues or
// whose materializer reported unhealthy units, or nil when neither. Both
// lists are always in the body (warnings included, as deploy does), so the
// operator sees everything in one answer.
func healRefusal(issues []domain.Issue, unhealthy []materializer.Unit) error {
	codes := map[string]bool{}
	for _, is := range issues {
		if is.Severity == domain.SeverityError {
			codes[is.Code] = true
		}
	}
	if len(codes) == 0 && len(unhealthy) == 0 {
		return nil
	}
	var why []string
	if len(codes) > 0 {
		sorted := make([]string, 0, len(codes))
		for c := range codes {
			sorted = append(sorted, c)
		}
		sort.Strings(sorted)
		why = append(why, "it fails validation: "+strings.Join(sorted, ", "))
	}
	if n := len(unhealthy); n == 1 {
		why = append(why, "1 unit is unhealthy")
	} else if n > 1 {
		why = append(why, fmt.Sprintf("%d units are unhealthy", n))
	}
	if issues == nil {
		issues = []domain.Issue{}
	}
	if unhealthy == nil {
		unhealthy = []materializer.Unit{}
	}
	return &domain.Error{Code: domain.EConflict,
		Message: "Topology stays degraded: " + strings.Join(why, "; "),
		Fields:  map[string]any{"issues": issues, "unhealthy": unhealthy}}
}

// releaseHeal frees a refused heal's lease (a no-op if it was taken over);
// a failure only delays drains until the lease expires.
func (s *Server) releaseHeal(ctx context.Context, tid, owner string) {
	if err := s.DB.ReleaseDrainLease(ctx, tid, owner); err != nil {
		s.Log.WarnContext(ctx, "heal lease not released; it expires", "topology_id", tid, "err", err)
	}
}

// wakeDrains asks the workers to drain tid: mutations enqueued while the
// heal held the lease found it taken and were left for later. A lost
// wake-up only waits for the sweep.
func (s *Server) wakeDrains(ctx context.Context, tid string) {
	if s.Tasks == nil {
		return
	}
	if _, err := s.Tasks.EnqueueContext(ctx, tasks.New(tasks.TypeApply, tid, s.Queue)); err != nil {
		s.Log.WarnContext(ctx, "apply wake-up after heal not enqueued; the sweep will drain", "topology_id", tid, "err", err)
	}
}

// materializer is s.Materializer, or Noop when none is set.
func (s *Server) materializer() materializer.Materializer {
	if s.Materializer == nil {
		return materializer.Noop{}
	}
	return s.Materializer
}
