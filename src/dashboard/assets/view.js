// DOM building for the dashboard: tables of servers, projects and nodes, the event log
// and its filters. Small tables (servers, projects) are rebuilt whole; the node table
// keeps one row per node so an event updates one row (`updateNode`), which matters with
// hundreds of nodes. No innerHTML: every text goes through textContent.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);

  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      if (k === 'class') e.className = attrs[k];
      else if (k === 'text') e.textContent = attrs[k];
      else if (k.startsWith('data-')) e.dataset[k.slice(5).replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    for (const c of children) if (c != null) e.append(c);
    return e;
  }

  function badge(status, cls) {
    return h('span', { class: 'status ' + (cls || status || 'unknown'), text: status || 'unknown' });
  }

  const byName = (a, b) => String(a.name).localeCompare(String(b.name), undefined, { numeric: true });

  function renderServers(servers) {
    const rows = [...servers.values()].sort(byName).map((s) => {
      const circuit = (s.circuit && s.circuit.state) || 'closed';
      return h('tr', { 'data-server': s.name },
        h('th', { scope: 'row', text: s.name }),
        h('td', {}, badge(s.connected ? 'connected' : 'disconnected')),
        h('td', { text: s.gns3_version ? s.gns3_version + (s.api_version ? ' (' + s.api_version + ')' : '') : '–' }),
        h('td', {}, badge(circuit, circuit === 'closed' ? 'closed-circuit' : circuit)),
        h('td', { class: 'last-error', text: s.last_error || '' }));
    });
    $('servers').tBodies[0].replaceChildren(...rows);
  }

  const NODE_ACTIONS = ['start', 'stop', 'restart', 'suspend'];
  const PROJECT_ACTIONS = ['start', 'stop'];
  const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);

  function projectRow(p, key, canAct) {
    const acts = h('td', { class: 'actions' });
    if (canAct) {
      for (const a of PROJECT_ACTIONS) {
        acts.append(h('button', { type: 'button', 'data-project-action': a, 'data-key': key,
          'aria-label': cap(a) + ' every node of ' + p.name, text: cap(a) + ' all' }));
      }
    }
    acts.append(h('span', { class: 'result', 'data-result-for': key }));
    return h('tr', { 'data-key': key, 'data-can-act': String(canAct) },
      h('td', {}, h('button', { type: 'button', class: 'link', 'data-select': key })),
      h('td', { text: p.server }), h('td', { class: 'pst' }), h('td', { class: 'count' }), acts);
  }

  // Rows are kept and updated in place (a focused button, a pending action's result and
  // its disabled state survive the many updates events cause); only a change in the set
  // or order of projects moves rows.
  function renderProjects(projects, selected, canAct) {
    const body = $('projects').tBodies[0];
    const existing = new Map([...body.rows].map((tr) => [tr.dataset.key, tr]));
    const rows = [...projects.values()].sort(byName).map((p) => {
      const key = p.server + '/' + p.id;
      let tr = existing.get(key);
      if (!tr || tr.dataset.canAct !== String(canAct)) tr = projectRow(p, key, canAct);
      tr.className = key === selected ? 'selected' : '';
      const show = tr.cells[0].firstChild;
      if (show.textContent !== p.name) show.textContent = p.name;
      show.setAttribute('aria-pressed', String(key === selected));
      if (tr.dataset.status !== (p.status || '')) {
        tr.dataset.status = p.status || '';
        tr.cells[2].replaceChildren(badge(p.status));
      }
      tr.cells[3].textContent = String(p.nodes.size);
      return tr;
    });
    const same = rows.length === body.rows.length && rows.every((tr, i) => body.rows[i] === tr);
    if (!same) body.replaceChildren(...rows);
    document.querySelectorAll('#nodes .act').forEach((th) => { th.hidden = !canAct; });
  }

  function nodeRow(key, n, canAct) {
    const tr = h('tr', { 'data-node': n.node_id, 'data-status': n.status || '' },
      h('th', { scope: 'row', text: n.name }),
      h('td', { class: 'st' }, badge(n.status)),
      h('td', { text: n.node_type || '' }));
    if (canAct) {
      const acts = h('td', { class: 'actions' });
      for (const a of NODE_ACTIONS) {
        acts.append(h('button', { type: 'button', 'data-node-action': a, 'data-key': key, 'data-node': n.node_id,
          'aria-label': cap(a) + ' ' + n.name, text: cap(a) }));
      }
      tr.append(acts, h('td', { class: 'result' }));
    }
    return tr;
  }

  function renderNodes(p, canAct) {
    const body = $('nodes').tBodies[0];
    if (!p) {
      body.replaceChildren();
      rows = new Map();
      return;
    }
    const key = p.server + '/' + p.id;
    const frag = document.createDocumentFragment();
    rows = new Map();
    for (const n of [...p.nodes.values()].sort(byName)) {
      const tr = nodeRow(key, n, canAct);
      rows.set(n.node_id, tr);
      frag.append(tr);
    }
    body.replaceChildren(frag);
  }

  // Node id -> its row in the node table, so an event finds its row without a DOM search.
  let rows = new Map();

  // A node that appeared: its row goes where the name order puts it.
  function addNode(key, n, canAct) {
    if (rows.has(n.node_id)) return updateNode(n);
    const tr = nodeRow(key, n, canAct);
    rows.set(n.node_id, tr);
    const body = $('nodes').tBodies[0];
    const after = [...body.rows].find((r) => byName({ name: r.cells[0].textContent }, n) > 0);
    body.insertBefore(tr, after || null);
    return true;
  }

  function removeNode(id) {
    const tr = rows.get(id);
    rows.delete(id);
    if (tr) tr.remove();
  }

  // One row: its status badge (and name, which GNS3 lets users change).
  function updateNode(n) {
    const tr = rows.get(n.node_id);
    if (!tr) return false;
    if (tr.dataset.status === (n.status || '') && tr.cells[0].textContent === n.name) return true;
    tr.cells[0].textContent = n.name;
    tr.cells[1].replaceChildren(badge(n.status));
    tr.dataset.status = n.status || '';
    return true;
  }

  function setResult(el, ok, text) {
    if (!el) return;
    el.textContent = text;
    el.classList.toggle('ok', ok === true);
    el.classList.toggle('err', ok === false);
  }

  // ---- event log ----
  function matches(f, e) {
    if (f.type && !(f.type.endsWith('.') ? e.type.startsWith(f.type) : e.type === f.type)) return false;
    if (f.priority && e.priority !== f.priority) return false;
    if (f.project && e.project_id !== f.project) return false;
    return true;
  }

  function logItem(e, label) {
    const time = (e.timestamp || '').slice(11, 23);
    const li = h('li', { 'data-type': e.type, 'data-priority': e.priority || '', 'data-project': e.project_id || '',
      'data-id': e.id || '' },
      h('span', { class: 't', text: time + ' ' }),
      h('span', { class: 'prio ' + (e.priority || ''), text: e.priority || '' }),
      h('span', { class: 'ty', text: e.type }),
      label ? ' ' + label : '');
    return li;
  }

  // Newest first; at most `max` items stay in the list.
  function prependLog(items, filters, max) {
    const ol = $('log');
    const frag = document.createDocumentFragment();
    for (let i = items.length - 1; i >= 0; i--) {
      const li = logItem(items[i].event, items[i].label);
      if (!matches(filters, items[i].event)) li.classList.add('hide');
      frag.append(li);
    }
    ol.prepend(frag);
    while (ol.children.length > max) ol.lastElementChild.remove();
  }

  function refilterLog(filters) {
    for (const li of $('log').children) {
      const e = { type: li.dataset.type, priority: li.dataset.priority, project_id: li.dataset.project };
      li.classList.toggle('hide', !matches(filters, e));
    }
  }

  function renderProjectFilter(projects) {
    const sel = $('f-project');
    const current = sel.value;
    const opts = [h('option', { value: '', text: 'All projects' })];
    for (const p of [...projects.values()].sort(byName)) opts.push(h('option', { value: p.id, text: p.name }));
    sel.replaceChildren(...opts);
    sel.value = [...sel.options].some((o) => o.value === current) ? current : '';
  }

  window.View = { $, h, badge, renderServers, renderProjects, renderNodes, updateNode, addNode, removeNode, setResult,
    prependLog, refilterLog, renderProjectFilter, matches };
})();
