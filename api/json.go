package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/decnet/mazenet/internal/domain"
)

// MaxBodyBytes is the largest request body accepted (413 beyond).
const MaxBodyBytes = 1 << 20

// readBody reads the whole (limited) request body.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, domain.Errorf(domain.ETooLarge, "Request body larger than %d bytes", MaxBodyBytes)
	} else if err != nil {
		return nil, domain.Errorf(domain.EInvalid, "Could not read request body")
	}
	return body, nil
}

// decodeJSON reads the body into v. Malformed JSON is 422 (DOMAIN §4.2); an
// empty body decodes as {}.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return &domain.Error{Code: domain.EUnprocessable, Message: "body." + te.Field + ": expected " + te.Type.String(), Fields: map[string]any{"field": te.Field}}
		}
		return domain.Errorf(domain.EUnprocessable, "Malformed JSON body")
	}
	return nil
}
