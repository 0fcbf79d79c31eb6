package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/web"
)

// lanRoutes registers the pending-only LAN endpoints.
func (s *Server) lanRoutes(r chi.Router) {
	r.With(s.admin).Method(http.MethodPost, "/topologies/{id}/lans", web.Handler(s.handleLANCreate))
	r.With(s.admin).Method(http.MethodPatch, "/topologies/{id}/lans/{lan_id}", web.Handler(s.handleLANUpdate))
	r.With(s.admin).Method(http.MethodDelete, "/topologies/{id}/lans/{lan_id}", web.Handler(s.handleLANDelete))
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
