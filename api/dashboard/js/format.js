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
export const plural = (n, one, many) => `${n} ${n === 1 ? one : (many || one + 's')}`;
export const statusText = (st) => String(st || 'unknown').replace('_', ' ');

export function badge(status, extra) {
  return h('span', { class: `badge st-${status || 'unknown'}`, dataset: { status: status || '' }, ...(extra || {}) }, statusText(status));
}
export function mstate(state) {
  return h('span', { class: `mstate ms-${state}`, dataset: { state } }, state);
}

const OP_LABELS = {
  add_lan: 'add LAN', remove_lan: 'remove LAN', update_lan: 'update LAN',
  add_decky: 'add decky', attach_decky: 'attach decky', detach_decky: 'detach decky',
  remove_decky: 'remove decky', update_decky: 'update decky',
};
export const opLabel = (op) => OP_LABELS[op] || op || '?';

const moved = (o) => (o.x != null || o.y != null ? `moved to ${Math.round(o.x ?? 0)}, ${Math.round(o.y ?? 0)}` : '');
const join = (parts) => parts.filter(Boolean).join(' · ');

// summarize is a short human line for an op's payload.
export function summarize(op, p) {
  p = p || {};
  const svc = (a) => (Array.isArray(a) ? (a.length ? a.join(', ') : 'no services') : '');
  switch (op) {
    case 'add_lan':
      return join([`${p.name || '?'} ${p.subnet || '(next free /24)'}`, p.is_dmz === true ? 'DMZ' : '', moved(p)]);
    case 'remove_lan': return `${p.name || '?'}`;
    case 'update_lan': {
      const pt = p.patch || {};
      const parts = [];
      if (pt.name != null) parts.push(`rename to ${pt.name}`);
      if (pt.subnet != null) parts.push(`subnet ${pt.subnet}`);
      if (pt.is_dmz != null) parts.push(pt.is_dmz ? 'make DMZ' : 'not DMZ');
      return join([p.name || '?', ...parts, moved({ x: p.x ?? pt.x, y: p.y ?? pt.y })]);
    }
    case 'add_decky':
      return join([`${p.name || '?'} on ${p.lan || '?'}${p.ip ? ' at ' + p.ip : ''}`, svc(p.services || []),
        p.archetype || '', p.forwards_l3 === true ? 'forwards L3' : '', moved(p)]);
    case 'attach_decky':
      return join([`${p.decky || '?'} to ${p.lan || '?'}${p.ip ? ' at ' + p.ip : ''}`, p.forwards_l3 === true ? 'forwards L3' : '']);
    case 'detach_decky': return `${p.decky || '?'} from ${p.lan || '?'}`;
    case 'remove_decky': return `${p.decky || '?'}`;
    case 'update_decky': {
      const parts = [];
      if (Array.isArray(p.services)) parts.push(`services: ${svc(p.services)}`);
      for (const [k, v] of Object.entries(p.patch || {})) parts.push(`${k} = ${typeof v === 'string' ? v : JSON.stringify(v)}`);
      if (p.force === true) parts.push('force');
      return join([p.decky || '?', ...parts, moved(p)]);
    }
    default: return JSON.stringify(p);
  }
}

// topicTopology returns the topology id of an event's bus topic.
export function topicTopology(topic) {
  const m = /^topology\.([^.]+)\./.exec(topic || '');
  return m ? m[1] : '';
}
