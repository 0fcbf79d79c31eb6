// mazenet dashboard: formatting of times, states and op payloads.

import { h } from './dom.js';

export function toDate(v) {
  if (v == null) return null;
  if (typeof v === 'number') return new Date(v * 1000);
  const d = new Date(v);
  return isNaN(d) ? null : d;
}
const pad2 = (n) => String(n).padStart(2, '0');
export function fmtClock(v, ms) {
  const d = toDate(v);
  if (!d) return '—';
  const t = `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  return ms ? [t, h('span', { class: 'ms', text: '.' + String(d.getMilliseconds()).padStart(3, '0') })] : t;
}
export function fmtAgo(v) {
  const d = toDate(v);
  if (!d) return '—';
  const sec = Math.round((Date.now() - d.getTime()) / 1000);
  if (sec < 5) return 'just now';
  if (sec < 60) return `${sec}s ago`;
  if (sec < 3600) return `${Math.floor(sec / 60)}m ago`;
  if (sec < 86400) return `${Math.floor(sec / 3600)}h ago`;
  return d.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
}
export function fmtFull(v) { const d = toDate(v); return d ? d.toLocaleString() : ''; }
export const shortId = (id) => (id ? String(id).slice(0, 8) : '');
export function fmtDur(ms) {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 60000)} min`;
}

export function badge(status, extra) {
  return h('span', { class: `badge st-${status || 'unknown'}`, dataset: { status: status || '' }, ...(extra || {}) },
    String(status || 'unknown').replace('_', ' '));
}
export function mstate(state) {
  return h('span', { class: `mstate ms-${state}`, dataset: { state } }, state);
}

// A one-line human summary of an op's payload.
export function summarize(op, p) {
  p = p || {};
  const xy = (o) => (o.x != null || o.y != null ? ` @${o.x ?? '·'},${o.y ?? '·'}` : '');
  const svc = (a) => (Array.isArray(a) ? `[${a.join(', ')}]` : '');
  switch (op) {
    case 'add_lan':
      return `${p.name || '?'} ${p.subnet || '(auto subnet)'}${p.is_dmz === true ? ' · DMZ' : ''}${xy(p)}`;
    case 'remove_lan': return `${p.name || '?'}`;
    case 'update_lan': {
      const parts = Object.entries(p.patch || {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
      return `${p.name || '?'}${parts.length ? ' · ' + parts.join(' ') : ''}${xy(p)}`;
    }
    case 'add_decky':
      return `${p.name || '?'} → ${p.lan || '?'}${p.ip ? ' ' + p.ip : ''} ${svc(p.services || [])}` +
        `${p.archetype ? ' · ' + p.archetype : ''}${p.forwards_l3 === true ? ' · L3' : ''}`;
    case 'attach_decky':
      return `${p.decky || '?'} ⇄ ${p.lan || '?'}${p.ip ? ' ' + p.ip : ''}${p.forwards_l3 === true ? ' · L3' : ''}`;
    case 'detach_decky': return `${p.decky || '?'} ✕ ${p.lan || '?'}`;
    case 'remove_decky': return `${p.decky || '?'}`;
    case 'update_decky': {
      const parts = [];
      if (Array.isArray(p.services)) parts.push(`services=${svc(p.services)}`);
      for (const [k, v] of Object.entries(p.patch || {})) parts.push(`${k}=${JSON.stringify(v)}`);
      if (p.force === true) parts.push('force');
      return `${p.decky || '?'}${parts.length ? ' · ' + parts.join(' ') : ''}${xy(p)}`;
    }
    default: return JSON.stringify(p);
  }
}

// topicTopology returns the topology id of an event's bus topic.
export function topicTopology(topic) {
  const m = /^topology\.([^.]+)\./.exec(topic || '');
  return m ? m[1] : '';
}
