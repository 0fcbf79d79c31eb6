package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/web"
)

// deckyRoutes registers the pending-only decky endpoints.
func (s *Server) deckyRoutes(r chi.Router) {
	r.With(s.admin).Method(http.MethodPost, "/topologies/{id}/deckies", web.Handler(s.handleDeckyCreate))
	r.With(s.admin).Method(http.MethodPatch, "/topologies/{id}/deckies/{uuid}", web.Handler(s.handleDeckyUpdate))
	r.With(s.admin).Method(http.MethodDelete, "/topologies/{id}/deckies/{uuid}", web.Handler(s.handleDeckyDelete))
}

// deckyResponse is a decky plus the topology's version after the write.
type deckyResponse struct {
	domain.Decky
	TopologyVersion int `json:"topology_version"`
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
