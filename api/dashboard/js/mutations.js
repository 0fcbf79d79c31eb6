// mazenet dashboard: what the dashboard knows about mutations, and the
// outcome of the ones this tab queued.
import { API } from './config.js';
import { api } from './api.js';
import { hub, topologyOf } from './hub.js';
import { explainFailure } from './explain.js';
import { opLabel, summarize, toDate } from './format.js';
import { toast } from './toast.js';

const RANK = { pending: 0, applying: 1, applied: 2, failed: 2 };
const rank = (st) => RANK[st] ?? 0;

// isOpen reports whether a mutation state is not final.
export const isOpen = (st) => rank(st) < 2;

// mutationFromEvent is the partial row a mutation.* event tells about.
export function mutationFromEvent(name, d) {
  const p = (d && d.payload) || {};
  if (!p.mutation_id || !name.startsWith('mutation.')) return null;
  const state = name.slice('mutation.'.length);
  const at = d.ts != null ? toDate(d.ts) : null;
  const row = { id: p.mutation_id, topology_id: topologyOf(d), op: p.op, state };
  if (p.payload) row.payload = p.payload;
  if (state === 'enqueued') { row.state = 'pending'; row.requested_at = at; }
  if (state === 'applied' || state === 'failed') row.applied_at = at;
  if (state === 'failed') row.reason = p.reason || '';
  return row;
}

// MutationBook holds one topology's mutations as told by the REST list, the
// stream and this tab's own 202s, in whatever order those arrive. A row only
// ever moves forward (pending → applying → applied | failed): a late 202, a
// replayed event or a list fetched before the last event can never bring a
// finished mutation back. So the open rows are exactly the server's open
// mutations once the latest word about each has arrived.
export class MutationBook {
  constructor() { this.rows = new Map(); }

  // merge folds a (partial) row in; it reports whether anything changed.
  merge(row) {
    if (!row || !row.id) return false;
    const cur = this.rows.get(row.id);
    if (!cur) {
      const r = Object.assign({}, row);
      r.state = r.state || 'pending';
      this.rows.set(row.id, r);
      return true;
    }
    let changed = false;
    for (const k of ['op', 'payload', 'requested_at', 'seq', 'topology_id']) {
      if (cur[k] == null && row[k] != null) { cur[k] = row[k]; changed = true; }
    }
    // A row of the API's list (it has a seq) carries the server's times;
    // a 202 or an event only guessed them.
    if (row.seq != null) {
      for (const k of ['requested_at', 'applied_at']) {
        if (row[k] != null && String(row[k]) !== String(cur[k])) { cur[k] = row[k]; changed = true; }
      }
    }
    if (row.state && rank(row.state) > rank(cur.state)) { cur.state = row.state; changed = true; }
    if (!isOpen(cur.state) && row.state === cur.state) {
      for (const k of ['applied_at', 'reason']) {
        if (cur[k] == null && row[k] != null) { cur[k] = row[k]; changed = true; }
      }
    }
    return changed;
  }

  get(id) { return this.rows.get(id) || null; }

  // open returns the pending and applying rows, oldest first.
  open() { return this.sorted().filter((m) => isOpen(m.state)).reverse(); }

  // sorted returns every row, newest first.
  sorted() {
    const t = (m) => { const d = toDate(m.requested_at); return d ? d.getTime() : 0; };
    return [...this.rows.values()].sort((a, b) => (t(b) - t(a)) || ((b.seq || 0) - (a.seq || 0)));
  }
}

// Outcomes follows the mutations this tab queued to their end, whatever
// page is open: a watcher (the form's outcome line) is updated while it is
// on screen; when it is not, the end is told in a toast. Terminal events
// that arrive before the 202 that names their mutation are remembered, so a
// fast worker never leaves an outcome hanging.
class Outcomes {
  constructor() {
    this.tracked = new Map(); // mutation id -> entry
    this.finished = new Map(); // mutation id -> {state, reason}, recent terminal events
    this.started = false;
  }

  init() {
    if (this.started) return;
    this.started = true;
    hub.subscribe({
      event: (name, d) => this.onEvent(name, d),
      snapshot: (d, meta) => { if (!(meta && meta.cached) && d.resume !== 'complete') this.resync(); },
    });
  }

  // follow starts following mutation id of topology tid (info has op,
  // payload and the topology's name). fn(entry) is called now and on every
  // change while el is on screen; once el is gone, the end comes as a toast.
  follow(tid, id, info, el, fn) {
    let e = this.tracked.get(id);
    if (!e) {
      e = Object.assign({ id, tid, state: 'pending', reason: '', watchers: new Set(), told: false }, info);
      this.tracked.set(id, e);
    }
    if (el) e.watchers.add({ el, fn });
    if (fn) fn(e);
    const f = this.finished.get(id);
    if (f) this.advance(e, f.state, f.reason);
  }

  onEvent(name, d) {
    const row = mutationFromEvent(name, d);
    if (!row) return;
    if (!isOpen(row.state)) {
      this.finished.set(row.id, { state: row.state, reason: row.reason || '' });
      if (this.finished.size > 1000) this.finished.delete(this.finished.keys().next().value);
    }
    const e = this.tracked.get(row.id);
    if (e) this.advance(e, row.state, row.reason || '');
  }

  advance(e, state, reason) {
    if (state === e.state || rank(state) < rank(e.state) || !isOpen(e.state)) return;
    e.state = state;
    if (state === 'failed') e.reason = reason;
    let shown = false;
    for (const w of [...e.watchers]) {
      if (w.el && !w.el.isConnected) { e.watchers.delete(w); continue; }
      w.fn(e);
      shown = true;
    }
    if (!isOpen(state)) {
      if (!shown && !e.told) {
        e.told = true;
        const what = `${opLabel(e.op)} ${summarize(e.op, e.payload)}${e.topology ? ` in ${e.topology}` : ''}`;
        if (state === 'applied') toast(`Applied: ${what}.`, 'info');
        else toast(`Failed: ${what}. ${explainFailure(e.op, e.payload, e.reason)}`);
      }
      e.watchers.clear();
      this.tracked.delete(e.id);
    }
  }

  // resync asks the API about every mutation still followed after the
  // stream (re)connected, in case its end happened while it was down.
  async resync() {
    for (const e of [...this.tracked.values()]) {
      try {
        const m = await api('GET', `${API}/topologies/${e.tid}/mutations/${e.id}`);
        if (m && m.state) this.advance(e, m.state, m.reason || '');
      } catch (err) { /* the next event or resync will tell */ }
    }
  }
}

// outcomes is the tab's tracker of its own mutations.
export const outcomes = new Outcomes();
