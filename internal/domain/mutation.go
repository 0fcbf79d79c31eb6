package domain

import (
	"encoding/json"
	"time"
)

// Op names one of the eight mutation ops (DOMAIN §6).
type Op string

// The eight ops.
const (
	OpAddLAN      Op = "add_lan"
	OpRemoveLAN   Op = "remove_lan"
	OpAddDecky    Op = "add_decky"
	OpAttachDecky Op = "attach_decky"
	OpDetachDecky Op = "detach_decky"
	OpRemoveDecky Op = "remove_decky"
	OpUpdateDecky Op = "update_decky"
	OpUpdateLAN   Op = "update_lan"
)

// Ops lists the eight ops.
var Ops = []Op{OpAddLAN, OpRemoveLAN, OpAddDecky, OpAttachDecky, OpDetachDecky, OpRemoveDecky, OpUpdateDecky, OpUpdateLAN}

// Valid reports whether op is one of the eight.
func (op Op) Valid() bool {
	for _, o := range Ops {
		if o == op {
			return true
		}
	}
	return false
}

// MutationState is the lifecycle of one mutation (DOMAIN §4.1).
type MutationState string

// The four mutation states.
const (
	MutationPending  MutationState = "pending"
	MutationApplying MutationState = "applying"
	MutationApplied  MutationState = "applied"
	MutationFailed   MutationState = "failed"
)

// Mutation is one queued operator intent (DOMAIN §2.5). Seq is the
// per-topology FIFO order assigned at enqueue.
type Mutation struct {
	ID          string          `json:"id" db:"id"`
	TopologyID  string          `json:"topology_id" db:"topology_id"`
	Seq         int64           `json:"seq" db:"seq"`
	Op          Op              `json:"op" db:"op"`
	Payload     json.RawMessage `json:"payload" db:"payload"`
	State       MutationState   `json:"state" db:"state"`
	RequestedAt time.Time       `json:"requested_at" db:"requested_at"`
	AppliedAt   *time.Time      `json:"applied_at" db:"applied_at"`
	Reason      *string         `json:"reason" db:"reason"`
}
