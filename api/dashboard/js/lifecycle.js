// mazenet dashboard: dialogs and the deploy / tear down / delete / re-check
// actions, shared by the list and the topology page.
import { API, CAN_DELETE, CAN_DEPLOY, CAN_TEARDOWN } from './config.js';
import { append, h } from './dom.js';
import { api } from './api.js';
import { toast } from './toast.js';
import { state } from './state.js';
import { explainIssue, explainUnhealthy, stripIds } from './explain.js';
import { plural } from './format.js';

// dialog shows a modal built by body(dlg) and resolves with what done() is
// given. A <dialog> opened with showModal keeps focus inside and closes on
// Escape (which resolves undefined).
export function dialog(title, body, opts) {
  opts = opts || {};
  return new Promise((resolve) => {
    const prev = document.activeElement;
    const dlg = h('dialog', { class: `dialog${opts.wide ? ' dialog-wide' : ''}`, 'aria-labelledby': 'dlg-title' });
    const done = (v) => { if (dlg.open) dlg.close(); dlg.remove(); if (prev && prev.focus) prev.focus(); resolve(v); };
    append(dlg, h('h3', { id: 'dlg-title', text: title }), body(done));
    dlg.addEventListener('cancel', (ev) => { ev.preventDefault(); done(undefined); });
    document.body.appendChild(dlg);
    dlg.showModal();
    const first = dlg.querySelector('[autofocus], input, select, textarea') || dlg.querySelector('.dialog-actions .btn:last-child');
    if (first) first.focus();
  });
}

// confirmDialog resolves true when confirmed.
export function confirmDialog(title, text, okLabel, danger) {
  return dialog(title, (done) => [
    h('p', { text }),
    h('div', { class: 'dialog-actions' },
      h('button', { class: 'btn btn-ghost', type: 'button', text: 'Cancel', onclick: () => done(false) }),
      h('button', { class: `btn ${danger ? 'btn-danger' : 'btn-primary'}`, type: 'button', text: okLabel, onclick: () => done(true) })),
  ]).then((v) => v === true);
}

// issuesDialog lists validation issues (and unhealthy units) in plain words.
export function issuesDialog(title, intro, issues, unhealthy) {
  const items = (issues || []).map((i) => h('li', { class: `issue sev-${i.severity || 'error'}`, dataset: { code: i.code || '' } },
    h('span', { text: explainIssue(i) }), h('span', { class: 'issue-code', text: i.code || '' })))
    .concat((unhealthy || []).map((u) => h('li', { class: 'issue sev-error', dataset: { code: 'UNHEALTHY' } }, h('span', { text: explainUnhealthy(u) }))));
  return dialog(title, (done) => [
    h('p', { text: intro }),
    items.length ? h('ul', { class: 'issues', id: 'issues-list' }, items) : null,
    h('div', { class: 'dialog-actions' }, h('button', { class: 'btn btn-primary', type: 'button', text: 'OK', onclick: () => done(true) })),
  ], { wide: true });
}

const VERBS = { deploy: 'Deploy', teardown: 'Tear down', delete: 'Delete', heal: 'Re-check' };

// lifecycle runs one action on topology t; after(outcome) is told
// 'deploy' | 'teardown' | 'delete' | 'heal' on success, 'error' otherwise.
export async function lifecycle(action, t, after) {
  if (action === 'teardown' && !await confirmDialog(`Tear down ${t.name}?`,
    'Every decky and network of this topology is stopped. This cannot be undone; the topology ends torn down.', 'Tear down', true)) return;
  if (action === 'delete' && !await confirmDialog(`Delete ${t.name}?`,
    'The topology, its LANs, deckies, mutation history and status events are removed for good.', 'Delete', true)) return;
  try {
    if (action === 'delete') await api('DELETE', `${API}/topologies/${t.id}`);
    else await api('POST', `${API}/topologies/${t.id}/${action}`);
    if (action === 'heal') toast(`${t.name} is valid and healthy again: back to active.`, 'info');
    else toast(`${VERBS[action]}: ${t.name} — ${action === 'delete' ? 'deleted' : 'requested'}.`, 'info');
    if (after) after(action);
  } catch (e) {
    const issues = Array.isArray(e.body.issues) ? e.body.issues : [];
    const unhealthy = Array.isArray(e.body.unhealthy) ? e.body.unhealthy : [];
    if (action === 'heal' && (e.status === 404 || e.status === 405) && !/topology not found/i.test(e.detail)) {
      toast('Re-check is not available on this server yet (POST /topologies/{id}/heal is missing).');
    } else if (issues.length || unhealthy.length) {
      const errors = issues.filter((i) => i.severity !== 'warning').length + unhealthy.length;
      await issuesDialog(action === 'heal' ? `${t.name} is still degraded` : `${VERBS[action]} ${t.name}: refused`,
        action === 'heal' ? `Re-check found ${plural(errors, 'problem')}; the topology stays degraded until they are fixed.`
          : `The topology is not valid yet (${plural(errors, 'problem')}); nothing was changed.`, issues, unhealthy);
    } else {
      toast(`${VERBS[action]} ${t.name}: ${stripIds(e.detail)}`);
    }
    if (after) after('error');
  }
}

// lifecycleButtons are the actions an admin may take in status t.status;
// noHeal leaves Re-check out (the topology page offers it in its banner).
export function lifecycleButtons(t, after, size, noHeal) {
  if (!state.isAdmin) return [];
  const cls = `btn ${size || 'btn-sm'}`;
  const out = [];
  if (t.status === 'degraded' && !noHeal) out.push(h('button', { class: `${cls} btn-primary act-heal`, type: 'button', text: 'Re-check', title: 'Re-validate the topology and check its units; back to active when all is well', onclick: () => lifecycle('heal', t, after) }));
  if (CAN_DEPLOY.includes(t.status)) out.push(h('button', { class: `${cls} btn-primary act-deploy`, type: 'button', text: 'Deploy', onclick: () => lifecycle('deploy', t, after) }));
  if (CAN_TEARDOWN.includes(t.status)) out.push(h('button', { class: `${cls} btn-warn act-teardown`, type: 'button', text: 'Tear down', onclick: () => lifecycle('teardown', t, after) }));
  if (CAN_DELETE.includes(t.status)) out.push(h('button', { class: `${cls} btn-danger-ghost act-delete`, type: 'button', text: 'Delete', onclick: () => lifecycle('delete', t, after) }));
  return out;
}
