// mazenet dashboard: dialogs and the deploy / tear down / delete actions.

import { API, CAN_DELETE, CAN_DEPLOY, CAN_TEARDOWN } from './config.js';
import { append, h } from './dom.js';
import { api } from './api.js';
import { toast } from './toast.js';
import { state } from './state.js';

// confirmDialog shows a small modal and resolves true when confirmed.
export function confirmDialog(title, body, okLabel, danger) {
  return new Promise((resolve) => {
    const dlg = h('dialog', { class: 'dialog' });
    const done = (v) => { dlg.close(); dlg.remove(); resolve(v); };
    append(dlg,
      h('h3', { text: title }),
      h('p', { text: body }),
      h('div', { class: 'dialog-actions' },
        h('button', { class: 'btn btn-ghost', type: 'button', text: 'Cancel', onclick: () => done(false) }),
        h('button', { class: `btn ${danger ? 'btn-danger' : 'btn-primary'}`, type: 'button', text: okLabel, onclick: () => done(true) })));
    dlg.addEventListener('cancel', (ev) => { ev.preventDefault(); done(false); });
    document.body.appendChild(dlg);
    dlg.showModal();
  });
}

// Lifecycle actions shared by the list and the topology page.
export async function lifecycle(action, t, after) {
  const verbs = { deploy: 'Deploy', teardown: 'Tear down', delete: 'Delete' };
  if (action === 'teardown' && !await confirmDialog(`Tear down ${t.name}?`,
    'Every decky and network of this topology is stopped. This cannot be undone; the topology ends torn down.', 'Tear down', true)) return;
  if (action === 'delete' && !await confirmDialog(`Delete ${t.name}?`,
    'The topology, its LANs, deckies, mutation history and status events are removed for good.', 'Delete', true)) return;
  try {
    if (action === 'delete') await api('DELETE', `${API}/topologies/${t.id}`);
    else await api('POST', `${API}/topologies/${t.id}/${action}`);
    toast(`${verbs[action]}: ${t.name} — ${action === 'delete' ? 'deleted' : 'requested'}.`, 'info');
    after && after(action);
  } catch (e) {
    toast(`${verbs[action]} ${t.name}: ${e.detail}`);
    after && after('error');
  }
}

export function lifecycleButtons(t, after, size) {
  if (!state.isAdmin) return [];
  const cls = `btn ${size || 'btn-sm'}`;
  const out = [];
  if (CAN_DEPLOY.includes(t.status)) out.push(h('button', { class: `${cls} btn-primary act-deploy`, type: 'button', text: 'Deploy', onclick: () => lifecycle('deploy', t, after) }));
  if (CAN_TEARDOWN.includes(t.status)) out.push(h('button', { class: `${cls} btn-warn act-teardown`, type: 'button', text: 'Tear down', onclick: () => lifecycle('teardown', t, after) }));
  if (CAN_DELETE.includes(t.status)) out.push(h('button', { class: `${cls} btn-danger-ghost act-delete`, type: 'button', text: 'Delete', onclick: () => lifecycle('delete', t, after) }));
  return out;
}
