package api

import (
	"net/http"
	"unicode"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/web"
)

// maxUsernameChars matches the users.username CHECK constraint.
const maxUsernameChars = 64

var (
	errUserNotFound = domain.Errorf(domain.ENotFound, "User not found")
	errBadRole      = domain.Errorf(domain.EUnprocessable, "role must be 'admin' or 'viewer'")
	// An admin may not delete or re-role themselves (DOMAIN §11.2). 409: the
	// request is well-formed but conflicts with who is asking. That alone
	// does not keep an admin: two admins can remove each other at the same
	// moment, so the store refuses to remove the last one
	// (postgres.ErrLastAdmin, also 409) under a lock on the admin rows.
	errDeleteSelf = domain.Errorf(domain.EConflict, "You cannot delete your own account")
	errRoleSelf   = domain.Errorf(domain.EConflict, "You cannot change your own role")
)

// userRoutes registers user management (admin only, DOMAIN §11.2).
func (s *Server) userRoutes(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(s.admin)
		r.Method(http.MethodGet, "/config/users", web.Handler(s.handleUserList))
		r.Method(http.MethodPost, "/config/users", web.Handler(s.handleUserCreate))
		r.Method(http.MethodDelete, "/config/users/{uuid}", web.Handler(s.handleUserDelete))
		r.Method(http.MethodPut, "/config/users/{uuid}/role", web.Handler(s.handleUserSetRole))
		r.Method(http.MethodPut, "/config/users/{uuid}/reset-password", web.Handler(s.handleUserResetPassword))
	})
}

// handleUserList returns every user, ordered by username.
func (s *Server) handleUserList(w http.ResponseWriter, r *http.Request) error {
	users, err := s.DB.ListUsers(r.Context())
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, users)
}

type createUserRequest struct {
	Username string      `json:"username"`
	Password string      `json:"password"`
	Role     domain.Role `json:"role"`
}

// handleUserCreate adds a user who must change the given password at first
// login. role defaults to viewer; a taken username is 409.
func (s *Server) handleUserCreate(w http.ResponseWriter, r *http.Request) error {
	var req createUserRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Role == "" {
		req.Role = domain.RoleViewer
	}
	if err := validateUsername(req.Username); err != nil {
		return err
	}
	if !req.Role.Valid() {
		return errBadRole
	}
	if err := auth.ValidateNewPassword(req.Password); err != nil {
		return err
	}
	hash, err := auth.HashPassword(req.Password, s.BcryptCost)
	if err != nil {
		return err
	}
	u := &domain.User{Username: req.Username, PasswordHash: hash, Role: req.Role, MustChangePassword: true}
	if err := s.DB.CreateUser(r.Context(), u); err != nil {
		return err
	}
	return web.JSON(w, http.StatusCreated, u)
}

// validateUsername accepts 1–64 characters without control characters.
func validateUsername(name string) error {
	if name == "" || utf8.RuneCountInString(name) > maxUsernameChars {
		return domain.Errorf(domain.EUnprocessable, "username must be 1 to %d characters", maxUsernameChars)
	}
	for _, c := range name {
		if unicode.IsControl(c) {
			return domain.Errorf(domain.EUnprocessable, "username must not contain control characters")
		}
	}
	return nil
}

// targetUser parses the {uuid} path parameter into canonical form. Postgres
// accepts several spellings of one uuid (upper case, braces, no hyphens), so
// the self-checks below must compare parsed values, never raw strings.
func targetUser(r *http.Request) (string, error) {
	id, err := uuid.Parse(chi.URLParam(r, "uuid"))
	if err != nil {
		return "", errUserNotFound
	}
	return id.String(), nil
}

// isSelf reports whether id (canonical) is the authenticated caller.
func isSelf(r *http.Request, id string) bool {
	me, err := uuid.Parse(userFrom(r.Context()).UUID)
	return err == nil && me.String() == id
}

// handleUserDelete removes a user (204). Their tokens stop working at once:
// authentication needs the user row. Removing the last admin is 409.
func (s *Server) handleUserDelete(w http.ResponseWriter, r *http.Request) error {
	id, err := targetUser(r)
	if err != nil {
		return err
	}
	if isSelf(r, id) {
		return errDeleteSelf
	}
	if err := s.DB.DeleteUser(r.Context(), id); err != nil {
		return err
	}
	s.announceRevocation(r, id, "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type setRoleRequest struct {
	Role domain.Role `json:"role"`
}

// handleUserSetRole changes another user's role and, when it really changes,
// revokes their tokens (tokens_valid_from). Returns the updated user.
// Demoting the last admin is 409.
func (s *Server) handleUserSetRole(w http.ResponseWriter, r *http.Request) error {
	id, err := targetUser(r)
	if err != nil {
		return err
	}
	var req setRoleRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if !req.Role.Valid() {
		return errBadRole
	}
	if isSelf(r, id) {
		return errRoleSelf
	}
	u, err := s.DB.SetRole(r.Context(), id, req.Role)
	if err != nil {
		return err
	}
	s.announceRevocation(r, u.UUID, "")
	return web.JSON(w, http.StatusOK, u)
}

type resetPasswordRequest struct {
	NewPassword string `json:"new_password"`
}

// handleUserResetPassword sets a user's password to one the admin hands over
// out of band: must_change_password becomes true and every token the user
// holds is revoked. Returns the updated user.
func (s *Server) handleUserResetPassword(w http.ResponseWriter, r *http.Request) error {
	id, err := targetUser(r)
	if err != nil {
		return err
	}
	var req resetPasswordRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := auth.ValidateNewPassword(req.NewPassword); err != nil {
		return err
	}
	hash, err := auth.HashPassword(req.NewPassword, s.BcryptCost)
	if err != nil {
		return err
	}
	u, err := s.DB.SetPassword(r.Context(), id, hash, true)
	if err != nil {
		return err
	}
	s.announceRevocation(r, u.UUID, "")
	return web.JSON(w, http.StatusOK, u)
}
