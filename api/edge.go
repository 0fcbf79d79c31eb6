package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/web"
)

// edgeRoutes registers the pending-only edge endpoints.
func (s *Server) edgeRoutes(r chi.Router) {
	r.With(s.admin).Method(http.MethodPost, "/topologies/{id}/edges", web.Handler(s.handleEdgeCreate))
	r.With(s.admin).Method(http.MethodDelete, "/topologies/{id}/edges/{edge_id}", web.Handler(s.handleEdgeDelete))
}

// edgeResponse is an edge plus the topology's version after the write.
type edgeResponse struct {
	domain.Edge
	TopologyVersion int `json:"topology_version"`
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
