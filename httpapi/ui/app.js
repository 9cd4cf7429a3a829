// Start-up and navigation: the view and the prefix live in the URL
// (?view=…&prefix=…&key=…), so every state can be bookmarked and the
// back button works; the access-token dialog; the connection indicator.
const R = window.Roster;

const VIEWS = ['services', 'leases', 'kv', 'cluster', 'feed'];
const TITLES = { services: 'Services', leases: 'Leases', kv: 'Key editor', cluster: 'Cluster', feed: 'Change feed' };

function showView(view) {
  if (!VIEWS.includes(view)) view = 'services';
  R.state.view = view;
  for (const v of VIEWS) R.$('view-' + v).hidden = v !== view;
  for (const a of document.querySelectorAll('.nav a')) {
    if (a.dataset.view === view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = TITLES[view] + ' · Roster';
  R.emit('view', view);
}

// go navigates inside the page: new URL state, no reload.
function go(view, key) {
  if (key !== undefined) R.state.key = key;
  R.state.view = view;
  R.writeURL(true);
  showView(view);
}

// Links with data-view (the nav) or data-nav (links into the key editor)
// navigate in place; a modified click still opens a new tab.
document.addEventListener('click', (ev) => {
  const a = ev.target.closest('a[data-view], a[data-nav]');
  if (!a || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  ev.preventDefault();
  const q = new URLSearchParams(a.getAttribute('href').slice(1));
  go(a.dataset.view || a.dataset.nav, q.get('key') || undefined);
  if (a.dataset.view) R.$('main').focus({ preventScroll: true });
});

// Nav links keep the prefix (bookmarkable per view).
function navHrefs() {
  for (const a of document.querySelectorAll('.nav a')) {
    const q = new URLSearchParams({ view: a.dataset.view });
    if (R.state.prefix !== '/') q.set('prefix', R.state.prefix);
    a.setAttribute('href', '?' + q.toString().replace(/%2F/g, '/'));
  }
}

window.addEventListener('popstate', () => {
  const before = R.state.prefix;
  R.readURL();
  R.$('scope').value = R.state.prefix;
  if (R.state.prefix !== before) R.store.start(R.state.prefix);
  navHrefs();
  showView(R.state.view);
});

// ---------- prefix (search box)

const scope = R.$('scope');
let typing = null;
function setPrefix(p) {
  p = R.normPrefix(p);
  if (p === R.state.prefix) return;
  R.state.prefix = p;
  R.writeURL(false);
  navHrefs();
  R.store.start(p);
}
scope.addEventListener('input', () => {
  clearTimeout(typing);
  typing = setTimeout(() => setPrefix(scope.value), 300);
});
R.$('scope-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  clearTimeout(typing);
  setPrefix(scope.value);
});

// ---------- connection indicator

R.on('store-state', () => {
  const st = R.store.state;
  const conn = R.$('conn');
  const text = {
    loading: 'Loading…',
    live: 'Live · revision ' + R.store.rev,
    reconnecting: 'Reconnecting…',
    error: R.store.error ? R.store.error.code : 'Error',
  }[st] || st;
  conn.dataset.state = st;
  conn.querySelector('.conn-text').textContent = text;
  conn.title = R.store.error ? R.store.error.text : '';
});
R.on('kv', () => {
  if (R.store.state === 'live') R.$('conn').querySelector('.conn-text').textContent = 'Live · revision ' + R.store.rev;
});

// ---------- access token

const dialog = R.$('token-dialog');
const tokenErr = R.$('token-error');

function askToken(err) {
  if (dialog.open) return;
  tokenErr.textContent = R.auth.token && err ? err.text : '';
  R.$('token-input').value = '';
  dialog.showModal();
  R.$('token-input').focus();
}
R.on('unauthenticated', askToken);
dialog.addEventListener('cancel', (ev) => ev.preventDefault()); // nothing works without one

R.$('token-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const token = R.$('token-input').value.trim();
  if (!token) return;
  R.auth.set(token);
  tokenErr.textContent = '';
  try {
    const me = await R.api.get(`/v1/auth/whoami`);
    dialog.close();
    showWho(me);
    R.toast('Signed in as ' + (me.name || me.id) + '.', 'ok');
    restart();
  } catch (e) {
    R.auth.set('');
    tokenErr.textContent = e.text;
    R.$('token-input').select();
  }
});

function showWho(me) {
  R.$('who').hidden = !me;
  if (me) R.$('who-name').textContent = (me.name || me.id) + (me.admin ? ' · admin' : '');
}

R.$('signout').addEventListener('click', () => {
  R.auth.set('');
  showWho(null);
  restart();
});

// restart follows a change of token: what the old one fetched (leases,
// the key in the editor) is forgotten before anything is asked again.
function restart() {
  R.leases.map.clear();
  R.leases.queue.length = 0;
  R.store.start(R.state.prefix);
  R.emit('auth');
  R.emit('view', R.state.view);
}

// ---------- start

R.readURL();
scope.value = R.state.prefix;
navHrefs();
R.writeURL(false);
showView(R.state.view);
R.store.start(R.state.prefix);
R.emit('start');
if (R.auth.token) R.api.get(`/v1/auth/whoami`).then(showWho, () => {});
