// mazenet dashboard: one live stream for every tab of the browser.
//
// The SSE process caps each user's concurrent streams (DOMAIN §12), so ten
// open tabs must not take ten slots. One tab — the leader, whoever holds the
// Web Lock below — opens the overview stream (GET /api/v1/stream: every
// topology's events) and relays every frame to the other tabs over a
// BroadcastChannel; pages filter what concerns them. When the leader closes
// (or signs out) the browser hands the lock to the next tab, which resumes
// the stream exactly after the last event id it saw relayed, so a hand-over
// neither loses nor repeats an event. Without Web Locks or BroadcastChannel
// every tab simply streams on its own.
import { LiveStream } from './stream.js';
import { topicTopology } from './format.js';

const LOCK = 'mazenet-stream-leader';
const CHANNEL = 'mazenet-stream';
const PING_MS = 4000;
const PEER_TTL_MS = 12000;
const SEEN_MAX = 4000;

// topologyOf returns the topology an event belongs to.
export function topologyOf(data) {
  const p = (data && data.payload) || {};
  return p.topology_id || topicTopology(data && data.topic);
}

class Hub {
  constructor() {
    this.id = Math.random().toString(36).slice(2);
    this.subs = new Set();
    this.state = { kind: 'idle' };
    this.leader = false;
    this.running = false;
    this.tabs = 1;
    this.cap = 0; // the user's stream cap, once a 429 told us
    this.lastId = '';
    this.seen = new Set();
    this.overview = null; // Map id -> {id, name, status, in_flight}, kept current by events
    this.snapshots = 0; // snapshots seen since this tab joined
    this.peers = new Map();
    this.channel = null;
    this.stream = null;
    this.onMessage = (ev) => this.handle(ev.data || {});
    this.onHide = () => this.hidden();
    this.onShow = (ev) => { if (ev.persisted && this.wasRunning) { this.wasRunning = false; this.start(); } };
    window.addEventListener('pagehide', this.onHide);
    window.addEventListener('pageshow', this.onShow);
  }

  get shared() { return !!(this.channel && navigator.locks); }

  // subscribe registers handlers {state, snapshot, event, serverError}; it
  // returns the function that unsubscribes.
  subscribe(handlers) {
    this.subs.add(handlers);
    if (handlers.state) handlers.state(this.state);
    return () => this.subs.delete(handlers);
  }

  emit(kind, ...args) {
    for (const s of [...this.subs]) {
      try { if (s[kind]) s[kind](...args); } catch (e) { setTimeout(() => { throw e; }); }
    }
  }

  post(msg) {
    if (!this.channel) return;
    try { this.channel.postMessage(msg); } catch (e) { /* closed */ }
  }

  // start joins the browser's stream (after sign-in).
  start() {
    if (this.running) return;
    this.running = true;
    this.tabs = 1;
    if (typeof BroadcastChannel === 'function') {
      this.channel = new BroadcastChannel(CHANNEL);
      this.channel.addEventListener('message', this.onMessage);
    }
    if (!this.shared) { this.lead(); return; }
    this.abort = new AbortController();
    navigator.locks.request(LOCK, { signal: this.abort.signal }, () => new Promise((resolve) => {
      this.releaseLock = resolve;
      if (!this.running) { resolve(); return; }
      this.lead();
    })).catch(() => { /* aborted: signed out or page hidden before it led */ });
    this.setState({ kind: 'connecting', follower: true });
    this.post({ t: 'hello', from: this.id });
    this.pinger = setInterval(() => this.post({ t: 'ping', from: this.id }), PING_MS);
  }

  // stop leaves the stream (sign-out); the next tab in line takes over.
  stop() {
    if (!this.running) return;
    this.running = false;
    clearInterval(this.pinger);
    clearInterval(this.peerTimer);
    if (this.stream) { this.stream.stop(); this.stream = null; }
    if (this.leader) this.post({ t: 'state', st: { kind: 'connecting' } });
    this.leader = false;
    if (this.releaseLock) { this.releaseLock(); this.releaseLock = null; }
    if (this.abort) { this.abort.abort(); this.abort = null; }
    this.post({ t: 'bye', from: this.id });
    if (this.channel) { this.channel.removeEventListener('message', this.onMessage); this.channel.close(); this.channel = null; }
    this.peers.clear();
    this.overview = null;
    this.snapshots = 0;
    this.setState({ kind: 'idle' });
  }

  // hidden gives the slot back at once when the page goes away, instead of
  // waiting for the SSE process to notice the closed connection.
  hidden() {
    if (!this.running) return;
    this.wasRunning = true;
    this.stop();
  }

  lead() {
    if (!this.running || this.leader) return;
    this.leader = true;
    this.stream = new LiveStream('/stream', {
      state: (st) => { this.setState(st); this.post({ t: 'state', st, cap: this.cap }); },
      snapshot: (d) => { this.applySnapshot(d); this.post({ t: 'snapshot', d }); },
      event: (name, d, id) => { if (this.accept(id)) { this.applyEvent(name, d, id); this.post({ t: 'event', name, d, id }); } },
      serverError: (msg) => { this.emit('serverError', msg); this.post({ t: 'serverError', msg }); },
    });
    this.post({ t: 'lead', from: this.id });
    this.peerTimer = setInterval(() => this.countTabs(), PING_MS);
    this.countTabs();
    this.stream.start(this.lastId);
  }

  handle(m) {
    switch (m.t) {
      case 'hello':
      case 'ping':
        if (!this.leader) return;
        this.peers.set(m.from, Date.now());
        if (m.t === 'hello') {
          this.post({ t: 'welcome', to: m.from, st: this.state, cap: this.cap, lastId: this.lastId,
            overview: this.overview ? [...this.overview.values()] : null });
        }
        this.countTabs();
        return;
      case 'bye':
        if (this.leader) { this.peers.delete(m.from); this.countTabs(); }
        return;
      case 'lead':
        // A new leader: introduce ourselves so it counts this tab.
        if (!this.leader) this.post({ t: 'hello', from: this.id });
        return;
      case 'welcome':
        if (m.to !== this.id || this.leader) return;
        if (m.lastId && !this.lastId) this.lastId = m.lastId;
        if (m.cap) this.cap = m.cap;
        if (m.overview && !this.overview) {
          this.overview = new Map(m.overview.map((t) => [t.id, Object.assign({}, t)]));
          this.snapshots++;
          this.emit('snapshot', { topologies: m.overview, resume: 'none' }, { relayed: true, cached: true, first: this.snapshots === 1 });
        }
        this.setState(m.st);
        return;
      case 'state':
        if (this.leader) return;
        if (m.cap) this.cap = m.cap;
        this.setState(m.st);
        return;
      case 'snapshot':
        if (!this.leader) this.applySnapshot(m.d);
        return;
      case 'event':
        if (!this.leader && this.accept(m.id)) this.applyEvent(m.name, m.d, m.id);
        return;
      case 'serverError':
        if (!this.leader) this.emit('serverError', m.msg);
        return;
      case 'tabs':
        if (!this.leader && m.n !== this.tabs) { this.tabs = m.n; this.setState(this.state); }
        return;
      case 'retry':
        if (this.leader && this.stream) this.stream.retryNow();
        return;
      case 'note':
        this.emit('note', m.kind, m.data);
        return;
    }
  }

  countTabs() {
    const now = Date.now();
    for (const [id, at] of this.peers) if (now - at > PEER_TTL_MS) this.peers.delete(id);
    const n = 1 + this.peers.size;
    if (n !== this.tabs) {
      this.tabs = n;
      this.post({ t: 'tabs', n });
      this.setState(this.state);
    }
  }

  // accept drops an event id seen before (a replay after a hand-over may
  // overlap what was already relayed).
  accept(id) {
    if (!id) return true;
    if (this.seen.has(id)) return false;
    this.seen.add(id);
    if (this.seen.size > SEEN_MAX) this.seen.delete(this.seen.values().next().value);
    this.lastId = id;
    return true;
  }

  setState(st) {
    if (st && st.kind === 'full' && st.cap) this.cap = st.cap;
    this.state = Object.assign({}, st);
    this.emit('state', this.state);
  }

  applySnapshot(d) {
    this.overview = new Map((d.topologies || []).map((t) => [t.id, {
      id: t.id, name: t.name, status: t.status,
      in_flight: Array.isArray(t.in_flight) ? t.in_flight.length : Number(t.in_flight) || 0,
    }]));
    this.snapshots++;
    this.emit('snapshot', d, { relayed: !this.leader, first: this.snapshots === 1 });
  }

  applyEvent(name, d, id) {
    const tid = topologyOf(d);
    if (this.overview && tid) {
      const cur = this.overview.get(tid);
      if (cur) {
        const p = d.payload || {};
        if (name === 'status' && p.state) cur.status = p.state;
        if (name === 'mutation.enqueued') cur.in_flight++;
        if (name === 'mutation.applied' || name === 'mutation.failed') cur.in_flight = Math.max(0, cur.in_flight - 1);
      }
    }
    this.emit('event', name, d, id);
  }

  // note tells the browser's other tabs about something that has no event
  // on the stream (a topology this tab deleted).
  note(kind, data) { this.post({ t: 'note', kind, data }); }

  // retry asks the leader to reconnect now (the Retry button).
  retry() {
    if (!this.running) return;
    if (this.leader && this.stream) this.stream.retryNow();
    else this.post({ t: 'retry' });
  }

  // live reports whether events are flowing.
  get live() { return this.state.kind === 'live' || this.state.kind === 'incomplete'; }
}

// hub is the tab's handle on the browser-wide stream.
export const hub = new Hub();
