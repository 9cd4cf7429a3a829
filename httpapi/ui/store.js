// The console's live data: the keys under the current prefix (R.store:
// one listing, then a watch from the listing's revision; never polled)
// and the leases those keys and the views show (R.leases: fetched once,
// counted down locally, refreshed now and then because keep-alives do not
// appear in a watch).
// A module: its own scope; R is shared through window.Roster.
const R = window.Roster;

// LIST_LIMIT bounds the one listing; beyond it the view says so and
// ignores events past the last listed key, so what it shows stays exact.
const LIST_LIMIT = 5000;
// HISTORY is how many revisions before the listing the watch replays for
// the change feed.
const HISTORY = 100;
// ERROR_RETRY_S is how long a lease whose fetch failed waits before the
// next try.
const ERROR_RETRY_S = 10;

R.store = {
  prefix: '/',
  rev: 0,
  listRev: 0,
  kvs: new Map(),
  state: 'idle', // loading, live, reconnecting, error
  error: null,
  more: false,
  lastKey: null,
  gen: 0,
  watch: null,

  // start lists prefix and follows it; a new call replaces the old one.
  async start(prefix) {
    const gen = ++this.gen;
    if (this.watch) this.watch.close();
    this.watch = null;
    clearTimeout(this.retry);
    this.prefix = prefix;
    this.kvs = new Map();
    this.setState('loading');
    R.emit('listed');
    let r;
    try {
      r = await R.api.get(`/v1/kv${R.encKey(prefix)}?prefix=true&limit=${LIST_LIMIT}`);
    } catch (e) {
      if (gen !== this.gen) return;
      this.setState('error', e);
      if (e.status !== 401 && e.status !== 403 && e.code !== 'invalid_argument') this.retry = setTimeout(() => this.start(this.prefix), 3000);
      return;
    }
    if (gen !== this.gen) return;
    for (const kv of r.kvs) this.kvs.set(kv.key, kv);
    this.rev = this.listRev = r.revision;
    this.more = r.more;
    this.lastKey = r.more && r.kvs.length ? r.kvs[r.kvs.length - 1].key : null;
    R.emit('listed');
    // The watch starts a little before the listing, so that the change feed
    // opens with the latest events; those are not applied again.
    const follow = (from) => R.watch(prefix, from, (ev, rev) => this.apply(ev, rev), (st, err) => {
      if (gen !== this.gen) return;
      const oldest = st === 'compacted' && err.detail.oldest_revision;
      if (st === 'compacted' && from < this.listRev) this.watch = follow(Math.min(this.listRev, Math.max(from + 1, oldest || this.listRev))); // less history
      else if (st === 'compacted') this.start(this.prefix); // history moved past us: list again
      else if (st === 'refused') this.setState('error', err);
      else this.setState(st, err);
    });
    this.watch = follow(Math.max(0, r.revision - HISTORY));
  },

  setState(state, err) {
    this.state = state;
    this.error = err || null;
    R.emit('store-state');
  },

  // apply folds one watch event into the keys and tells the views.
  apply(ev, rev) {
    const kv = ev.kv;
    if (rev <= this.listRev) {
      R.emit('history', { type: ev.type, kv, rev, at: null });
      return;
    }
    this.rev = rev;
    if (this.lastKey !== null && kv.key > this.lastKey) return;
    const old = this.kvs.get(kv.key);
    if (ev.type === 'put') {
      if (old && old.mod_revision >= kv.mod_revision) return;
      this.kvs.set(kv.key, kv);
    } else {
      this.kvs.delete(kv.key);
    }
    R.emit('kv', { type: ev.type, kv, old, rev, at: new Date() });
  },
};

// ---------- leases

R.leases = {
  map: new Map(), // id → {id, ttl, remaining, name, keys, at, gone, error, pending, stale}
  queue: [],
  inflight: 0,

  // visible lists the leases whose countdown is on screen now: only those
  // are fetched and refreshed, however many keys the prefix holds.
  visible() {
    const ids = new Set();
    for (const el of onScreen) {
      if (!el.isConnected) { onScreen.delete(el); io.unobserve(el); continue; }
      ids.add(el.dataset.leaseId);
    }
    return ids;
  },

  // estimate is the remaining time, in seconds, counted down locally from
  // the last answer.
  estimate(e) {
    return e.remaining - (performance.now() - e.at) / 1000;
  },

  // put records a lease as an answer showed it (a fetch or a listing);
  // fetchedAt, which the refresh policy counts from, is the last fetch.
  put(l) {
    const e = this.map.get(l.id) || { id: l.id };
    Object.assign(e, { ttl: l.ttl, remaining: l.remaining, name: l.name, at: performance.now(), gone: false, error: null, stale: false });
    if (l.keys) e.keys = l.keys;
    this.map.set(l.id, e);
    return e;
  },

  // gone records that a lease no longer exists; revoked when this console
  // revoked it. Its countdown estimate is kept: the change feed reads it to
  // tell an expiry from a deletion.
  gone(id, revoked) {
    const e = this.map.get(id) || { id, remaining: 0, at: performance.now() };
    e.gone = true;
    e.revoked = e.revoked || !!revoked;
    this.map.set(id, e);
  },

  // Refresh policy: a lease is fetched when first shown (with its keys),
  // again once its
  // local countdown has run a third of its TTL (at least 2 s) since the
  // last answer, when a key attached to it changes, and when the window
  // regains focus. So a healthy, renewed lease shows its renewals within
  // a third of its TTL, at one request per lease per TTL/3.
  tick() {
    const now = performance.now();
    for (const id of this.visible()) {
      const e = this.map.get(id);
      if (!e) { this.enqueue(id); continue; }
      if (e.gone || e.pending) continue;
      const since = (now - (e.fetchedAt || 0)) / 1000;
      // A refused or failed fetch (403 for a token that may not renew the
      // lease, no leader) is tried again every ERROR_RETRY_S, not at each
      // tick: the answer will not change within a second.
      if (e.error) { if (e.stale || since >= ERROR_RETRY_S) this.enqueue(id); continue; }
      if (e.keys === undefined) { this.enqueue(id); continue; }
      if (e.stale || (since >= 2 && since >= Math.max(2, (e.ttl || 6) / 3))) this.enqueue(id);
    }
  },

  enqueue(id) {
    const e = this.map.get(id) || { id, remaining: 0, at: performance.now() };
    e.pending = true;
    this.map.set(id, e);
    this.queue.push(id);
    this.pump();
  },

  pump() {
    while (this.inflight < 4 && this.queue.length) {
      const id = this.queue.shift();
      this.inflight++;
      R.api.get(`/v1/leases/${id}?keys=true`)
        .then((l) => { this.put(l).fetchedAt = performance.now(); })
        .catch((err) => {
          if (err.code === 'lease_not_found') this.gone(id);
          else { const e = this.map.get(id); e.error = err; e.at = e.fetchedAt = performance.now(); e.stale = false; }
        })
        .finally(() => {
          const e = this.map.get(id);
          if (e) e.pending = false;
          this.inflight--;
          R.emit('lease', id);
          this.pump();
        });
    }
  },

  refreshAll() {
    for (const id of this.visible()) {
      const e = this.map.get(id);
      if (e && !e.gone) e.stale = true;
    }
    this.tick();
  },
};

// A key of a lease changed: its attached keys did too.
R.on('kv', (ch) => {
  for (const id of [ch.kv.lease, ch.old && ch.old.lease]) {
    const e = id && R.leases.map.get(id);
    if (e && !e.gone) e.stale = true;
  }
});

// The countdowns in the viewport (hidden views and scrolled-away rows are
// not), as an IntersectionObserver reports them.
const onScreen = new Set();
const io = new IntersectionObserver((entries) => {
  for (const en of entries) {
    if (en.isIntersecting) onScreen.add(en.target);
    else onScreen.delete(en.target);
  }
  R.leases.tick();
});

// countdown is a live "remaining" display for a lease: text plus a bar,
// updated by the shared clock below.
R.countdown = function (id) {
  const el = R.h('span', { class: 'cd', 'data-lease-id': id },
    R.h('span', { class: 'cd-text', text: '…' }), R.h('span', { class: 'cd-bar', 'aria-hidden': 'true' }, R.h('i')));
  paintCountdown(el);
  io.observe(el);
  return el;
};

function paintCountdown(el) {
  const e = R.leases.map.get(el.dataset.leaseId);
  const text = el.firstChild, bar = el.lastChild.firstChild;
  let label = '…', frac = 0, cls = 'cd';
  if (e && e.gone) { label = e.revoked ? 'revoked' : 'expired'; cls += ' gone'; }
  else if (e && e.ttl) {
    const est = Math.max(0, R.leases.estimate(e));
    label = est <= 0 ? 'due' : R.fmtDuration(est);
    frac = Math.min(1, est / e.ttl);
    if (est < Math.min(5, e.ttl * 0.34)) cls += ' low';
  } else if (e && e.error) { label = e.error.code; cls += ' gone'; }
  if (text.textContent !== label) text.textContent = label;
  const w = (frac * 100).toFixed(1) + '%';
  if (bar.style.width !== w) bar.style.width = w;
  if (el.className !== cls) el.className = cls;
}

// One clock for every countdown on the page; lease refreshes ride on it.
setInterval(() => {
  for (const el of document.querySelectorAll('.cd[data-lease-id]')) paintCountdown(el);
}, 250);
setInterval(() => R.leases.tick(), 1000);
R.on('lease', (id) => {
  for (const el of document.querySelectorAll(`.cd[data-lease-id="${id}"]`)) paintCountdown(el);
});
window.addEventListener('focus', () => R.leases.refreshAll());
