// mazenet dashboard: the live-stream indicator in the top bar. On a phone it
// is a dot; a tap (or click, or Enter) opens a panel that says in words
// what the state means and offers Retry.
import { append, clear, h } from './dom.js';
import { hub } from './hub.js';
import { plural } from './format.js';

const LABELS = {
  idle: 'not connected', connecting: 'connecting…', live: 'live', incomplete: 'live · resumed',
  reconnecting: 'reconnecting', full: 'no free stream', offline: 'offline',
};

function secondsLeft(st) { return Math.max(0, Math.ceil(((st.at || 0) - Date.now()) / 1000)); }

// explain says what a stream state means for the operator.
export function explainState(st) {
  const tabs = hub.tabs > 1 ? `, shared by ${plural(hub.tabs, 'open tab')} of this browser` : '';
  const cap = hub.cap ? ` Your account may hold ${plural(hub.cap, 'live stream')} at once.` : '';
  switch (st.kind) {
    case 'live':
      return `Live updates are on: this browser uses 1 live stream${tabs}.${cap}`;
    case 'incomplete':
      return `Live again, but some events were trimmed while the stream was away; the pages reloaded their data from the server. 1 live stream${tabs}.`;
    case 'connecting':
      return st.follower ? 'Joining the live stream another tab of this browser holds…' : 'Opening the live event stream…';
    case 'reconnecting': {
      const left = secondsLeft(st);
      return `The live stream dropped${st.reason && st.reason !== 'Connection lost' ? ` (${st.reason})` : ''}. Reconnecting${left ? ` in ${left} s` : ' now'} (attempt ${st.attempt || 1}).`;
    }
    case 'full': {
      const left = secondsLeft(st);
      const n = st.cap || hub.cap;
      return `${n ? `All ${n} of ${n}` : 'All'} live streams of your account are in use by other browsers or devices signed in as you. ` +
        `This browser connects by itself as soon as one is free (next try${left ? ` in ${left} s` : ' now'}); closing the dashboard elsewhere frees one.`;
    }
    case 'offline':
      return `Live updates stopped${st.reason ? `: ${st.reason}` : ''}. Use Retry to try again.`;
    default:
      return 'Not connected to live updates.';
  }
}

// Conn renders the indicator into its element and keeps it current.
export class Conn {
  constructor() {
    this.el = h('div', { id: 'conn', class: 'conn' });
    this.open = false;
    this.tick = null;
    this.unsub = hub.subscribe({ state: (st) => this.render(st) });
    this.onDoc = (ev) => { if (this.open && !this.el.contains(ev.target)) this.toggle(false); };
    this.onKey = (ev) => { if (this.open && ev.key === 'Escape') { this.toggle(false); this.btn && this.btn.focus(); } };
    document.addEventListener('click', this.onDoc);
    document.addEventListener('keydown', this.onKey);
  }

  destroy() {
    this.unsub();
    clearInterval(this.tick);
    document.removeEventListener('click', this.onDoc);
    document.removeEventListener('keydown', this.onKey);
  }

  toggle(open) {
    this.open = open;
    this.render(hub.state);
  }

  render(st) {
    const el = this.el;
    clearInterval(this.tick);
    clear(el);
    el.dataset.state = st.kind;
    const label = LABELS[st.kind] || st.kind;
    const text = h('span', { class: 'conn-text', text: label });
    this.btn = h('button', { class: 'conn-btn', type: 'button', 'aria-expanded': this.open ? 'true' : 'false',
      'aria-controls': 'conn-pop', 'aria-label': `Live updates: ${label}. Show details`, title: explainState(st),
      onclick: (ev) => { ev.stopPropagation(); this.toggle(!this.open); } },
    h('span', { class: 'conn-dot', 'aria-hidden': 'true' }), text);
    append(el, this.btn);
    const why = st.kind === 'reconnecting' && st.reason && st.reason !== 'Connection lost' ? st.reason
      : st.kind === 'full' || st.kind === 'offline' ? (st.reason || '') : '';
    if (why) el.appendChild(h('span', { class: 'conn-reason', text: why }));
    const retry = (st.kind === 'offline' || st.kind === 'full' || st.kind === 'reconnecting')
      ? h('button', { class: 'btn btn-xs conn-retry', type: 'button', text: 'Retry', onclick: (ev) => { ev.stopPropagation(); hub.retry(); } }) : null;
    if (retry && st.kind === 'offline') el.appendChild(retry);
    const msg = h('p', { class: 'conn-pop-text', text: explainState(st) });
    if (this.open) {
      el.appendChild(h('div', { id: 'conn-pop', class: 'conn-pop', role: 'status' }, msg,
        retry && st.kind !== 'offline' ? h('div', { class: 'conn-pop-actions' },
          h('button', { class: 'btn btn-xs', type: 'button', text: 'Retry now', onclick: (ev) => { ev.stopPropagation(); hub.retry(); } })) : null));
    }
    if (st.kind === 'reconnecting' || st.kind === 'full') {
      const upd = () => {
        const left = secondsLeft(st);
        if (st.kind === 'reconnecting') text.textContent = `reconnecting${left ? ' in ' + left + 's' : '…'}`;
        msg.textContent = explainState(st);
        this.btn.title = msg.textContent;
      };
      upd();
      this.tick = setInterval(upd, 500);
    }
  }
}
