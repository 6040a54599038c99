// The dashboard's model of what the service knows, without any DOM: servers and projects
// (each with its nodes and links), built from a topology answer and kept current by
// events. `apply` updates it with one event envelope and says what changed, so the page
// can touch only that: one node's status, a node added or removed, the links, a project,
// a server.
'use strict';

(function () {
  const keyOf = (server, id) => server + '/' + id;
  const byName = (a, b) => String(a.name).localeCompare(String(b.name), undefined, { numeric: true });

  function create() {
    const m = { servers: new Map(), projects: new Map() };

    function projectEntry(server, project) {
      const key = keyOf(server, project.project_id);
      let p = m.projects.get(key);
      if (!p) {
        p = { key, server, id: project.project_id, name: project.name, status: project.status, nodes: new Map(), links: new Map() };
        m.projects.set(key, p);
      }
      p.name = project.name || p.name;
      p.status = project.status || p.status;
      return p;
    }

    // One project's `{project, nodes, links}`, replacing what was known of it.
    function loadProject(server, pt) {
      const p = projectEntry(server, pt.project);
      p.nodes = new Map();
      p.links = new Map();
      for (const n of pt.nodes || []) { n.project_key = p.key; p.nodes.set(n.node_id, n); }
      for (const l of pt.links || []) p.links.set(l.link_id, l);
      return p;
    }

    // A topology answer: every server's (`{servers:[…]}`) or one server's (`{server, projects}`).
    function load(topology, server) {
      const t = topology || {};
      for (const s of t.servers || [t]) {
        for (const pt of s.projects || []) loadProject(s.server || server, pt);
      }
    }

    // A whole topology replaces every project; returns the project to show (the one shown
    // before if it still exists, else the first open one by name).
    function rebuild(topology, selected) {
      m.projects = new Map();
      load({ servers: (topology && topology.servers) || [] });
      if (m.projects.has(selected)) return selected;
      const all = [...m.projects.values()].sort(byName);
      const first = all.find((p) => p.status === 'opened') || all[0];
      return first ? first.key : null;
    }

    // Applies one event; returns `{change, key, node, label}` where `change` is one of
    // `status`, `added`, `removed` (a node), `links`, `project`, `removed-project`,
    // `opened` (a project whose nodes must be read), `server`, or `none`.
    function apply(e) {
      const key = e.project_id ? keyOf(e.server, e.project_id) : null;
      const p = key ? m.projects.get(key) : null;
      const d = e.data || {};
      const [kind, what] = e.type.split('.');
      if (kind === 'node' && p) {
        const old = p.nodes.get(e.node_id);
        const label = (d.name || (old && old.name) || e.node_id || '') + ' in ' + p.name;
        if (what === 'deleted') {
          return { change: p.nodes.delete(e.node_id) ? 'removed' : 'none', key, node: old, label };
        }
        if (!d.node_id) return { change: 'none', key, label };
        d.project_key = key;
        const node = Object.assign(old || {}, d);
        p.nodes.set(d.node_id, node);
        return { change: old ? 'status' : 'added', key, node, label };
      }
      if (kind === 'link' && p) {
        const id = d.link_id || e.link_id;
        if (what === 'deleted') p.links.delete(id); else if (id) p.links.set(id, d);
        return { change: 'links', key, label: 'in ' + p.name };
      }
      if (kind === 'project' && key) {
        const label = d.name || (p && p.name) || '';
        if (what === 'deleted') {
          m.projects.delete(key);
          return { change: 'removed-project', key, label };
        }
        const entry = projectEntry(e.server, Object.assign({ project_id: e.project_id }, d));
        if (what === 'opened') { entry.status = 'opened'; return { change: 'opened', key, label }; }
        if (what === 'closed') entry.status = 'closed';
        return { change: 'project', key, label };
      }
      if (kind === 'server' || kind === 'circuit') {
        const s = m.servers.get(e.server) || { name: e.server };
        if (kind === 'server') s.connected = what === 'connected';
        else s.circuit = Object.assign({}, s.circuit, { state: what === 'opened' ? 'open' : 'closed' });
        m.servers.set(e.server, s);
        return { change: 'server', key: null, label: e.server };
      }
      return { change: 'none', key, label: p ? 'in ' + p.name : '' };
    }

    return Object.assign(m, { load, rebuild, apply, clear() { m.servers = new Map(); m.projects = new Map(); } });
  }

  window.Model = { create, keyOf, byName };
})();
