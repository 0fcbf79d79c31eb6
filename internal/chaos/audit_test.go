package chaos

// The audit: what PostgreSQL, the documented Redis keys and every client
// say after a scenario, turned into precise findings (which mutation, which
// client, which id, which call) and one row of docs/RELIABILITY.md.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/redis/go-redis/v9"
)

// maxExamples bounds the examples printed per finding.
const maxExamples = 8

// audit collects one scenario's findings and figures.
type audit struct {
	name string
	mode string
	// allowFailed accepts a mutation failure the scenario expects (a
	// teardown fails the open mutations of its topology).
	allowFailed func(reason string) bool
	load        string
	faults      string
	census      *census

	mu       sync.Mutex
	failures []string
	notes    []string
	recovery []string

	accepted, lost, doubled, failedMut, unacked      int
	dupEvents, missing, excused, outOfOrder, badIDs  int
	incomplete, falseIncomplete, clients, staleCalls int
}

func newAudit(name, mode string, c *census) *audit {
	return &audit{name: name, mode: mode, census: c}
}

// failf records a failure.
func (a *audit) failf(format string, args ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failures = append(a.failures, fmt.Sprintf(format, args...))
}

// notef records an observation that is not a failure.
func (a *audit) notef(format string, args ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.notes = append(a.notes, fmt.Sprintf(format, args...))
}

// group records n failures of one kind with a few examples.
func (a *audit) group(n int, header string, examples []string) {
	if n == 0 {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d× %s", n, header)
	for i, e := range examples {
		if i == maxExamples {
			fmt.Fprintf(&b, "\n      … and %d more", len(examples)-maxExamples)
			break
		}
		fmt.Fprintf(&b, "\n      - %s", e)
	}
	a.failf("%s", b.String())
}

// recovered records one measured recovery figure; bound > 0 asserts it.
func (a *audit) recovered(what string, d time.Duration, ok bool, bound time.Duration) {
	s := fmt.Sprintf("%s %s", what, d.Round(10*time.Millisecond))
	switch {
	case !ok:
		s = fmt.Sprintf("%s: not reached (gave up after %s)", what, d.Round(time.Second))
		a.failf("%s: not reached (gave up after %s)", what, d.Round(time.Second))
	case bound > 0 && d > bound:
		a.failf("%s took %s, over the bound %s", what, d.Round(10*time.Millisecond), bound)
	}
	a.mu.Lock()
	a.recovery = append(a.recovery, s)
	a.mu.Unlock()
}

// figure records a recovery figure as text.
func (a *audit) figure(s string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recovery = append(a.recovery, s)
}

// mutRow is one mutation as PostgreSQL holds it.
type mutRow struct {
	ID, Topo, Op, State, Name, Reason string
	Seq                               int64
}

func (m *mutRow) String() string {
	return fmt.Sprintf("%s (seq %d, %s %s on %s)", short(m.ID), m.Seq, m.Op, m.Name, short(m.Topo))
}

// dbMutations reads every mutation of the topologies, in seq order.
func dbMutations(ctx context.Context, db *sql.DB, topos []string) ([]*mutRow, error) {
	rows, err := db.QueryContext(ctx, `
SELECT id::text, topology_id::text, seq, op, state, coalesce(reason, ''),
       coalesce(payload->>'name', payload->>'decky', '')
  FROM mutations WHERE topology_id::text = ANY($1) ORDER BY topology_id, seq`, pq.Array(topos))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*mutRow
	for rows.Next() {
		m := &mutRow{}
		if err := rows.Scan(&m.ID, &m.Topo, &m.Seq, &m.Op, &m.State, &m.Reason, &m.Name); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// openMutations counts pending/applying mutations of the topologies (-1 when
// PostgreSQL cannot answer).
func openMutations(ctx context.Context, db *sql.DB, topos []string) int {
	var n int
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM mutations
	  WHERE topology_id::text = ANY($1) AND state IN ('pending', 'applying')`, pq.Array(topos)).Scan(&n)
	if err != nil {
		return -1
	}
	return n
}

// terminal reports whether every given mutation is applied or failed.
func terminal(ctx context.Context, db *sql.DB, mids []string) bool {
	if len(mids) == 0 {
		return true
	}
	var n int
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM mutations
	  WHERE id::text = ANY($1) AND state IN ('applied', 'failed')`, pq.Array(mids)).Scan(&n)
	return err == nil && n == len(mids)
}

func terminalName(state string) string {
	switch state {
	case "applied":
		return "mutation.applied"
	case "failed":
		return "mutation.failed"
	}
	return ""
}

// auditMutations checks that every accepted mutation is terminal and
// applied (the ops chosen make a second application fail), and lists rows
// the api committed without answering 202.
func (a *audit) auditMutations(ctx context.Context, db *sql.DB, ld *loader, topos []string) []*mutRow {
	rows, err := dbMutations(ctx, db, topos)
	if err != nil {
		a.failf("cannot read mutations from PostgreSQL: %v", err)
		return nil
	}
	byID := map[string]*mutRow{}
	for _, m := range rows {
		byID[m.ID] = m
	}
	acc := ld.accepted()
	a.accepted = len(acc)
	var lost, doubled, failed []string
	accepted := map[string]bool{}
	for _, at := range acc {
		accepted[at.MID] = true
		m := byID[at.MID]
		switch {
		case m == nil:
			lost = append(lost, fmt.Sprintf("mutation %s (%s) answered 202 but is not in the database", short(at.MID), at))
		case m.State == "pending" || m.State == "applying":
			lost = append(lost, fmt.Sprintf("mutation %s still %s (answered 202 %s)", m, m.State, at.At.Format("15:04:05.000")))
		case m.State == "failed" && a.allowFailed != nil && a.allowFailed(m.Reason):
		case m.State == "failed" && (strings.Contains(m.Reason, "already exists") || strings.Contains(m.Reason, "not found")):
			doubled = append(doubled, fmt.Sprintf("mutation %s failed %q: its op was applied twice (or its add was)", m, m.Reason))
		case m.State == "failed":
			failed = append(failed, fmt.Sprintf("mutation %s failed %q", m, m.Reason))
		}
	}
	// Attempts by (topology, op, name), to say what the api answered for a
	// row nobody saw a 202 for.
	answered := map[string]*attempt{}
	for _, at := range ld.all() {
		answered[at.Topo+"/"+at.Op+"/"+at.Name] = at
	}
	var unacked, unackedLost []string
	for _, m := range rows {
		if accepted[m.ID] {
			continue
		}
		at := answered[m.Topo+"/"+m.Op+"/"+m.Name]
		if at == nil {
			continue // the scenario's own probes and set-up ops
		}
		what := "no answer"
		if at.Status != 0 {
			what = "status " + strconv.Itoa(at.Status)
		}
		line := fmt.Sprintf("mutation %s is in the database (%s) although the api answered %s", m, m.State, what)
		if at.Status == 0 {
			a.notef("%s (a client timeout: allowed, Idempotency-Key covers it)", line)
		} else {
			unacked = append(unacked, line)
		}
		if m.State == "pending" || m.State == "applying" {
			unackedLost = append(unackedLost, fmt.Sprintf("mutation %s committed without a 202 is still %s", m, m.State))
		}
	}
	a.lost = len(lost) + len(unackedLost)
	a.doubled = len(doubled)
	a.failedMut = len(failed)
	a.unacked = len(unacked)
	a.group(len(lost), "accepted mutations lost (not applied or failed)", lost)
	a.group(len(unackedLost), "unacknowledged mutations stuck open", unackedLost)
	a.group(len(doubled), "mutations applied twice (the second application failed)", doubled)
	a.group(len(failed), "accepted mutations failed", failed)
	a.group(len(unacked), "mutations committed although the api did not answer 202 (a client retry would duplicate them)", unacked)
	return rows
}

// eventID is a parsed SSE id "<a>-<b>", compared as a pair.
type eventID struct{ a, b uint64 }

func parseEventID(s string) (eventID, bool) {
	x, y, ok := strings.Cut(s, "-")
	if !ok {
		return eventID{}, false
	}
	a, err1 := strconv.ParseUint(x, 10, 64)
	b, err2 := strconv.ParseUint(y, 10, 64)
	return eventID{a, b}, err1 == nil && err2 == nil
}

func (x eventID) less(y eventID) bool { return x.a < y.a || (x.a == y.a && x.b < y.b) }

// statusCounts reads, per topology, how many transitions to each status
// happened after the status_events id baseline.
func statusCounts(ctx context.Context, db *sql.DB, topos []string, baseline int64) (map[string]map[string]int, error) {
	rows, err := db.QueryContext(ctx, `SELECT topology_id::text, to_status, count(*) FROM status_events
	  WHERE id > $1 AND topology_id::text = ANY($2) GROUP BY 1, 2`, baseline, pq.Array(topos))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]map[string]int{}
	for rows.Next() {
		var tid, st string
		var n int
		if err := rows.Scan(&tid, &st, &n); err != nil {
			return nil, err
		}
		if out[tid] == nil {
			out[tid] = map[string]int{}
		}
		out[tid][st] = n
	}
	return out, rows.Err()
}

// statusBaseline is the newest status_events id (clients connected after it
// expect every later transition).
func statusBaseline(ctx context.Context, db *sql.DB) (int64, error) {
	var id int64
	err := db.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM status_events`).Scan(&id)
	return id, err
}

// auditClients checks what every client saw against PostgreSQL: each event
// exactly once (by mutation and name, and by id), ids never going back,
// none missing unless a snapshot said `resume: incomplete`, and the order of
// DOMAIN §9.1 (per mutation, and mutation N's terminal event before N+1's
// applying).
func (a *audit) auditClients(ctx context.Context, db *sql.DB, clients []*sseClient, rows []*mutRow, topos []string, baseline int64) {
	a.clients = len(clients)
	byTopo := map[string][]*mutRow{}
	for _, m := range rows {
		byTopo[m.Topo] = append(byTopo[m.Topo], m)
	}
	mutByID := map[string]*mutRow{}
	for _, m := range rows {
		mutByID[m.ID] = m
	}
	status, err := statusCounts(ctx, db, topos, baseline)
	if err != nil {
		a.failf("cannot read status_events: %v", err)
	}
	var dupKey, dupID, backwards, missing, missingSummary, order, phantom, falseInc, noneWithID, statusDiff []string
	var nDupKey, nDupID, nBack, nMissing, nOrder, nPhantom, nExcused, nStatusMissing, nStatusDup int
	for _, c := range clients {
		evs, conns, _, _ := c.snapshot()
		who := fmt.Sprintf("client %s (topology %s)", c.name, short(c.topo))
		excuse := false
		for i, cn := range conns {
			switch {
			case cn.Resume == "incomplete":
				a.incomplete++
				if c.noIncomplete {
					// A false `incomplete` excuses nothing: what it
					// hides is reported as missing.
					falseInc = append(falseInc, fmt.Sprintf("%s connection %d (Last-Event-ID %s at %s) was told resume: incomplete although it never lagged by the 1,000 retained events",
						who, i, cn.ResumeID, cn.Started.Format("15:04:05.000")))
				} else {
					excuse = true
				}
			case cn.Resume == "none" && cn.ResumeID != "":
				noneWithID = append(noneWithID, fmt.Sprintf("%s connection %d sent Last-Event-ID %s and got resume: none",
					who, i, cn.ResumeID))
				excuse = true
			case cn.Resume == "none" && i > 0:
				excuse = true // nothing seen yet: the snapshot is all it can have
			}
		}
		// Duplicates and id order.
		count := map[string][]string{}
		ids := map[string]int{}
		var prev eventID
		var prevStr string
		first := map[string]int{}
		for i, e := range evs {
			if e.ID != "" {
				if ids[e.ID]++; ids[e.ID] == 2 {
					nDupID++
					dupID = append(dupID, fmt.Sprintf("%s got id %s twice (%s)", who, e.ID, e.Name))
				}
				id, ok := parseEventID(e.ID)
				if !ok {
					nBack++
					backwards = append(backwards, fmt.Sprintf("%s got malformed id %q", who, e.ID))
				} else if prevStr != "" && !prev.less(id) {
					nBack++
					backwards = append(backwards, fmt.Sprintf("%s got id %s after %s (connection %d, %s)", who, e.ID, prevStr, e.Conn, e.Name))
				}
				if ok {
					prev, prevStr = id, e.ID
				}
			}
			if e.MID == "" {
				continue
			}
			count[e.key()] = append(count[e.key()], e.ID)
			if _, ok := first[e.key()]; !ok {
				first[e.key()] = i
			}
			m := mutByID[e.MID]
			if m == nil || (e.Name == "mutation.applied" && m.State != "applied") ||
				(e.Name == "mutation.failed" && m.State != "failed") {
				nPhantom++
				state := "unknown mutation"
				if m != nil {
					state = "the database says " + m.State
				}
				phantom = append(phantom, fmt.Sprintf("%s got %s for %s but %s", who, e.Name, short(e.MID), state))
			}
		}
		for k, ids := range count {
			if len(ids) > 1 {
				nDupKey++
				mid, name, _ := strings.Cut(k, "/")
				dupKey = append(dupKey, fmt.Sprintf("%s got %s of mutation %s %d× (ids %s)", who, name, short(mid), len(ids), strings.Join(ids, ", ")))
			}
		}
		// Missing and order against the database.
		clientMissing := 0
		var prevTerm int = -1
		var prevMut *mutRow
		for _, m := range byTopo[c.topo] {
			want := []string{"mutation.enqueued"}
			if m.State != "pending" {
				want = append(want, "mutation.applying")
			}
			if t := terminalName(m.State); t != "" {
				want = append(want, t)
			}
			idx := make([]int, len(want))
			for i, name := range want {
				j, ok := first[m.ID+"/"+name]
				idx[i] = j
				if !ok {
					idx[i] = -1
					if excuse {
						nExcused++
					} else {
						nMissing++
						clientMissing++
						missing = append(missing, fmt.Sprintf("%s never got %s of mutation %s", who, name, m))
					}
				}
			}
			for i := 1; i < len(idx); i++ {
				if idx[i] >= 0 && idx[i-1] >= 0 && idx[i] < idx[i-1] {
					nOrder++
					order = append(order, fmt.Sprintf("%s got %s of %s before its %s", who, want[i], m, want[i-1]))
				}
			}
			if len(idx) > 1 && idx[1] >= 0 && prevTerm >= 0 && idx[1] < prevTerm {
				nOrder++
				order = append(order, fmt.Sprintf("%s got mutation.applying of %s before the terminal event of %s", who, m, prevMut))
			}
			if len(idx) == 3 && idx[2] >= 0 {
				prevTerm, prevMut = idx[2], m
			}
		}
		if clientMissing > 0 {
			var resumes []string
			for _, cn := range conns {
				if cn.Resume != "" {
					resumes = append(resumes, cn.Resume)
				}
			}
			missingSummary = append(missingSummary, fmt.Sprintf("%s missed %d events in all (snapshots said resume: %s)",
				who, clientMissing, strings.Join(resumes, ", ")))
		}
		// Status events: as many of each as PostgreSQL's transitions.
		seenStatus := map[string]int{}
		for _, e := range evs {
			if e.Name == "status" {
				seenStatus[e.State]++
			}
		}
		for st, n := range status[c.topo] {
			if seenStatus[st] < n && !excuse {
				nStatusMissing += n - seenStatus[st]
				statusDiff = append(statusDiff, fmt.Sprintf("%s got %d `status` events to %s, PostgreSQL has %d transitions", who, seenStatus[st], st, n))
			}
		}
		for st, n := range seenStatus {
			if n > status[c.topo][st] {
				nStatusDup += n - status[c.topo][st]
				statusDiff = append(statusDiff, fmt.Sprintf("%s got %d `status` events to %s, PostgreSQL has %d transitions", who, n, st, status[c.topo][st]))
			}
		}
	}
	sort.Strings(dupKey)
	a.dupEvents = nDupKey + nDupID + nStatusDup
	a.missing = nMissing + nStatusMissing
	a.excused = nExcused
	a.outOfOrder = nOrder
	a.badIDs = nBack
	a.falseIncomplete = len(falseInc)
	a.group(nDupKey, "duplicated events (same mutation and event name delivered again)", dupKey)
	a.group(nDupID, "duplicated ids (same SSE id delivered again)", dupID)
	a.group(nBack, "ids going backwards on a stream", backwards)
	a.group(nMissing, "events missing (no `resume: incomplete` excuses them)", append(missingSummary, missing...))
	a.group(len(statusDiff), "`status` event counts differing from PostgreSQL", statusDiff)
	a.group(nOrder, "events out of order (DOMAIN §9.1)", order)
	a.group(nPhantom, "events contradicting PostgreSQL", phantom)
	a.group(len(falseInc), "`resume: incomplete` for events that were not really gone", falseInc)
	a.group(len(noneWithID), "resume ids ignored", noneWithID)
	if nExcused > 0 {
		a.notef("%d events not delivered to clients that were told `resume: incomplete` (or had no id yet) and refetched", nExcused)
	}
}

// excusedSince is when the client last connected with a snapshot that, by
// auditClients' rules, excuses the events it misses (`resume: incomplete` to
// a client that may lag by the retention, `resume: none` although it sent an
// id or on a reconnect before it saw any id); zero if none did.
func (c *sseClient) excusedSince() time.Time {
	_, conns, _, _ := c.snapshot()
	var since time.Time
	for i, cn := range conns {
		if (cn.Resume == "incomplete" && !c.noIncomplete) || (cn.Resume == "none" && (cn.ResumeID != "" || i > 0)) {
			since = cn.Started
		}
	}
	return since
}

// caughtUp reports whether every client saw the terminal event of every
// given mutation of its topology. A client that was told its missed events
// are gone (see excusedSince) only owes the mutations posted after that
// connection: the earlier ones may be exactly what retention dropped, which
// it can never receive and the audit does not ask of it.
func caughtUp(clients []*sseClient, muts []*attempt, states map[string]string) bool {
	for _, c := range clients {
		since := c.excusedSince()
		for _, m := range muts {
			if m.Topo != c.topo || m.At.Before(since) {
				continue
			}
			name := terminalName(states[m.MID])
			if name == "" || !c.has(m.MID, name) {
				return false
			}
		}
	}
	return true
}

// mutationStates reads the state of each mutation (empty map on error).
func mutationStates(ctx context.Context, db *sql.DB, mids []string) map[string]string {
	out := map[string]string{}
	rows, err := db.QueryContext(ctx, `SELECT id::text, state FROM mutations WHERE id::text = ANY($1)`, pq.Array(mids))
	if err != nil {
		return out
	}
	defer rows.Close()
	for rows.Next() {
		var id, st string
		if rows.Scan(&id, &st) == nil {
			out[id] = st
		}
	}
	return out
}

func mids(as []*attempt) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.MID
	}
	return out
}

// adminUUID reads the seeded admin's uuid.
func adminUUID(ctx context.Context, db *sql.DB) (string, error) {
	var id string
	err := db.QueryRowContext(ctx, `SELECT uuid::text FROM users WHERE username = 'admin'`).Scan(&id)
	return id, err
}

// slotsLive counts a user's unexpired SSE slot leases in the documented slot
// set (`<prefix>sse:slots:<user uuid>`, scored by expiry in Redis ms).
func slotsLive(ctx context.Context, rdb *redis.Client, user string) (live, total int64, err error) {
	now, err := rdb.Time(ctx).Result()
	if err != nil {
		return 0, 0, err
	}
	key := "decnet:sse:slots:" + user
	live, err = rdb.ZCount(ctx, key, "("+strconv.FormatInt(now.UnixMilli(), 10), "+inf").Result()
	if err != nil {
		return 0, 0, err
	}
	total, err = rdb.ZCard(ctx, key).Result()
	return live, total, err
}

// matCall is one entry of the test materializer's call log (DOMAIN §15 and
// the fencing extension).
type matCall struct {
	Call       string `json:"call"`
	TopologyID string `json:"topology_id"`
	LAN        string `json:"lan"`
	Decky      string `json:"decky"`
	Fence      *int64 `json:"fence"`
	MutationID string `json:"mutation_id"`
	Seq        *int64 `json:"seq"`
	Rejected   bool   `json:"rejected"`
	raw        string
}

// auditCalls checks the call log of one topology: among accepted calls,
// fences and mutation seqs never decrease, nothing follows Teardown, and the
// deckies the accepted calls leave spawned are the database's.
// Calls without the seq field (before the fencing extension) are mapped to
// their mutation by what they name (Spawn d7 → add_decky d7).
func (a *audit) auditCalls(ctx context.Context, db *sql.DB, rdb *redis.Client, topo string, rows []*mutRow) (accepted, rejected int) {
	raw, err := rdb.LRange(ctx, "decnet:test:materializer:calls", 0, -1).Result()
	if err != nil {
		a.failf("cannot read the materializer call log: %v", err)
		return 0, 0
	}
	seqOf := map[string]int64{}
	for _, m := range rows {
		if m.Topo != topo {
			continue
		}
		switch m.Op {
		case "add_decky":
			seqOf["Spawn/"+m.Name] = m.Seq
		case "remove_decky":
			seqOf["Remove/"+m.Name] = m.Seq
		case "add_lan":
			seqOf["CreateNetwork/"+m.Name] = m.Seq
		}
	}
	var stale []string
	var lastSeq, lastFence int64 = -1, -1
	var lastSeqCall, lastFenceCall string
	teardown := ""
	for i, s := range raw {
		var c matCall
		if json.Unmarshal([]byte(s), &c) != nil || c.TopologyID != topo {
			continue
		}
		c.raw = s
		if c.Rejected {
			rejected++
			continue
		}
		accepted++
		desc := fmt.Sprintf("call #%d %s", i, s)
		if c.Fence != nil {
			if *c.Fence < lastFence {
				stale = append(stale, fmt.Sprintf("%s has fence %d after %s", desc, *c.Fence, lastFenceCall))
			} else {
				lastFence, lastFenceCall = *c.Fence, desc
			}
		}
		if c.Call == "Teardown" {
			teardown = desc
			continue
		}
		if c.Call == "Deploy" {
			continue
		}
		var seq int64 = -1
		if c.Seq != nil {
			seq = *c.Seq
		} else if v, ok := seqOf[c.Call+"/"+c.Decky+c.LAN]; ok {
			seq = v
		}
		if teardown != "" {
			stale = append(stale, fmt.Sprintf("%s (mutation seq %d) follows the topology's %s", desc, seq, teardown))
		}
		if seq < 0 {
			continue
		}
		if seq < lastSeq {
			stale = append(stale, fmt.Sprintf("%s is for mutation seq %d after %s (seq %d): a stale call", desc, seq, lastSeqCall, lastSeq))
		} else {
			lastSeq, lastSeqCall = seq, desc
		}
	}
	// What the accepted calls leave running must match the database: the
	// last accepted call for each decky decides whether its units exist.
	last := map[string]string{}
	for _, s := range raw {
		var c matCall
		if json.Unmarshal([]byte(s), &c) != nil || c.TopologyID != topo || c.Rejected {
			continue
		}
		switch c.Call {
		case "Spawn", "Remove":
			last[c.Decky] = c.Call
		case "Teardown":
			clear(last)
		}
	}
	if teardown == "" && len(last) > 0 {
		inDB := map[string]bool{}
		if rows, err := db.QueryContext(ctx, `SELECT name FROM deckies WHERE topology_id::text = $1`, topo); err == nil {
			for rows.Next() {
				var n string
				if rows.Scan(&n) == nil {
					inDB[n] = true
				}
			}
			rows.Close()
		}
		var names []string
		for n := range last {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			switch {
			case last[n] == "Spawn" && !inDB[n]:
				stale = append(stale, fmt.Sprintf("decky %s: the last accepted call is Spawn but the database has no such decky (its units leak)", n))
			case last[n] == "Remove" && inDB[n]:
				stale = append(stale, fmt.Sprintf("decky %s: the last accepted call is Remove but the decky is in the database", n))
			}
		}
	}
	a.staleCalls += len(stale)
	a.group(len(stale), fmt.Sprintf("out-of-order or stale materializer calls on topology %s", short(topo)), stale)
	return accepted, rejected
}

// cpuOver samples the processes' CPU time over d and returns the busiest
// one's share of a core.
func cpuOver(ps []*proc, d time.Duration) (map[string]float64, error) {
	before := map[*proc]time.Duration{}
	for _, p := range ps {
		t, err := cpuTime(p.pid())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		before[p] = t
	}
	start := time.Now()
	time.Sleep(d) // a measurement window, not a wait for a condition
	el := time.Since(start)
	out := map[string]float64{}
	for _, p := range ps {
		t, err := cpuTime(p.pid())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		out[p.name] = float64(t-before[p]) / float64(el)
	}
	return out, nil
}

// result is the row's verdict.
func (a *audit) result() string {
	if len(a.failures) == 0 {
		return "pass"
	}
	return fmt.Sprintf("**FAIL** (%d findings)", len(a.failures))
}

// row is the scenario's line of docs/RELIABILITY.md.
func (a *audit) row(cmd string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	dup := fmt.Sprintf("%d applied twice, %d events", a.doubled, a.dupEvents)
	lost := fmt.Sprintf("%d mutations, %d events", a.lost, a.missing)
	if a.excused > 0 {
		lost += fmt.Sprintf(" (+%d behind `incomplete`)", a.excused)
	}
	order := fmt.Sprintf("%d events, %d ids", a.outOfOrder, a.badIDs)
	if a.staleCalls > 0 {
		order += fmt.Sprintf(", %d materializer calls", a.staleCalls)
	}
	rec := strings.Join(a.recovery, "; ")
	if rec == "" {
		rec = "–"
	}
	return fmt.Sprintf("| %s (%s) | %s | %s | %d | %s | %s | %s | %s | %s | %s | `%s` |",
		a.name, a.mode, a.load, a.faults, a.accepted, lost, dup, order, a.census.fiveXX(), rec, a.result(), cmd)
}

// rowHeader is the table header matching row.
const rowHeader = "| Scenario | Load | Faults injected | Accepted | Lost | Duplicated | Out of order | 5xx by status | Recovery | Result | Reproduce |\n|---|---|---|---|---|---|---|---|---|---|---|"

// finish logs the report, fails the test with every finding and returns the
// scenario's row for the summary.
func (a *audit) finish(t *testing.T) string {
	t.Helper()
	cmd := fmt.Sprintf("MAZENET_CHAOS=%s go test -count=1 -v -run '^%s$' ./internal/chaos/", a.mode, strings.ReplaceAll(t.Name(), "/", "$/^"))
	row := a.row(cmd)
	a.mu.Lock()
	defer a.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "\n=== %s (%s): %s\n", a.name, a.mode, a.result())
	fmt.Fprintf(&b, "load: %s\nfaults: %s\naccepted: %d, lost: %d, applied twice: %d, failed: %d, committed without 202: %d\n",
		a.load, a.faults, a.accepted, a.lost, a.doubled, a.failedMut, a.unacked)
	fmt.Fprintf(&b, "clients: %d, duplicated events: %d, missing: %d (+%d excused), out of order: %d, bad ids: %d, `incomplete` told: %d (false: %d)\n",
		a.clients, a.dupEvents, a.missing, a.excused, a.outOfOrder, a.badIDs, a.incomplete, a.falseIncomplete)
	fmt.Fprintf(&b, "recovery: %s\n5xx: %s\nanswers by route:\n%s\n", strings.Join(a.recovery, "; "), a.census.fiveXX(), a.census.detail())
	for _, n := range a.notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	fmt.Fprintf(&b, "row: %s\n", row)
	t.Log(b.String())
	if len(a.failures) > 0 {
		t.Errorf("%s: %d findings:\n  * %s", a.name, len(a.failures), strings.Join(a.failures, "\n  * "))
	}
	return row
}

// writeRows prints the collected rows and appends them to the file named by
// MAZENET_CHAOS_REPORT (scripts/chaos.sh pastes them into RELIABILITY.md).
func writeRows(rows []string) {
	if len(rows) == 0 {
		return
	}
	out := rowHeader + "\n" + strings.Join(rows, "\n") + "\n"
	fmt.Fprintf(os.Stderr, "\nchaos results (%s):\n%s", time.Now().Format(time.RFC3339), out)
	if p := os.Getenv("MAZENET_CHAOS_REPORT"); p != "" {
		_ = os.WriteFile(p, []byte(out), 0o644)
	}
}
