package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/web"
)

// Idempotency-Key on the mutating POSTs (SYSTEM §3.9, CONTRACTS
// "Idempotency"): `POST /topologies/{id}/mutations`, `/deploy`,
// `/teardown` and `POST /topologies/blank`. A request that carries the
// header is identified by the user, the route (method and pattern) and the
// key; a repeat within 24 h with the same request gets the first response
// again (status and body, byte for byte, plus `Idempotent-Replayed: true`)
// and has no effect; the same key with another request is 422; a repeat
// while the first is still running is 409. Without the header nothing
// changes. How the key is stored beside the write it protects is told in
// internal/postgres/idempotency.go.
//
// "The same request" is the SHA-256 of: the method, the route pattern, the
// topology id of the path (lower-cased, as Postgres reads a UUID) and the
// body as JSON, canonicalised: decoded and encoded again, so whitespace and
// the order of object keys do not matter, while every value does (numbers
// compare as written: 1 and 1.0 differ). An empty body counts as {} (the
// routes read it so). A body that is not JSON is hashed as sent (the route
// refuses it anyway, and a refused request records nothing).

// Header names.
const (
	idempotencyKeyHeader = "Idempotency-Key"
	replayedHeader       = "Idempotent-Replayed"
)

// maxIdempotencyKeyLen is the longest key accepted (CONTRACTS: 1–255).
const maxIdempotencyKeyLen = 255

// keyMode says where a route records its key.
type keyMode int

const (
	// keyWithWrite: the handler hands the key to the store, which records it
	// in the write's own statement or transaction (enqueue, blank topology);
	// a taken key comes back as the write's error.
	keyWithWrite keyMode = iota
	// keyReserved: the route's effect is outside Postgres (a task in Redis),
	// so the key is reserved before the handler runs and completed with its
	// response after (deploy, teardown).
	keyReserved
)

// idempotencyCtxKey carries the request's key to the handler.
type idempotencyCtxKey struct{}

// idempotent makes h honour Idempotency-Key (see the top of this file). The
// key is checked after authentication and before the body is read by h; a
// malformed key is 400.
func (s *Server) idempotent(mode keyMode, h web.Handler) web.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		values := r.Header.Values(idempotencyKeyHeader)
		if len(values) == 0 {
			return h(w, r)
		}
		key, err := parseIdempotencyKey(values)
		if err != nil {
			return err
		}
		body, err := readBody(w, r)
		if err != nil {
			return err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		route := r.Method + " " + chi.RouteContext(r.Context()).RoutePattern()
		k := postgres.IdempotencyKey{UserUUID: userFrom(r.Context()).UUID, Route: route, Key: key,
			Hash: requestHash(r.Method, route, chi.URLParam(r, "id"), body)}
		if mode == keyWithWrite {
			err := h(w, r.WithContext(context.WithValue(r.Context(), idempotencyCtxKey{}, &k)))
			var rep *postgres.Replay
			if errors.As(err, &rep) {
				return writeReplay(w, rep.Response)
			}
			return err
		}
		return s.reserved(w, r, k, h)
	}
}

// reserved runs h under a reservation of k (keyReserved): a taken key is
// answered at once; otherwise h's response is buffered, stored with the key
// when it succeeded (2xx), and sent. A failed request releases the key so
// it can be used again: it changed nothing a second attempt could double.
func (s *Server) reserved(w http.ResponseWriter, r *http.Request, k postgres.IdempotencyKey, h web.Handler) error {
	res, err := s.DB.ReserveIdempotencyKey(r.Context(), k)
	var rep *postgres.Replay
	if errors.As(err, &rep) {
		return writeReplay(w, rep.Response)
	} else if err != nil {
		return err
	}
	rec := &bufferedResponse{header: w.Header(), status: http.StatusOK}
	err = h(rec, r)
	// The client may have left; the key must still be settled.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if err == nil && rec.status >= 200 && rec.status < 300 {
		if cerr := s.DB.CompleteIdempotencyKey(ctx, res, postgres.Response{Status: rec.status, Body: rec.body.Bytes()}); cerr != nil {
			s.Log.WarnContext(ctx, "idempotent response not stored; a retry after the in-flight timeout runs again",
				"route", k.Route, "err", cerr)
		}
	} else if rerr := s.DB.ReleaseIdempotencyKey(ctx, res); rerr != nil {
		s.Log.WarnContext(ctx, "idempotency key not released; it is in flight until the timeout", "route", k.Route, "err", rerr)
	}
	if err != nil {
		return err
	}
	w.WriteHeader(rec.status)
	_, _ = w.Write(rec.body.Bytes())
	return nil
}

// bufferedResponse holds a handler's response until its key is settled.
// Headers go straight to the real writer's map.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header         { return b.header }
func (b *bufferedResponse) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferedResponse) WriteHeader(status int)      { b.status = status }

// writeReplay answers a repeated request with the first response.
func writeReplay(w http.ResponseWriter, resp postgres.Response) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(replayedHeader, "true")
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body)
	return nil
}

// parseIdempotencyKey checks the header: exactly one value of 1–255
// visible ASCII characters (0x21–0x7E), or a 400 saying what is wrong.
func parseIdempotencyKey(values []string) (string, error) {
	if len(values) != 1 {
		return "", domain.Errorf(domain.EInvalid, "Idempotency-Key: send the header once")
	}
	key := values[0]
	if key == "" || len(key) > maxIdempotencyKeyLen {
		return "", domain.Errorf(domain.EInvalid, "Idempotency-Key: must be 1–%d characters, got %d", maxIdempotencyKeyLen, len(key))
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x21 || c > 0x7e {
			return "", domain.Errorf(domain.EInvalid, "Idempotency-Key: only visible ASCII characters are allowed (no spaces or control characters)")
		}
	}
	return key, nil
}

// requestHash is the SHA-256 identity of a keyed request (see the top of
// this file).
func requestHash(method, route, topologyID string, body []byte) []byte {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(method), []byte(route), []byte(strings.ToLower(topologyID)), canonicalJSON(body)} {
		h.Write(part)
		h.Write([]byte{0})
	}
	return h.Sum(nil)
}

// canonicalJSON re-encodes a JSON body with sorted object keys and no
// insignificant whitespace, numbers kept as written; an empty body is {}
// and anything that is not one JSON value is returned as is.
func canonicalJSON(body []byte) []byte {
	if len(bytes.TrimSpace(body)) == 0 {
		return []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return body
	}
	if _, err := dec.Token(); err != io.EOF {
		return body // trailing data
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return body
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n"))
}

// idempotency returns the key of a keyWithWrite request for the store, with
// how to render the response it records (what the handler then sends), or
// nil when the request has no key.
func idempotency[T any](r *http.Request, status int, render func(T) any) *postgres.Idempotent[T] {
	k, _ := r.Context().Value(idempotencyCtxKey{}).(*postgres.IdempotencyKey)
	if k == nil {
		return nil
	}
	return &postgres.Idempotent[T]{IdempotencyKey: *k, Respond: func(v T) (postgres.Response, error) {
		body, err := json.Marshal(render(v))
		if err != nil {
			return postgres.Response{}, err
		}
		// The bytes web.JSON writes for the same value.
		return postgres.Response{Status: status, Body: append(body, '\n')}, nil
	}}
}
