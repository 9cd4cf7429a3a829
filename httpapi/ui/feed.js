// Change feed: the latest events of the watch under the prefix, newest
// first, with time and revision. Pausing holds new events back (and counts
// them) until resumed. The watch says "delete" for explicit deletes,
// revocations and expiries alike: a delete of a key whose lease the
// console had counted down to zero is shown as "expired", one whose lease
// this console revoked as "revoked".
const R = window.Roster;

const MAX_ROWS = 500;
let paused = false;
let held = [];
let unseen = 0;

const body = R.$('feed-body');
const pauseBtn = R.$('feed-pause');

function kindOf(ch) {
  if (ch.type === 'put') return ch.kv.version === 1 ? ['create', 'ok'] : ['update', 'accent'];
  const lease = ch.old && ch.old.lease && R.leases.map.get(ch.old.lease);
  if (lease && (lease.revoking || lease.revoked)) return ['revoked', 'bad'];
  if (lease && lease.ttl && R.leases.estimate(lease) <= 1.5) return ['expired', 'warn'];
  return ['delete', 'bad'];
}

function rowOf(ch) {
  const [kind, cls] = kindOf(ch);
  let value = '';
  if (ch.type === 'put') {
    const v = R.valueOf(ch.kv);
    value = v.binary ? '(binary)' : v.text.replace(/\s+/g, ' ');
    if (value.length > 140) value = value.slice(0, 140) + '…';
  }
  return R.h('tr', { 'data-rev': ch.rev, 'data-type': kind, class: ch.at ? 'new' : 'old' },
    ch.at ? R.h('td', { class: 'mono small nowrap', text: R.fmtTime(ch.at) })
      : R.h('td', { class: 'small nowrap muted', title: 'happened before the console opened', text: 'earlier' }),
    R.h('td', { class: 'num mono', text: ch.rev }),
    R.h('td', {}, R.badge(kind, cls)),
    R.h('td', { class: 'mono key' }, R.h('a', { href: '?view=kv&key=' + encodeURIComponent(ch.kv.key), 'data-nav': 'kv', text: ch.kv.key })),
    R.h('td', { class: 'mono small value-cell', text: value }));
}

function add(rows) {
  body.prepend(...rows.reverse());
  while (body.childElementCount > MAX_ROWS) body.lastElementChild.remove();
  R.$('feed-empty').hidden = body.childElementCount > 0;
}

function label() {
  pauseBtn.textContent = paused ? (held.length ? `Resume (${held.length} new)` : 'Resume') : 'Pause';
  pauseBtn.setAttribute('aria-pressed', String(paused));
  R.$('feed-sub').textContent = `Changes under ${R.store.prefix}` + (paused ? ' · paused' : ' · live') + ` · latest ${MAX_ROWS} kept`;
  R.$('count-feed').textContent = unseen ? String(unseen) : '';
}

// Events from before the listing (the watch replays a few) open the feed.
R.on('history', (ch) => add([rowOf(ch)]));
R.on('kv', (ch) => {
  const row = rowOf(ch);
  if (R.state.view !== 'feed') unseen++;
  if (paused) {
    held.push(row);
    if (held.length > MAX_ROWS) held.shift();
  } else {
    add([row]);
  }
  label();
});

pauseBtn.addEventListener('click', () => {
  paused = !paused;
  if (!paused && held.length) { add(held); held = []; }
  label();
});
R.$('feed-clear').addEventListener('click', () => {
  body.replaceChildren();
  held = [];
  R.$('feed-empty').hidden = false;
  label();
});
R.on('listed', () => {
  body.replaceChildren();
  held = [];
  R.$('feed-empty').hidden = false;
  label();
});
R.on('view', (v) => { if (v === 'feed') { unseen = 0; label(); } });
