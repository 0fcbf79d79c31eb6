// Package streamtest reads the event stream the way tests need to: all of
// it at once, without blocking. It reads through stream.Streams.ReadAll, the
// same call the SSE reader and the workers' tail make, so tests inspect the
// stream with the code production runs.
package streamtest

import (
	"context"

	"github.com/decnet/mazenet/internal/stream"
)

// page is how many entries one read asks for.
const page = 1000

// All returns up to count retained entries after id, oldest first, without
// blocking.
func All(ctx context.Context, s *stream.Streams, after stream.ID, count int64) ([]stream.Entry, error) {
	var out []stream.Entry
	for int64(len(out)) < count {
		es, err := s.ReadAll(ctx, after, -1, min(page, count-int64(len(out))))
		if err != nil {
			return nil, err
		}
		out = append(out, es...)
		if len(es) == 0 {
			break
		}
		after = es[len(es)-1].ID
	}
	return out, nil
}

// Topology returns up to count retained entries of one topology after id,
// oldest first: what that topology's SSE stream shows.
func Topology(ctx context.Context, s *stream.Streams, topologyID string, after stream.ID, count int64) ([]stream.Entry, error) {
	var out []stream.Entry
	for int64(len(out)) < count {
		es, err := s.ReadAll(ctx, after, -1, page)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			if e.TopologyID == topologyID && int64(len(out)) < count {
				out = append(out, e)
			}
		}
		if len(es) < page {
			break
		}
		after = es[len(es)-1].ID
	}
	return out, nil
}
