// mazenet dashboard: the activity feed of the topology page. It opens with
// the recent history read from the API (mutations and status changes),
// then adds every live event. Rows wrap instead of cutting text off.
import { FEED_MAX } from './config.js';
import { $, h } from './dom.js';
import { badge, fmtClock, fmtDur, fmtFull, opLabel, summarize, toDate } from './format.js';
import { explainFailure, explainStatusReason, stripIds } from './explain.js';

const HISTORY_MAX = 60;

const tsOf = (v) => { const d = toDate(v); return d ? d.getTime() / 1000 : 0; };

export class FeedMethods {
  // feedAdd keeps the feed newest first by event time, so history lands
  // below the line that says the stream is live.
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

  // feedHistory fills the feed from the mutation list and the status
  // history, for a page opened after things happened.
  feedHistory() {
    const items = [];
    for (const m of this.book.sorted().slice(0, HISTORY_MAX)) {
      items.push({ name: 'mutation.enqueued', ts: tsOf(m.requested_at), env: { payload: { mutation_id: m.id, op: m.op, payload: m.payload } }, inner: m.payload });
      if (m.state === 'applied' || m.state === 'failed') {
        items.push({ name: `mutation.${m.state}`, ts: tsOf(m.applied_at), env: { payload: { mutation_id: m.id, op: m.op, reason: m.reason } }, inner: m.payload });
      }
    }
    for (const e of this.statusEvents) items.push({ name: 'status', ts: tsOf(e.at), env: { payload: { state: e.to_status, from: e.from_status, reason: e.reason } } });
    items.sort((a, b) => b.ts - a.ts);
    for (const it of items.slice(0, HISTORY_MAX)) {
      it.env.ts = it.ts;
      this.feedEvent(it.name, it.env, '', it.inner, true);
    }
  }

  feedEvent(name, env, id, inner, history) {
    const p = env.payload || {};
    if (p.mutation_id) {
      const key = `${p.mutation_id}:${name}`;
      if (this.feedKeys.has(key)) return;
      this.feedKeys.add(key);
      if (this.feedKeys.size > 20000) this.feedKeys.delete(this.feedKeys.values().next().value);
    } else if (name === 'status') {
      // The API's status history and the event of one transition carry
      // times a little apart: one line per transition within a few
      // seconds. Two transitions to one state (deploying → active, then a
      // heal's degraded → active) are told apart by where they came from.
      const t = Number(env.ts) || 0;
      const seen = this.statusSeen || (this.statusSeen = []);
      if (seen.some((x) => x.state === p.state && (!x.from || !p.from || x.from === p.from) && Math.abs(x.ts - t) < 3)) return;
      seen.push({ state: p.state, from: p.from, ts: t });
    }
    let body, state = '';
    if (name.startsWith('mutation.')) {
      state = name.slice(9);
      body = [h('span', { class: 'op', text: opLabel(p.op) }), inner ? h('span', { class: 'sum', text: summarize(p.op, inner) }) : null];
      const m = this.book.get(p.mutation_id);
      const t0 = m && tsOf(m.requested_at);
      if ((state === 'applied' || state === 'failed') && t0 && env.ts) body.push(h('span', { class: 'took', text: `+${fmtDur((env.ts - t0) * 1000)}` }));
    } else if (name === 'status') {
      body = [h('span', { text: 'topology →' }), badge(p.state)];
    } else {
      body = [h('span', { class: 'sum', text: `${p.decky_name || ''} ${p.service_name || ''}`.trim() || stripIds(JSON.stringify(p)) }), h('span', { class: 'dim', text: name.replace('decky.', '').replace(/_/g, ' ') })];
    }
    const why = name === 'mutation.failed' ? explainFailure(p.op, inner || {}, p.reason) : name === 'status' ? explainStatusReason(p.state, p.reason) : '';
    const reason = why ? h('div', { class: 'reason', title: stripIds(p.reason || ''), text: why }) : null;
    const mine = this.mine.has(p.mutation_id);
    this.feedAdd(h('li', { class: `feed-item ev-${state || name.replace(/\./g, '-')}${history ? ' feed-hist' : ''}`, dataset: { event: name, id: id || '', mutation: p.mutation_id || '' } },
      h('span', { class: 'time mono', title: fmtFull(env.ts) }, fmtClock(env.ts, true)),
      h('span', { class: `ev ev-tag-${state || 'other'}`, text: name }),
      h('span', { class: 'body' }, body, mine ? h('span', { class: 'chip chip-xs chip-you', text: 'you' }) : null),
      reason), Number(env.ts) || Date.now() / 1000);
  }
}
