package domain

import "fmt"

// Status is a topology's lifecycle status (DOMAIN §3).
type Status string

// The seven statuses.
const (
	StatusPending     Status = "pending"
	StatusDeploying   Status = "deploying"
	StatusActive      Status = "active"
	StatusDegraded    Status = "degraded"
	StatusFailed      Status = "failed"
	StatusTearingDown Status = "tearing_down"
	StatusTornDown    Status = "torn_down"
)

// Statuses lists every status in lifecycle order.
var Statuses = []Status{StatusPending, StatusDeploying, StatusActive, StatusDegraded, StatusFailed, StatusTearingDown, StatusTornDown}

// transitions is the legal-next-state table of DOMAIN §3. Anything absent is
// illegal, including every self-transition.
var transitions = map[Status][]Status{
	StatusPending:     {StatusDeploying, StatusTornDown},
	StatusDeploying:   {StatusActive, StatusFailed, StatusDegraded, StatusTearingDown},
	StatusActive:      {StatusDegraded, StatusTearingDown},
	StatusDegraded:    {StatusActive, StatusTearingDown},
	StatusFailed:      {StatusTearingDown},
	StatusTearingDown: {StatusTornDown, StatusDegraded},
	StatusTornDown:    nil,
}

// Valid reports whether s is one of the seven statuses.
func (s Status) Valid() bool {
	_, ok := transitions[s]
	return ok
}

// Live reports whether the mutation queue is open: active or degraded.
func (s Status) Live() bool { return s == StatusActive || s == StatusDegraded }

// CanTransition reports whether from→to is a legal transition.
func CanTransition(from, to Status) bool {
	for _, next := range transitions[from] {
		if next == to {
			return true
		}
	}
	return false
}

// CheckTransition returns a conflict error for an illegal transition.
func CheckTransition(from, to Status) error {
	if !CanTransition(from, to) {
		return Errorf(EConflict, "Illegal status transition '%s' -> '%s'", from, to)
	}
	return nil
}

// Action names an operation gated on the topology's status (DOMAIN §3).
type Action int

// The gated actions.
const (
	ActionEnqueue Action = iota
	ActionEditPending
	ActionDeploy
	ActionTeardown
	ActionDelete
	ActionHeal
)

var actionStatuses = map[Action][]Status{
	ActionEnqueue:     {StatusActive, StatusDegraded},
	ActionEditPending: {StatusPending},
	ActionDeploy:      {StatusPending},
	ActionTeardown:    {StatusActive, StatusDegraded, StatusFailed, StatusDeploying},
	ActionDelete:      {StatusPending, StatusFailed, StatusTornDown},
	ActionHeal:        {StatusDegraded},
}

// Allows reports whether action a is allowed in status s.
func (a Action) Allows(s Status) bool {
	for _, ok := range actionStatuses[a] {
		if ok == s {
			return true
		}
	}
	return false
}

// CheckAction returns the 409 DOMAIN §3 prescribes when a is not allowed in s.
func CheckAction(a Action, s Status) error {
	if a.Allows(s) {
		return nil
	}
	switch a {
	case ActionEnqueue:
		return Errorf(EConflict, "Topology is '%s'; the mutation queue is only open for 'active' or 'degraded' topologies. Deploy it first, or edit it while pending.", s)
	case ActionEditPending:
		return Errorf(EConflict, "Topology is '%s'; direct edits are only allowed while 'pending'. Use the mutation queue for live topologies.", s)
	case ActionDeploy:
		return Errorf(EConflict, "Topology is '%s'; only 'pending' topologies can be deployed", s)
	case ActionTeardown:
		return Errorf(EConflict, "Topology is '%s'; only 'active', 'degraded', 'failed' or 'deploying' topologies can be torn down", s)
	case ActionDelete:
		return Errorf(EConflict, "Topology is '%s'; only 'pending', 'failed' or 'torn_down' topologies can be deleted", s)
	case ActionHeal:
		return Errorf(EConflict, "Topology is '%s'; only 'degraded' topologies can be healed", s)
	}
	return Errorf(EConflict, "Topology is '%s'", s)
}

// ReasonHealed is the status reason of a heal's degraded → active (D12).
const ReasonHealed = "healed"

// String implements fmt.Stringer for log lines.
func (a Action) String() string { return fmt.Sprintf("action(%d)", int(a)) }
