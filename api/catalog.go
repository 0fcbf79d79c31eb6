package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/web"
)

// catalogRoutes registers the read-only catalogs (DOMAIN §14) and the
// allocator previews (DOMAIN §7, §16). They are registered before the
// topology routes, and chi prefers the static segments here over
// /topologies/{id} whatever the order.
func (s *Server) catalogRoutes(r chi.Router) {
	r.With(s.viewer).Method(http.MethodGet, "/topologies/services", web.Handler(s.handleServiceCatalog))
	r.With(s.viewer).Method(http.MethodGet, "/topologies/services/{name}/schema", web.Handler(s.handleServiceSchema))
	r.With(s.viewer).Method(http.MethodGet, "/topologies/archetypes", web.Handler(s.handleArchetypes))
	r.With(s.viewer).Method(http.MethodGet, "/topologies/next-subnet", web.Handler(s.handleNextSubnet))
	r.With(s.viewer).Method(http.MethodGet, "/topologies/{id}/lans/{lan_id}/next-ip", web.Handler(s.handleNextIP))
}

type serviceCatalogResponse struct {
	Services        []string `json:"services"`
	FleetSingletons []string `json:"fleet_singletons"`
}

// handleServiceCatalog is GET /topologies/services: the per-decky services
// (the set UNKNOWN_SERVICE checks against), sorted, and the fleet singletons.
func (s *Server) handleServiceCatalog(w http.ResponseWriter, r *http.Request) error {
	return web.JSON(w, http.StatusOK, serviceCatalogResponse{
		Services: domain.ServiceNames(), FleetSingletons: domain.FleetSingletons()})
}

// handleServiceSchema is GET /topologies/services/{name}/schema; fleet
// singletons have a schema too. Unknown → 404.
func (s *Server) handleServiceSchema(w http.ResponseWriter, r *http.Request) error {
	name := chi.URLParam(r, "name")
	schema, ok := domain.LookupService(name)
	if !ok {
		return domain.Errorf(domain.ENotFound, "Service '%s' not found", name)
	}
	return web.JSON(w, http.StatusOK, schema)
}

// handleArchetypes is GET /topologies/archetypes.
func (s *Server) handleArchetypes(w http.ResponseWriter, r *http.Request) error {
	return web.JSON(w, http.StatusOK, map[string][]domain.Archetype{"archetypes": domain.Archetypes()})
}

// handleNextSubnet is GET /topologies/next-subnet?base=: the /24 the
// allocator would hand out next under base (default 172.16.0.0/12), with
// every LAN of every topology not torn_down reserved (DOMAIN §7.1). It is a
// preview only; nothing is reserved. A base that is not an IPv4 network of
// /24 or wider is a 422, like every other bad query value; exhaustion is a
// 422 `no free /24s left under <base>`.
func (s *Server) handleNextSubnet(w http.ResponseWriter, r *http.Request) error {
	base := r.URL.Query().Get("base")
	if base == "" {
		base = domain.MutationSubnetBase
	}
	reserved, err := s.DB.ReservedSubnets(r.Context())
	if err != nil {
		return err
	}
	subnet, err := domain.NextSubnet(base, reserved)
	if domain.ErrorCode(err) == domain.EInvalid {
		err = &domain.Error{Code: domain.EUnprocessable, Message: "query.base: " + domain.ErrorMessage(err),
			Fields: map[string]any{"field": "base"}}
	}
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, map[string]string{"subnet": subnet})
}

// handleNextIP is GET /topologies/{id}/lans/{lan_id}/next-ip: the lowest
// free host address of the LAN (DOMAIN §7.2), a preview. Unknown topology or
// LAN → 404; malformed or full subnet → 422.
func (s *Server) handleNextIP(w http.ResponseWriter, r *http.Request) error {
	ip, err := s.DB.NextIP(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "lan_id"))
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, map[string]string{"ip": ip})
}
