package api

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"

	"github.com/decnet/mazenet/internal/postgres"
)

// The pending-only child CRUD (DOMAIN §16): LANs (lan.go), deckies
// (decky.go) and edges (edge.go) of a topology that is still pending, each
// write taking an optional expected_version (DOMAIN §5). This file holds what
// the three share.

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
