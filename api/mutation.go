package api

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/web"
)

// mutationRoutes registers the mutation queue (DOMAIN §4.2, §4.3).
func (s *Server) mutationRoutes(r chi.Router) {
	r.With(s.admin).Method(http.MethodPost, "/topologies/{id}/mutations", s.idempotent(keyWithWrite, s.handleMutationEnqueue))
	r.With(s.viewer).Method(http.MethodGet, "/topologies/{id}/mutations", web.Handler(s.handleMutationList))
	r.With(s.viewer).Method(http.MethodGet, "/topologies/{id}/mutations/{mutation_id}", web.Handler(s.handleMutationGet))
}

// enqueueResponse is the 202 body of an accepted mutation.
type enqueueResponse struct {
	MutationID string               `json:"mutation_id"`
	State      domain.MutationState `json:"state"`
}

// handleMutationEnqueue queues one mutation. The body is checked first (400,
// 413, 422 in DOMAIN §4.2 order), then one SQL statement does the existence,
// liveness and version checks and all the writes. After the commit the
// workers are woken and the `mutation.enqueued` event is handed to the
// relay, which publishes it just after the answer; neither can fail the
// request, because the row and its outbox event are already
// durable and the sweep repairs both. An Idempotency-Key is recorded by the
// same statement (idempotency.go); a repeat returns before any of this.
func (s *Server) handleMutationEnqueue(w http.ResponseWriter, r *http.Request) error {
	nm, err := parseEnqueue(w, r)
	if err != nil {
		return err
	}
	nm.TopologyID = chi.URLParam(r, "id")
	nm.Idempotency = idempotency(r, http.StatusAccepted, func(m *domain.Mutation) any { return enqueueResponseOf(m) })
	m, _, err := s.DB.EnqueueMutation(r.Context(), nm)
	if err != nil {
		return err
	}
	// The event is published after the answer, by the relay's loop
	// (relay.Notify: a burst of POSTs shares its rounds instead of queueing
	// for Redis one by one); the outbox row already makes it durable. The
	// wake-up is awaited, coalesced per topology (Server.wakeups), so a 202
	// means a worker is woken unless Redis failed (then the sweep drains).
	// The request's context may be cancelled once the client has its
	// answer; the wake-up must still go out.
	s.Relay.Notify()
	if s.Tasks != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
		defer cancel()
		if err := s.wakeups.apply(ctx, s.Tasks, s.Queue, m.TopologyID); err != nil {
			s.Log.WarnContext(ctx, "apply wake-up not enqueued; the sweep will drain",
				"topology_id", m.TopologyID, "mutation_id", m.ID, "err", err)
		}
	}
	return web.JSON(w, http.StatusAccepted, enqueueResponseOf(m))
}

// enqueueResponseOf is the 202 body of an accepted mutation.
func enqueueResponseOf(m *domain.Mutation) enqueueResponse {
	return enqueueResponse{MutationID: m.ID, State: m.State}
}

// parseEnqueue reads and shape-checks an enqueue body: {"op", "payload",
// "expected_version"}; unknown top-level keys are ignored.
func parseEnqueue(w http.ResponseWriter, r *http.Request) (postgres.NewMutation, error) {
	var nm postgres.NewMutation
	body, err := readBody(w, r)
	if err != nil {
		return nm, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nm, domain.Errorf(domain.EUnprocessable, "Malformed JSON body: expected an object")
	}
	rawOp, ok := top["op"]
	if !ok || isNull(rawOp) {
		return nm, fieldError(domain.EInvalid, "op", "body.op: field required")
	}
	var op string
	if err := json.Unmarshal(rawOp, &op); err != nil || !domain.Op(op).Valid() {
		return nm, fieldError(domain.EUnprocessable, "op",
			"body.op: must be one of add_lan, remove_lan, add_decky, attach_decky, detach_decky, remove_decky, update_decky, update_lan")
	}
	nm.Op = domain.Op(op)
	// The payload is stored as the JSON text sent, so its escapes count, not
	// just the decoded strings.
	if err := domain.CheckJSONText(body); err != nil {
		return nm, err
	}

	nm.Payload = json.RawMessage("{}")
	if raw, ok := top["payload"]; ok && !isNull(raw) {
		nm.Payload = bytes.TrimSpace(raw)
	}
	var payload map[string]any
	if err := json.Unmarshal(nm.Payload, &payload); err != nil || payload == nil {
		return nm, fieldError(domain.EUnprocessable, "payload", "body.payload: must be an object")
	}

	if raw, ok := top["expected_version"]; ok && !isNull(raw) {
		var f float64
		if err := json.Unmarshal(raw, &f); err != nil || f != math.Trunc(f) || f < math.MinInt32 || f > math.MaxInt32 {
			return nm, fieldError(domain.EUnprocessable, "expected_version", "body.expected_version: must be an integer")
		}
		v := int(f)
		nm.ExpectedVersion = &v
	}
	if err := domain.ValidatePayload(nm.Op, payload); err != nil {
		return nm, err
	}
	return nm, nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// fieldError is a body error naming its field in the message and in the
// extra "field" key.
func fieldError(code domain.Code, field, msg string) *domain.Error {
	return &domain.Error{Code: code, Message: msg, Fields: map[string]any{"field": field}}
}

// handleMutationList lists a topology's mutations, newest first, optionally
// filtered by ?state= (an unknown state simply matches nothing).
func (s *Server) handleMutationList(w http.ResponseWriter, r *http.Request) error {
	ms, err := s.DB.ListMutations(r.Context(), chi.URLParam(r, "id"), r.URL.Query().Get("state"))
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, ms)
}

// handleMutationGet returns one mutation row.
func (s *Server) handleMutationGet(w http.ResponseWriter, r *http.Request) error {
	m, err := s.DB.GetMutation(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "mutation_id"))
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, m)
}
