// mazenet dashboard: one EventSource on an SSE path, kept open.
import { API, EVENT_NAMES, REFUSALS, SSE_BASE } from './config.js';
import { api } from './api.js';

// slotCap reads the cap out of the SSE process's 429 detail,
// "SSE connection limit (5) reached"; 0 when it is not there.
function slotCap(detail) {
  const m = /\((\d+)\)/.exec(detail || '');
  return m ? Number(m[1]) : 0;
}

// LiveStream keeps one EventSource open on an SSE path. It never relies on
// EventSource's own reconnect (the ticket in the URL is single use): on any
// error it closes the source and reconnects itself with a fresh ticket and
// the last event id seen, backing off with jitter.
//
// A handshake refused with 429 (every slot of the user's connection cap is
// taken, by other browsers or devices) is not an error to give up on: the
// stream says so (state "full", with the cap) and keeps asking every few
// seconds, so it comes back by itself when a slot frees. Refusals with 401
// (REFUSALS in a row), 403 or 404 stop it ("offline", with the reason) until
// start() is called again. A stream the server ends with `event: revoked`
// re-authenticates at once; a 401 on the ticket request then ends the
// session (login screen) instead of reconnecting.
export class LiveStream {
  constructor(path, handlers) {
    this.path = path;
    this.on = handlers;
    this.lastId = '';
    this.es = null;
    this.timer = null;
    this.failures = 0; // consecutive failed attempts
    this.refused = 0; // consecutive 401 answers to the handshake
    this.full = 0; // consecutive 429 answers
    this.stopped = true;
    this.state = { kind: 'idle' };
  }

  // start connects; resumeFrom (an event id) asks for every event after it.
  start(resumeFrom) {
    if (resumeFrom) this.lastId = resumeFrom;
    clearTimeout(this.timer);
    if (this.es) { this.es.close(); this.es = null; }
    this.stopped = false;
    this.failures = 0;
    this.refused = 0;
    this.full = 0;
    this.setState({ kind: 'connecting' });
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.es) { this.es.close(); this.es = null; }
    this.setState({ kind: 'idle' });
  }

  setState(st) {
    this.state = st;
    if (this.on.state) this.on.state(st);
  }

  async ticketURL() {
    const t = await api('POST', API + '/auth/sse-ticket');
    let url = `${SSE_BASE}${API}${this.path}?ticket=${encodeURIComponent(t.ticket)}`;
    if (this.lastId) url += '&lastEventId=' + encodeURIComponent(this.lastId);
    return url;
  }

  async connect() {
    if (this.stopped) return;
    let url;
    try {
      url = await this.ticketURL();
    } catch (e) {
      if (this.stopped) return;
      if (e.status === 401 || e.status === 403) { this.halt(e.detail); return; }
      this.failures++;
      this.retry(`Ticket: ${e.detail}`);
      return;
    }
    if (this.stopped) return;
    const es = new EventSource(url);
    this.es = es;
    let opened = false;
    es.onopen = () => { opened = true; };
    es.addEventListener('snapshot', (ev) => {
      if (this.es !== es) return;
      opened = true;
      this.failures = 0;
      this.refused = 0;
      this.full = 0;
      let data = {};
      try { data = JSON.parse(ev.data); } catch (e) { /* keep {} */ }
      this.setState({ kind: data.resume === 'incomplete' ? 'incomplete' : 'live', resume: data.resume || 'none', since: Date.now() });
      if (this.on.snapshot) this.on.snapshot(data);
    });
    const frame = (name) => (ev) => {
      if (this.es !== es) return;
      if (ev.lastEventId) this.lastId = ev.lastEventId;
      let data = {};
      try { data = JSON.parse(ev.data); } catch (e) { /* keep {} */ }
      if (this.on.event) this.on.event(name, data, ev.lastEventId || '');
    };
    for (const n of EVENT_NAMES) es.addEventListener(n, frame(n));
    // `event: revoked`: the credential this stream lives on was revoked
    // (logout, password or role change, deleted user, expiry). Ask for a
    // fresh ticket, once: with a dead token that request answers 401, which
    // ends the session (api.js shows the login screen) and halts this stream,
    // so it never loops. The short pause lets a sign-out under way in this or
    // another tab (it revokes the token too) stop the stream first, so a
    // deliberate sign-out never asks with the dead token.
    es.addEventListener('revoked', () => {
      if (this.es !== es) return;
      es.close();
      this.es = null;
      this.schedule({ kind: 'connecting' }, Math.round(500 + Math.random() * 500));
    });
    es.addEventListener('message', frame('message'));
    es.addEventListener('error', (ev) => {
      if (this.es !== es) return;
      if (typeof ev.data === 'string' && ev.data) {
        // The server's own `event: error` frame; it closes the stream next.
        let msg = 'Stream interrupted';
        try { msg = JSON.parse(ev.data).message || msg; } catch (e) { /* keep */ }
        if (this.on.serverError) this.on.serverError(msg);
        return;
      }
      es.close();
      this.es = null;
      this.failed(opened);
    });
  }

  // failed decides what to do after a connection attempt ended. An
  // EventSource hides the HTTP status of a refused handshake, so we ask the
  // same endpoint once more with fetch (with its own fresh ticket) to learn
  // it, and abort that request at once if it turns out to be a 200.
  async failed(opened) {
    this.failures++;
    if (opened) { this.retry('Connection lost'); return; }
    const probe = await this.probe();
    if (this.stopped) return;
    if (probe.status === 429) {
      this.full++;
      this.refused = 0;
      this.waitForSlot(probe.detail);
      return;
    }
    this.full = 0;
    if (probe.status === 401) {
      this.refused++;
      if (this.refused >= REFUSALS) { this.halt(`${probe.detail} (HTTP ${probe.status})`); return; }
    } else if (probe.status === 403 || probe.status === 404) {
      this.halt(`${probe.detail} (HTTP ${probe.status})`);
      return;
    }
    this.retry(probe.status ? `${probe.detail} (HTTP ${probe.status})` : probe.detail);
  }

  async probe() {
    let url;
    try { url = await this.ticketURL(); } catch (e) { return { status: e.status, detail: e.detail }; }
    const ac = new AbortController();
    const timeout = setTimeout(() => ac.abort(), 8000);
    try {
      const res = await fetch(url, { headers: { Accept: 'text/event-stream' }, cache: 'no-store', signal: ac.signal });
      if (res.ok) { ac.abort(); return { status: res.status, detail: 'OK' }; }
      let detail = `HTTP ${res.status}`;
      try { const b = await res.json(); if (b && b.detail) detail = b.detail; } catch (e) { /* not JSON */ }
      return { status: res.status, detail };
    } catch (e) {
      return { status: 0, detail: 'SSE server unreachable (or it does not allow this origin)' };
    } finally {
      clearTimeout(timeout);
    }
  }

  retry(reason) {
    if (this.stopped) return;
    // The first retry is quick but spread (150–900 ms) so that the clients
    // of an SSE process that just went away do not all land on the next
    // one at once; later ones back off exponentially, 50–100 % jitter.
    const n = Math.max(1, this.failures);
    const delay = Math.round(n === 1 ? 150 + Math.random() * 750
      : Math.min(15000, 1000 * Math.pow(2, n - 1)) * (0.5 + Math.random() * 0.5));
    this.schedule({ kind: 'reconnecting', reason, attempt: n, at: Date.now() + delay }, delay);
  }

  // waitForSlot asks again every 2–10 s (jittered) while every slot is taken.
  waitForSlot(detail) {
    const delay = Math.round(Math.min(10000, 2000 * this.full) * (0.75 + Math.random() * 0.25));
    this.schedule({ kind: 'full', reason: detail, cap: slotCap(detail), attempt: this.full, at: Date.now() + delay }, delay);
  }

  schedule(st, delay) {
    this.setState(st);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  // retryNow skips the wait of a pending retry.
  retryNow() {
    if (this.stopped || this.es) { if (this.stopped) this.start(); return; }
    clearTimeout(this.timer);
    this.connect();
  }

  halt(reason) {
    if (this.es) { this.es.close(); this.es = null; }
    clearTimeout(this.timer);
    this.stopped = true;
    this.setState({ kind: 'offline', reason });
  }
}
