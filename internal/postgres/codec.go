package postgres

import (
	"encoding/json"
	"fmt"

	"github.com/decnet/mazenet/internal/domain"
)

// decodeEvent turns an outbox row back into a domain.Event.
func decodeEvent(r eventRow) (domain.Event, error) {
	ev := domain.Event{TopologyID: r.TopologyID, Seq: r.Seq, Name: r.Name}
	if err := json.Unmarshal(r.Data, &ev); err != nil {
		return ev, fmt.Errorf("postgres: decode event %s/%d: %w", r.TopologyID, r.Seq, err)
	}
	return ev, nil
}
