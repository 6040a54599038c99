// The dashboard's state and its connections: sign-in (the token is checked with a REST
// call and kept in sessionStorage only), the WebSocket (`bearer.<token>` subprotocol;
// the `welcome` frame names the caller's role), the model of servers, projects, nodes
// and links kept current by events, reconnection with backoff that resumes with
// `subscribe` + `since` (the last event id seen), node and project actions over REST,
// and the counters polled from the REST API. Rendering is batched: events mark what
// changed and one requestAnimationFrame callback updates the page.
'use strict';

(function () {
  const V = window.View;
  const $ = V.$;
  const TOKEN_KEY = 'gns3central.token';
  const LOG_MAX = 500;
  const POLL_MS = 2000;

  const st = {
    token: null, principal: null, canAct: false, selected: null,
    ws: null, attempt: 0, retryTimer: 0, resumed: false,
    lastId: null, buffer: null, live: false,
    paused: false, held: [], heldDropped: 0,
    pollTimer: 0, prevPublished: null, prevAt: 0, modulesAt: -Infinity,
  };
  const topo = window.Topology.create($('topology'));
  const model = window.Model.create();

  // ---------- batched rendering ----------
  const dirty = {
    servers: false, projects: false, structure: false, heading: false, links: false,
    nodes: new Map(), added: new Map(), removed: new Set(), log: [],
  };
  let frame = 0;
  function schedule() { if (!frame) frame = requestAnimationFrame(flush); }
  function flush() {
    frame = 0;
    if (dirty.servers) V.renderServers(model.servers);
    if (dirty.projects) {
      V.renderProjects(model.projects, st.selected, st.canAct);
      V.renderProjectFilter(model.projects);
    }
    const p = model.projects.get(st.selected);
    if (dirty.structure || dirty.heading) {
      $('project-h').textContent = p ? p.name + ' (' + p.server + ', ' + p.status + ')' : 'No project selected';
    }
    if (dirty.structure) {
      V.renderNodes(p, st.canAct);
      if (p) topo.draw([...p.nodes.values()], [...p.links.values()]); else topo.clear();
    } else if (p) {
      // Rows are added and removed one by one; the picture is redrawn once for all of them.
      for (const id of dirty.removed) V.removeNode(id);
      for (const n of dirty.added.values()) V.addNode(p.key, n, st.canAct);
      if (dirty.added.size || dirty.removed.size || dirty.links) {
        topo.draw([...p.nodes.values()], [...p.links.values()]);
      }
      for (const n of dirty.nodes.values()) { V.updateNode(n); topo.setStatus(n); }
    }
    if (dirty.log.length) V.prependLog(dirty.log, filters(), LOG_MAX);
    dirty.servers = dirty.projects = dirty.structure = dirty.heading = dirty.links = false;
    dirty.nodes.clear();
    dirty.added.clear();
    dirty.removed.clear();
    dirty.log = [];
  }

  // ---------- events into the model, changes into dirty marks ----------
  function rebuild(topology) {
    st.selected = model.rebuild(topology, st.selected);
    dirty.projects = dirty.structure = true;
    schedule();
  }

  function applyEvent(e) {
    if (e.id) st.lastId = e.id;
    const c = model.apply(e);
    const shown = c.key != null && c.key === st.selected;
    switch (c.change) {
      case 'status':
        if (shown) dirty.nodes.set(c.node.node_id, c.node);
        break;
      case 'added':
        dirty.projects = true;
        if (shown) { dirty.removed.delete(c.node.node_id); dirty.added.set(c.node.node_id, c.node); }
        break;
      case 'removed':
        dirty.projects = true;
        if (shown && c.node) { dirty.added.delete(c.node.node_id); dirty.nodes.delete(c.node.node_id); dirty.removed.add(c.node.node_id); }
        break;
      case 'links':
        if (shown) dirty.links = true;
        break;
      case 'removed-project':
        if (shown) { st.selected = null; dirty.structure = true; }
        dirty.projects = true;
        break;
      case 'opened':
        requestProject(e.server, e.project_id);
        dirty.projects = true;
        if (shown) dirty.structure = true;
        break;
      case 'project':
        dirty.projects = true;
        if (shown) dirty.heading = true;
        break;
      case 'server':
        dirty.servers = true;
        break;
      default:
        break;
    }
    schedule();
    logEvent(e, c.label);
  }

  // ---------- event log ----------
  function filters() {
    return { type: $('f-type').value, priority: $('f-priority').value, project: $('f-project').value };
  }
  function logEvent(e, label) {
    const item = { event: e, label };
    if (st.paused) {
      st.held.push(item);
      if (st.held.length > LOG_MAX) { st.held.shift(); st.heldDropped++; }
      $('held').textContent = st.held.length + st.heldDropped + ' new events held';
      return;
    }
    dirty.log.push(item);
    if (dirty.log.length > LOG_MAX) dirty.log.shift();
    schedule();
  }
  function togglePause() {
    st.paused = !st.paused;
    const b = $('pause');
    b.setAttribute('aria-pressed', String(st.paused));
    b.textContent = st.paused ? 'Resume' : 'Pause';
    if (!st.paused) {
      dirty.log.push(...st.held);
      st.held = [];
      st.heldDropped = 0;
      $('held').textContent = '';
      schedule();
    }
  }

  // ---------- REST ----------
  async function api(method, path) {
    const res = await fetch(path, { method, headers: { Authorization: 'Bearer ' + st.token, Accept: 'application/json' } });
    let body = null;
    try { body = await res.json(); } catch (_) { body = null; }
    if (res.status === 401 && st.token) signOut('The service no longer accepts this token: ' + errText(body));
    return { ok: res.ok, status: res.status, body };
  }
  const errText = (b) => (b && b.error ? b.error.message + ' (' + b.error.code + ')' : 'no details');

  // `aria-disabled` rather than `disabled` while the call runs: a disabled button would
  // drop the keyboard focus.
  async function act(button, path, resultEl, what) {
    if (button.getAttribute('aria-disabled') === 'true') return;
    button.setAttribute('aria-disabled', 'true');
    V.setResult(resultEl, null, what + '…');
    try {
      const r = await api('POST', path);
      if (r.ok) {
        const status = r.body && r.body.node ? ': node ' + r.body.node.status : '';
        V.setResult(resultEl, true, what + ' done' + status);
      } else {
        V.setResult(resultEl, false, what + ' failed (' + r.status + '): ' + errText(r.body));
      }
    } catch (err) {
      V.setResult(resultEl, false, what + ' failed: ' + err.message);
    } finally {
      button.removeAttribute('aria-disabled');
    }
  }

  // ---------- counters (polled) ----------
  const fmt = (n) => (n == null ? '–' : Number(n).toLocaleString('en'));
  async function poll() {
    if (!st.token) return;
    try {
      // Modules change rarely: asked at sign-in and every 30 s (a 404 or 501 until they exist).
      const askModules = Date.now() - st.modulesAt > 30000;
      if (askModules) st.modulesAt = Date.now();
      const [status, ws, modules] = await Promise.all([
        api('GET', '/api/v2/status'), api('GET', '/api/v2/ws/stats'),
        askModules ? api('GET', '/api/v2/modules') : null,
      ]);
      if (status.ok && Array.isArray(status.body.servers)) {
        model.servers = new Map(status.body.servers.map((s) => [s.name, s]));
        dirty.servers = true;
        schedule();
      }
      showStats(status.ok && status.body.events && status.body.events.details
        ? { ok: true, body: status.body.events.details } : { ok: false, status: status.status });
      showCache(status);
      $('c-sessions').textContent = ws.ok ? fmt(ws.body.active) : 'not shown to this token';
      if (modules) showModules(modules);
    } catch (_) {
      // The connection indicator already tells when the service is unreachable.
    } finally {
      if (st.token) st.pollTimer = setTimeout(poll, POLL_MS);
    }
  }
  function showStats(r) {
    if (!r.ok) {
      for (const id of ['c-rate', 'c-published', 'c-shed', 'c-dead']) $(id).textContent = r.status === 403 ? 'not for this token' : '–';
      return;
    }
    const t = Counters.totals(r.body);
    const now = performance.now();
    if (st.prevPublished != null && now > st.prevAt) {
      $('c-rate').textContent = ((t.published - st.prevPublished) * 1000 / (now - st.prevAt)).toFixed(1);
    }
    st.prevPublished = t.published;
    st.prevAt = now;
    $('c-published').textContent = fmt(t.published);
    $('c-shed').textContent = fmt(t.shed);
    $('c-dead').textContent = fmt(t.dead);
  }
  function showCache(r) {
    $('c-cache').textContent = r.ok ? Counters.cacheRatio(r.body) : '–';
  }
  function showModules(r) {
    const el = $('modules');
    if (r.status === 404 || r.status === 501) { el.textContent = 'No modules'; return; }
    if (!r.ok) { el.textContent = 'Not shown to this token'; return; }
    const list = Array.isArray(r.body) ? r.body : (r.body && r.body.modules) || [];
    el.textContent = list.length ? list.map(moduleLine).join('; ') : 'No modules';
  }
  // "monitoring (connected, 2 dead letters, 1 panic)": GET /api/v2/modules' fields.
  function moduleLine(m) {
    const parts = [m.kind === 'in_process' || m.kind === 'builtin' ? m.kind.replace('_', '-') : (m.connected ? 'connected' : 'offline')];
    if (m.dead_lettered) parts.push(m.dead_lettered + ' dead letter' + (m.dead_lettered === 1 ? '' : 's'));
    if (m.panics) parts.push(m.panics + ' panic' + (m.panics === 1 ? '' : 's'));
    if (m.mailbox_depth) parts.push(m.mailbox_depth + ' waiting');
    if (m.last_error) parts.push('last error: ' + m.last_error);
    return m.name + ' (' + parts.join(', ') + ')';
  }

  // The figures the counters panel shows, from the REST answers' shapes.
  const Counters = {
    totals(stats) {
      const t = stats.totals || {};
      return { published: t.published || 0, shed: t.shed || 0, dead: stats.dead_letters_total != null ? stats.dead_letters_total : t.dead_lettered };
    },
    cacheRatio(status) {
      const c = (status.cache && (status.cache.details || status.cache)) || {};
      const total = (c.hits || 0) + (c.misses || 0);
      return total ? (100 * c.hits / total).toFixed(1) + ' % of ' + total.toLocaleString('en') : 'no reads yet';
    },
  };

  // ---------- the WebSocket ----------
  function setConn(state, text) {
    const c = $('conn');
    c.dataset.state = state;
    c.textContent = text;
  }
  function setRecovery(result, text) {
    const r = $('recovery');
    r.hidden = !text;
    r.dataset.result = result || '';
    r.textContent = text || '';
  }
  function send(frame) {
    if (st.ws && st.ws.readyState === WebSocket.OPEN) st.ws.send(JSON.stringify(frame));
  }
  function requestProject(server, id) {
    send({ type: 'request_topology', server, project_id: id, request_id: 'p:' + server + '/' + id });
  }

  function connect() {
    clearTimeout(st.retryTimer);
    setConn('connecting', st.resumed ? 'Reconnecting…' : 'Connecting…');
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws/gns3/events/';
    let ws;
    try { ws = new WebSocket(url, ['bearer.' + st.token]); } catch (err) { return retry(); }
    st.ws = ws;
    ws.onmessage = (m) => { if (st.ws === ws) onFrame(m.data); };
    ws.onclose = () => {
      if (st.ws !== ws) return;
      st.ws = null;
      st.live = false;
      // Dropped before the first topology came in: start the first load again.
      if (st.buffer) Object.assign(st, { buffer: null, lastId: null, liveAfterTopology: false });
      retry();
    };
  }

  function retry() {
    if (!st.token) return;
    st.resumed = st.lastId != null;
    const delay = Math.min(8000, 500 * 2 ** st.attempt) * (0.8 + Math.random() * 0.4);
    st.attempt++;
    setConn('disconnected', 'Disconnected — retrying in ' + (delay / 1000).toFixed(1) + ' s');
    if (st.attempt % 3 === 0) api('GET', '/api/v2/status').catch(() => {}); // a refused token signs out
    st.retryTimer = setTimeout(connect, delay);
  }

  function onFrame(text) {
    let f;
    try { f = JSON.parse(text); } catch (_) { return; }
    if (typeof f.seq === 'number' && f.type && f.type.includes('.')) {
      if (st.buffer) st.buffer.push(f); else applyEvent(f);
      return;
    }
    switch (f.type) {
      case 'welcome': return onWelcome(f);
      case 'topology': return onTopology(f);
      case 'replay': return onReplay(f);
      case 'subscribed': return;
      case 'missed':
        // Shed LOW/NORMAL events (node.created among them) may leave the model behind:
        // read the topology again; the events after it keep it current.
        setRecovery('missed', f.count + ' low-priority events were shed for this page; topology read again');
        if (!st.buffer) {
          st.buffer = []; // events until the answer are applied on top of it, as at first load
          send({ type: 'request_topology', request_id: 'resync' });
        }
        return;
      case 'error':
        if (f.code === 'events_disabled') setConn('live', 'Connected (events disabled on the service)');
        if ((f.request_id === 'initial' || f.request_id === 'resync') && st.buffer) {
          // The topology could not be read (GNS3 down?): ask again shortly, events wait.
          setRecovery('missed', 'Topology not available yet: ' + f.message);
          setTimeout(() => { if (st.buffer) send({ type: 'request_topology', request_id: f.request_id }); }, 2000);
        }
        return;
      default: return;
    }
  }

  function onWelcome(f) {
    st.principal = f.principal;
    st.canAct = f.principal.role === 'operator' || f.principal.role === 'admin';
    document.body.dataset.role = f.principal.role;
    const who = $('who');
    who.hidden = false;
    who.textContent = f.principal.name + ' · ' + f.principal.role + (f.principal.projects ? ' · ' + f.principal.projects.length + ' project(s)' : '');
    st.attempt = 0;
    if (st.lastId == null) {
      // First connection: read the topology, and replay everything after the welcome's
      // position on top of it (re-applying an event the topology already holds is harmless).
      st.lastId = f.epoch + '-' + (f.last_seq || 0);
      st.buffer = [];
      send({ type: 'request_topology', request_id: 'initial' });
    }
    send({ type: 'subscribe', subscriptions: ['all'], since: st.lastId, request_id: 'sub' });
    dirty.projects = dirty.structure = true;
    schedule();
  }

  function onTopology(f) {
    if (f.request_id === 'initial' || f.request_id === 'resync') {
      if (!st.buffer) return; // a `replay` with a fresh topology came first
      rebuild(f.topology);
      const held = st.buffer || [];
      st.buffer = null;
      held.forEach(applyEvent);
      if (st.liveAfterTopology) goLive();
    } else if (typeof f.request_id === 'string' && f.request_id.startsWith('p:')) {
      model.load(f.topology, f.server);
      dirty.projects = dirty.structure = true;
      schedule();
    }
  }

  function onReplay(f) {
    const first = !st.resumed;
    if (f.recovered) {
      const events = f.events || [];
      if (st.buffer) st.buffer.push(...events); else events.forEach(applyEvent);
      if (f.epoch != null && f.latest_seq != null && !events.length && !st.buffer) st.lastId = f.epoch + '-' + f.latest_seq;
      if (!first) setRecovery('recovered', 'Recovered without a gap: ' + events.length + ' missed event(s) replayed');
    } else {
      st.buffer = null;
      rebuild(f.topology);
      st.lastId = f.epoch + '-' + f.latest_seq;
      setRecovery('reloaded', 'Reloaded: the event history could not resume (' + (f.reason || 'unknown') + '); topology read again');
    }
    st.resumed = false;
    // Live once the first topology is in too (its answer may come after the replay).
    if (st.buffer) st.liveAfterTopology = true; else goLive();
  }

  function goLive() {
    st.live = true;
    st.liveAfterTopology = false;
    setConn('live', 'Live');
  }

  // ---------- sign-in ----------
  async function signIn(token, stored) {
    const err = $('signin-error');
    const button = $('signin-button');
    err.textContent = '';
    if (!token) { err.textContent = 'Enter an API token.'; $('token').focus(); return; }
    button.disabled = true;
    let res;
    try {
      res = await fetch('/api/v2/status', { headers: { Authorization: 'Bearer ' + token } });
    } catch (e) {
      button.disabled = false;
      err.textContent = 'Cannot reach gns3-central: ' + e.message;
      return;
    }
    button.disabled = false;
    if (!res.ok) {
      let body = null;
      try { body = await res.json(); } catch (_) { body = null; }
      if (stored) sessionStorage.removeItem(TOKEN_KEY);
      err.textContent = res.status === 401
        ? 'This token was refused: ' + errText(body) + '. Check it or create one with `gns3-central token create`.'
        : 'Sign-in failed (' + res.status + '): ' + errText(body);
      $('token').setAttribute('aria-invalid', 'true');
      $('token').focus();
      return;
    }
    $('token').removeAttribute('aria-invalid');
    $('token').value = '';
    sessionStorage.setItem(TOKEN_KEY, token);
    st.token = token;
    $('signin').hidden = true;
    $('dash').hidden = false;
    $('signout').hidden = false;
    connect();
    poll();
  }

  function signOut(message) {
    st.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    clearTimeout(st.retryTimer);
    clearTimeout(st.pollTimer);
    const ws = st.ws;
    st.ws = null;
    if (ws) ws.close(1000);
    Object.assign(st, { modulesAt: -Infinity, prevPublished: null, lastId: null, buffer: null, resumed: false, attempt: 0, principal: null, canAct: false });
    model.clear();
    $('dash').hidden = true;
    $('signout').hidden = true;
    $('who').hidden = true;
    $('signin').hidden = false;
    setRecovery(null, '');
    setConn('signed-out', 'Signed out');
    $('signin-error').textContent = message || '';
    $('token').focus();
  }

  // ---------- wiring ----------
  $('signin-form').addEventListener('submit', (ev) => { ev.preventDefault(); signIn($('token').value.trim(), false); });
  $('signout').addEventListener('click', () => signOut(''));
  $('pause').addEventListener('click', togglePause);
  $('log-filters').addEventListener('change', () => V.refilterLog(filters()));
  $('log-filters').addEventListener('submit', (ev) => ev.preventDefault());
  $('projects').addEventListener('click', (ev) => {
    const b = ev.target.closest('button');
    if (!b) return;
    if (b.dataset.select) {
      st.selected = b.dataset.select;
      dirty.projects = dirty.structure = true;
      schedule();
    } else if (b.dataset.projectAction) {
      const p = model.projects.get(b.dataset.key);
      if (!p) return;
      const path = '/api/v2/servers/' + encodeURIComponent(p.server) + '/projects/' + p.id + '/actions/' + b.dataset.projectAction;
      act(b, path, b.parentElement.querySelector('.result'), b.dataset.projectAction + ' ' + p.name);
    }
  });
  $('nodes').addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-node-action]');
    if (!b) return;
    const p = model.projects.get(b.dataset.key);
    const n = p && p.nodes.get(b.dataset.node);
    if (!n) return;
    const path = '/api/v2/servers/' + encodeURIComponent(p.server) + '/projects/' + p.id + '/nodes/' + n.node_id + '/actions/' + b.dataset.nodeAction;
    act(b, path, b.closest('tr').querySelector('td.result'), b.dataset.nodeAction + ' ' + n.name);
  });

  // For the browser tests and curious operators: the model, read-only use.
  window.dashboard = { state: st, model };

  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) signIn(saved, true); else $('token').focus();
})();
