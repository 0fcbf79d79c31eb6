// mazenet dashboard: transient notices in the top centre.

import { $, h } from './dom.js';

export function toast(msg, kind) {
  kind = kind || 'error';
  const box = $('#toasts');
  const el = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    h('span', { class: 'toast-msg', text: msg }),
    h('button', { class: 'toast-x', type: 'button', 'aria-label': 'Dismiss', text: '×', onclick: () => el.remove() }));
  box.appendChild(el);
  while (box.children.length > 5) box.firstChild.remove();
  setTimeout(() => el.remove(), kind === 'error' ? 10000 : 4500);
}
