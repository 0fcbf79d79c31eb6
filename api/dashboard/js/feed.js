// mazenet dashboard: the activity feed of the topology page.

import { FEED_MAX } from './config.js';
import { $, h } from './dom.js';
import { badge, fmtClock, fmtDur, fmtFull, shortId, summarize } from './format.js';

export class FeedMethods {
  // feedAdd keeps the feed newest first by event time, so a replayed
  // history lands below the line that says the stream is live.
  feedAdd(li, ts) {
    const empty = $('.feed-empty', this.feedEl);
    if (empty) empty.remove();
    li.ts = ts || 0;
    this.lastTs = Math.max(this.lastTs || 0, li.ts);
    let at = this.feedEl.firstChild;
    while (at && at.ts > li.ts) at = at.nextSibling;
    this.feedEl.insertBefore(li, at);
    while (this.feedEl.children.length > FEED_MAX) this.feedEl.lastChild.remove();
  }

  feedSystem(text, kind) {
    const ts = Math.max(Date.now() / 1000, this.lastTs || 0);
    this.feedAdd(h('li', { class: `feed-item feed-sys sys-${kind || 'info'}`, dataset: { event: 'system' } },
      h('span', { class: 'time mono' }, fmtClock(ts, true)),
      h('span', { class: 'ev', text: 'stream' }),
      h('span', { class: 'body', text })), ts);
  }

  feedEvent(name, env, id, inner) {
    const p = env.payload || {};
    let body, state = '';
    if (name.startsWith('mutation.')) {
      state = name.slice(9);
      body = [h('span', { class: 'op', text: p.op || '?' }), inner ? h('span', { class: 'sum', text: summarize(p.op, inner) }) : null];
      const t0 = this.enqueuedAt.get(p.mutation_id);
      if ((state === 'applied' || state === 'failed') && t0 && env.ts) body.push(h('span', { class: 'took', text: `+${fmtDur((env.ts - t0) * 1000)}` }));
    } else if (name === 'status') {
      body = [h('span', { text: 'topology →' }), badge(p.state)];
    } else {
      body = [h('span', { class: 'sum', text: `${p.decky_name || ''} ${p.service_name || ''}`.trim() || JSON.stringify(p) })];
    }
    const reason = p.reason ? h('div', { class: 'reason', text: p.reason }) : null;
    this.feedAdd(h('li', { class: `feed-item ev-${state || name.replace(/\./g, '-')}`, dataset: { event: name, id: id || '', mutation: p.mutation_id || '' } },
      h('span', { class: 'time mono', title: fmtFull(env.ts) }, fmtClock(env.ts, true)),
      h('span', { class: `ev ev-tag-${state || 'other'}`, text: name }),
      h('span', { class: 'body' }, body, p.mutation_id ? h('span', { class: 'mid mono dim', text: shortId(p.mutation_id) }) : null,
        this.mine.has(p.mutation_id) ? h('span', { class: 'chip chip-xs chip-you', text: 'you' }) : null),
      reason), Number(env.ts) || Date.now() / 1000);
  }
}
