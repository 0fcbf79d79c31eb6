package api

import (
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/web"
	"github.com/decnet/mazenet/tasks"
)

// topologyRoutes registers the topology lifecycle endpoints (DOMAIN §16) and
// the pending-only child CRUD. The catalog paths under /topologies/ are
// registered by catalogRoutes; chi matches static segments before {id}, so
// /topologies/services never reaches handleTopologyGet.
func (s *Server) topologyRoutes(r chi.Router) {
	r.With(s.viewer).Method(http.MethodGet, "/topologies", web.Handler(s.handleTopologyList))
	r.With(s.admin).Method(http.MethodPost, "/topologies/blank", s.idempotent(keyWithWrite, s.handleTopologyCreateBlank))
	r.With(s.viewer).Method(http.MethodGet, "/topologies/{id}", web.Handler(s.handleTopologyGet))
	r.With(s.admin).Method(http.MethodDelete, "/topologies/{id}", web.Handler(s.handleTopologyDelete))
	r.With(s.viewer).Method(http.MethodGet, "/topologies/{id}/status-events", web.Handler(s.handleTopologyStatusEvents))
	r.With(s.admin).Method(http.MethodPost, "/topologies/{id}/deploy", s.idempotent(keyReserved, s.handleTopologyDeploy))
	r.With(s.admin).Method(http.MethodPost, "/topologies/{id}/teardown", s.idempotent(keyReserved, s.handleTopologyTeardown))
	r.With(s.admin).Method(http.MethodPost, "/topologies/{id}/heal", web.Handler(s.handleTopologyHeal))

	s.lanRoutes(r)
	s.deckyRoutes(r)
	s.edgeRoutes(r)
}

// Page sizes of the list endpoints (DOMAIN §2.6, §16).
const (
	topologyListDefault = 50
	topologyListMax     = 500
	statusEventsDefault = 100
	statusEventsMax     = 1000
)

// intQuery reads an integer query parameter: absent or empty gives def; a
// non-integer or a value outside [lo, hi] is a 422 naming the parameter.
func intQuery(r *http.Request, name string, def, lo, hi int) (int, error) {
	raw := r.URL.Query().Get(name)
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < lo || n > hi {
		return 0, &domain.Error{Code: domain.EUnprocessable,
			Message: "query." + name + ": must be an integer between " + strconv.Itoa(lo) + " and " + strconv.Itoa(hi),
			Fields:  map[string]any{"field": name}}
	}
	return n, nil
}

type topologyListResponse struct {
	Total  int               `json:"total"`
	Limit  int               `json:"limit"`
	Offset int               `json:"offset"`
	Data   []domain.Topology `json:"data"`
}

// handleTopologyList is GET /topologies?status=&limit=&offset=: newest
// first. An unknown status is a 422 rather than an empty page, so a typo in
// a filter is not mistaken for "no topologies".
func (s *Server) handleTopologyList(w http.ResponseWriter, r *http.Request) error {
	limit, err := intQuery(r, "limit", topologyListDefault, 1, topologyListMax)
	if err != nil {
		return err
	}
	offset, err := intQuery(r, "offset", 0, 0, math.MaxInt32)
	if err != nil {
		return err
	}
	status := domain.Status(r.URL.Query().Get("status"))
	if status != "" && !status.Valid() {
		return &domain.Error{Code: domain.EUnprocessable,
			Message: "query.status: unknown status '" + string(status) + "'", Fields: map[string]any{"field": "status"}}
	}
	data, total, err := s.DB.ListTopologySummaries(r.Context(), postgres.TopologyFilter{Status: status, Limit: limit, Offset: offset})
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, topologyListResponse{Total: total, Limit: limit, Offset: offset, Data: data})
}

type blankTopologyRequest struct {
	Name           string      `json:"name"`
	Mode           domain.Mode `json:"mode"`
	TargetHostUUID *string     `json:"target_host_uuid"`
}

// handleTopologyCreateBlank is POST /topologies/blank → 201 summary. An
// Idempotency-Key is recorded in the creation's transaction
// (idempotency.go).
func (s *Server) handleTopologyCreateBlank(w http.ResponseWriter, r *http.Request) error {
	var req blankTopologyRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	t, err := s.DB.CreateBlankTopology(r.Context(), postgres.BlankTopology{
		Name: req.Name, Mode: req.Mode, TargetHostUUID: req.TargetHostUUID,
		Idempotency: idempotency(r, http.StatusCreated, func(t *domain.Topology) any { return t })})
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusCreated, t)
}

// handleTopologyGet is GET /topologies/{id}: the hydrated view (DOMAIN §2.8).
func (s *Server) handleTopologyGet(w http.ResponseWriter, r *http.Request) error {
	h, err := s.DB.GetHydrated(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, h)
}

// handleTopologyStatusEvents is GET /topologies/{id}/status-events?limit=:
// the audit log, newest first, as a JSON array.
func (s *Server) handleTopologyStatusEvents(w http.ResponseWriter, r *http.Request) error {
	limit, err := intQuery(r, "limit", statusEventsDefault, 1, statusEventsMax)
	if err != nil {
		return err
	}
	evs, err := s.DB.ListStatusEvents(r.Context(), chi.URLParam(r, "id"), limit)
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, evs)
}

// handleTopologyDelete is DELETE /topologies/{id}: pending, failed or
// torn_down only; 204.
func (s *Server) handleTopologyDelete(w http.ResponseWriter, r *http.Request) error {
	if err := s.DB.DeleteTopology(r.Context(), chi.URLParam(r, "id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleTopologyDeploy is POST /topologies/{id}/deploy. Beyond DOMAIN §16
// (which only says validation errors keep the topology pending in the
// background) it validates synchronously: a topology that would fail is
// refused with 422 {"detail", "issues"} and nothing is queued, because that
// is the answer an operator can act on. A valid pending topology gets a
// topology:deploy task and 202 with its (still pending) summary; the worker
// validates again under the row lock, since the topology may change between.
// If the task cannot be queued the request fails and the topology stays
// pending, so retrying the POST is safe.
func (s *Server) handleTopologyDeploy(w http.ResponseWriter, r *http.Request) error {
	t, err := s.DB.CheckDeployable(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if err := s.enqueueLifecycleTask(r, tasks.TypeDeploy, t.ID); err != nil {
		return err
	}
	return web.JSON(w, http.StatusAccepted, t)
}

// handleTopologyTeardown is POST /topologies/{id}/teardown: from active,
// degraded, failed or deploying (else 409), queue topology:teardown, 202
// with the summary. A topology stuck in deploying (its worker died) can be
// recovered this way.
func (s *Server) handleTopologyTeardown(w http.ResponseWriter, r *http.Request) error {
	t, err := s.DB.GetTopology(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if err := domain.CheckAction(domain.ActionTeardown, t.Status); err != nil {
		return err
	}
	if err := s.enqueueLifecycleTask(r, tasks.TypeTeardown, t.ID); err != nil {
		return err
	}
	return web.JSON(w, http.StatusAccepted, t)
}

// enqueueLifecycleTask queues a deploy or teardown task. Unlike a mutation
// wake-up there is no DB row for a sweep to find, so a failure is reported
// to the caller instead of being swallowed: 503 while Redis is down, 500
// otherwise (the cause is logged by the error writer, never shown).
func (s *Server) enqueueLifecycleTask(r *http.Request, typ, tid string) error {
	if _, err := s.Tasks.EnqueueContext(r.Context(), tasks.New(typ, tid, s.Queue)); err != nil {
		return &domain.Error{Code: domain.EInternal, Err: err,
			Message: fmt.Sprintf("Could not queue the %s task; the topology is unchanged, try again", typ)}
	}
	return nil
}
