package api

import (
	"bytes"
	"encoding/json"
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
	r.With(s.admin).Method(http.MethodPost, "/topologies/blank", web.Handler(s.handleTopologyCreateBlank))
	r.With(s.viewer).Method(http.MethodGet, "/topologies/{id}", web.Handler(s.handleTopologyGet))
	r.With(s.admin).Method(http.MethodDelete, "/topologies/{id}", web.Handler(s.handleTopologyDelete))
	r.With(s.viewer).Method(http.MethodGet, "/topologies/{id}/status-events", web.Handler(s.handleTopologyStatusEvents))
	r.With(s.admin).Method(http.MethodPost, "/topologies/{id}/deploy", web.Handler(s.handleTopologyDeploy))
	r.With(s.admin).Method(http.MethodPost, "/topologies/{id}/teardown", web.Handler(s.handleTopologyTeardown))

	r.With(s.admin).Method(http.MethodPost, "/topologies/{id}/lans", web.Handler(s.handleLANCreate))
	r.With(s.admin).Method(http.MethodPatch, "/topologies/{id}/lans/{lan_id}", web.Handler(s.handleLANUpdate))
	r.With(s.admin).Method(http.MethodDelete, "/topologies/{id}/lans/{lan_id}", web.Handler(s.handleLANDelete))
	r.With(s.admin).Method(http.MethodPost, "/topologies/{id}/deckies", web.Handler(s.handleDeckyCreate))
	r.With(s.admin).Method(http.MethodPatch, "/topologies/{id}/deckies/{uuid}", web.Handler(s.handleDeckyUpdate))
	r.With(s.admin).Method(http.MethodDelete, "/topologies/{id}/deckies/{uuid}", web.Handler(s.handleDeckyDelete))
	r.With(s.admin).Method(http.MethodPost, "/topologies/{id}/edges", web.Handler(s.handleEdgeCreate))
	r.With(s.admin).Method(http.MethodDelete, "/topologies/{id}/edges/{edge_id}", web.Handler(s.handleEdgeDelete))
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

// handleTopologyCreateBlank is POST /topologies/blank → 201 summary.
func (s *Server) handleTopologyCreateBlank(w http.ResponseWriter, r *http.Request) error {
	var req blankTopologyRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	t, err := s.DB.CreateBlankTopology(r.Context(), postgres.BlankTopology{
		Name: req.Name, Mode: req.Mode, TargetHostUUID: req.TargetHostUUID})
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

// optionalCoord is a PATCH coordinate that remembers whether its key was
// present, so "absent" (leave alone) differs from null (clear).
type optionalCoord struct {
	Set   bool
	Value *float64
}

// UnmarshalJSON implements json.Unmarshaler; it only runs when the key is
// present, null included.
func (c *optionalCoord) UnmarshalJSON(b []byte) error {
	c.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		c.Value = nil
		return nil
	}
	return json.Unmarshal(b, &c.Value)
}

func (c optionalCoord) coord() postgres.Coord { return postgres.Coord{Set: c.Set, Value: c.Value} }

// expectedVersionForDelete reads the optimistic-concurrency token of a
// child DELETE (DOMAIN §5) from its optional body or, for clients that
// cannot send a body with DELETE, from ?expected_version=.
func expectedVersionForDelete(w http.ResponseWriter, r *http.Request) (*int, error) {
	var body struct {
		ExpectedVersion *int `json:"expected_version"`
	}
	if err := decodeJSON(w, r, &body); err != nil {
		return nil, err
	}
	if body.ExpectedVersion != nil {
		return body.ExpectedVersion, nil
	}
	if r.URL.Query().Get("expected_version") == "" {
		return nil, nil
	}
	v, err := intQuery(r, "expected_version", 0, 0, math.MaxInt32)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

type lanCreateRequest struct {
	ExpectedVersion *int     `json:"expected_version"` // DOMAIN §5
	Name            string   `json:"name"`
	Subnet          *string  `json:"subnet"`
	IsDMZ           bool     `json:"is_dmz"`
	X               *float64 `json:"x"`
	Y               *float64 `json:"y"`
}

type lanPatchRequest struct {
	ExpectedVersion *int          `json:"expected_version"` // DOMAIN §5
	Name            *string       `json:"name"`
	Subnet          *string       `json:"subnet"`
	IsDMZ           *bool         `json:"is_dmz"`
	X               optionalCoord `json:"x"`
	Y               optionalCoord `json:"y"`
}

// lanResponse is a LAN plus the topology's version after the write, so a
// client can chain writes with expected_version.
type lanResponse struct {
	domain.LAN
	TopologyVersion int `json:"topology_version"`
}

type deckyResponse struct {
	domain.Decky
	TopologyVersion int `json:"topology_version"`
}

type edgeResponse struct {
	domain.Edge
	TopologyVersion int `json:"topology_version"`
}

// handleLANCreate is POST /topologies/{id}/lans → 201.
func (s *Server) handleLANCreate(w http.ResponseWriter, r *http.Request) error {
	var req lanCreateRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	in := postgres.LANInput{Name: req.Name, IsDMZ: req.IsDMZ, X: req.X, Y: req.Y}
	if req.Subnet != nil {
		in.Subnet = *req.Subnet
	}
	lan, v, err := s.DB.CreateLAN(r.Context(), chi.URLParam(r, "id"), req.ExpectedVersion, in)
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusCreated, lanResponse{LAN: *lan, TopologyVersion: v})
}

// handleLANUpdate is PATCH /topologies/{id}/lans/{lan_id} → 200.
func (s *Server) handleLANUpdate(w http.ResponseWriter, r *http.Request) error {
	var req lanPatchRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	p := postgres.LANPatch{Name: req.Name, Subnet: req.Subnet, IsDMZ: req.IsDMZ, X: req.X.coord(), Y: req.Y.coord()}
	lan, v, err := s.DB.UpdateLAN(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "lan_id"), req.ExpectedVersion, p)
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, lanResponse{LAN: *lan, TopologyVersion: v})
}

// handleLANDelete is DELETE /topologies/{id}/lans/{lan_id} → 204.
func (s *Server) handleLANDelete(w http.ResponseWriter, r *http.Request) error {
	expected, err := expectedVersionForDelete(w, r)
	if err != nil {
		return err
	}
	if _, err := s.DB.DeleteLAN(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "lan_id"), expected); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type deckyCreateRequest struct {
	ExpectedVersion *int   `json:"expected_version"` // DOMAIN §5
	Name            string `json:"name"`
	// LAN is the home LAN by id or name; lan_id is accepted as an alias.
	LAN         string         `json:"lan"`
	LANID       string         `json:"lan_id"`
	Services    []string       `json:"services"`
	DeckyConfig map[string]any `json:"decky_config"`
	IP          string         `json:"ip"`
	ForwardsL3  bool           `json:"forwards_l3"`
	Archetype   string         `json:"archetype"`
	X           *float64       `json:"x"`
	Y           *float64       `json:"y"`
}

type deckyPatchRequest struct {
	ExpectedVersion *int           `json:"expected_version"` // DOMAIN §5
	Name            *string        `json:"name"`
	Services        *[]string      `json:"services"`
	DeckyConfig     map[string]any `json:"decky_config"`
	X               optionalCoord  `json:"x"`
	Y               optionalCoord  `json:"y"`
}

// handleDeckyCreate is POST /topologies/{id}/deckies → 201.
func (s *Server) handleDeckyCreate(w http.ResponseWriter, r *http.Request) error {
	var req deckyCreateRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	lan := req.LAN
	if lan == "" {
		lan = req.LANID
	}
	d, v, err := s.DB.CreateDecky(r.Context(), chi.URLParam(r, "id"), req.ExpectedVersion, postgres.DeckyInput{
		Name: req.Name, LAN: lan, Services: req.Services, Config: req.DeckyConfig, IP: req.IP,
		ForwardsL3: req.ForwardsL3, Archetype: req.Archetype, X: req.X, Y: req.Y})
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusCreated, deckyResponse{Decky: *d, TopologyVersion: v})
}

// handleDeckyUpdate is PATCH /topologies/{id}/deckies/{uuid} → 200.
func (s *Server) handleDeckyUpdate(w http.ResponseWriter, r *http.Request) error {
	var req deckyPatchRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	d, v, err := s.DB.UpdateDecky(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "uuid"), req.ExpectedVersion,
		postgres.DeckyPatch{Name: req.Name, Services: req.Services, Config: req.DeckyConfig, X: req.X.coord(), Y: req.Y.coord()})
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, deckyResponse{Decky: *d, TopologyVersion: v})
}

// handleDeckyDelete is DELETE /topologies/{id}/deckies/{uuid} → 204.
func (s *Server) handleDeckyDelete(w http.ResponseWriter, r *http.Request) error {
	expected, err := expectedVersionForDelete(w, r)
	if err != nil {
		return err
	}
	if _, err := s.DB.DeleteDecky(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "uuid"), expected); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type edgeCreateRequest struct {
	ExpectedVersion *int   `json:"expected_version"` // DOMAIN §5
	DeckyUUID       string `json:"decky_uuid"`
	LANID           string `json:"lan_id"`
	IP              string `json:"ip"`
	IsBridge        *bool  `json:"is_bridge"`
	ForwardsL3      bool   `json:"forwards_l3"`
}

// handleEdgeCreate is POST /topologies/{id}/edges → 201.
func (s *Server) handleEdgeCreate(w http.ResponseWriter, r *http.Request) error {
	var req edgeCreateRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	e, v, err := s.DB.CreateEdge(r.Context(), chi.URLParam(r, "id"), req.ExpectedVersion, postgres.EdgeInput{
		DeckyUUID: req.DeckyUUID, LANID: req.LANID, IP: req.IP, IsBridge: req.IsBridge, ForwardsL3: req.ForwardsL3})
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusCreated, edgeResponse{Edge: *e, TopologyVersion: v})
}

// handleEdgeDelete is DELETE /topologies/{id}/edges/{edge_id} → 204.
func (s *Server) handleEdgeDelete(w http.ResponseWriter, r *http.Request) error {
	expected, err := expectedVersionForDelete(w, r)
	if err != nil {
		return err
	}
	if _, err := s.DB.DeleteEdge(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "edge_id"), expected); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
