package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/web"
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
// empty body decodes as {}. Text PostgreSQL cannot store (a NUL, an
// unpaired surrogate escape, invalid UTF-8, a number numeric overflows) is
// 422 naming the field, anywhere in the body: decoding into v would hide
// some of it (a lone surrogate becomes U+FFFD) and the rest would fail the
// query as a 500.
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
	return domain.CheckJSONText(body)
}

// queryHygiene refuses, with a 400 naming the parameter, a query string
// whose keys or values are not storable text (a NUL, invalid UTF-8): every
// parameter may end up in a query (`?state=` filters mutations in SQL), and
// PostgreSQL fails such text as a 500.
func queryHygiene(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := domain.CheckQueryText("query", k); err != nil {
				web.Error(w, r, &domain.Error{Code: domain.EInvalid, Fields: map[string]any{"field": "query"},
					Message: "query: a parameter name " + strings.TrimPrefix(err.Error(), "query: ")})
				return
			}
			for _, v := range q[k] {
				if err := domain.CheckQueryText("query."+k, v); err != nil {
					web.Error(w, r, err)
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}
