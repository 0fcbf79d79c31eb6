package domain

import (
	"encoding/json"
	"time"
)

// Event names: the SSE `event:` field of each family (DOMAIN §9.1).
const (
	EventEnqueued = "mutation.enqueued"
	EventApplying = "mutation.applying"
	EventApplied  = "mutation.applied"
	EventFailed   = "mutation.failed"
	EventStatus   = "status"
)

// Event is one committed transition of a topology. The JSON form is the SSE
// envelope of DOMAIN §9.2; TopologyID, Seq, GSeq and Name travel beside it.
// Seq is the per-topology outbox sequence assigned in the transition's
// transaction. GSeq is the event's global position, stamped by the relay
// after commit (0 until then); together they are the event's durable SSE id
// "<gseq>-<seq>", which is what makes relaying and resuming exact.
type Event struct {
	TopologyID string          `json:"-"`
	Seq        int64           `json:"-"`
	GSeq       int64           `json:"-"`
	Name       string          `json:"-"`
	Topic      string          `json:"topic"`
	Type       string          `json:"type"`
	TS         float64         `json:"ts"`
	Payload    json.RawMessage `json:"payload"`
}

// NewEvent builds the envelope for a transition named name (one of the Event*
// constants) of topology tid at time now. payload must marshal to an object.
func NewEvent(tid, name string, payload any, now time.Time) (Event, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return Event{}, err
	}
	ev := Event{TopologyID: tid, Name: name, Payload: body, TS: float64(now.UnixMicro()) / 1e6}
	switch name {
	case EventStatus:
		ev.Type, ev.Topic = "status", "topology."+tid+".status"
	default:
		typ := name[len("mutation."):]
		ev.Type, ev.Topic = typ, "topology."+tid+".mutation."+typ
	}
	return ev, nil
}

// Envelope returns the JSON envelope of DOMAIN §9.2.
func (e Event) Envelope() []byte {
	b, _ := json.Marshal(e) // fields are plain; cannot fail
	return b
}

// StatusPayload is the payload of a `status` event (key `state`, D9).
type StatusPayload struct {
	State  Status  `json:"state"`
	From   Status  `json:"from,omitempty"`
	Reason *string `json:"reason"`
}
