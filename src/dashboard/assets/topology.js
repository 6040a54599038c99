// The topology picture of one project: nodes as circles coloured by status, links as
// lines. The layout is deterministic: GNS3's own x/y coordinates scaled to fit, or a
// circle in node-name order when the coordinates say nothing (all equal). A status
// change touches one circle (`setStatus`); adding or removing nodes or links redraws
// the picture (`draw`), which the caller batches once per animation frame.
'use strict';

(function () {
  const NS = 'http://www.w3.org/2000/svg';
  const W = 1000, H = 560, MIN_H = 220, PAD = 40;

  function el(name, attrs) {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }

  function statusClass(status) {
    return status === 'started' || status === 'suspended' ? status : 'stopped';
  }

  // Node id -> [x, y] inside the view box (`pos.height` tall: a flat drawing gets a low box).
  function layout(nodes) {
    const pos = new Map();
    pos.height = H;
    if (nodes.length === 0) return pos;
    const pts = nodes.map((n) => [
      (Number(n.x) || 0) + (Number(n.width) || 0) / 2,
      (Number(n.y) || 0) + (Number(n.height) || 0) / 2,
    ]);
    const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
    const minX = Math.min(...xs), maxX = Math.max(...xs), minY = Math.min(...ys), maxY = Math.max(...ys);
    const distinct = new Set(pts.map((p) => p[0] + ',' + p[1])).size;
    if (nodes.length > 1 && distinct * 2 >= nodes.length && (maxX > minX || maxY > minY)) {
      const sx = maxX > minX ? (W - 2 * PAD) / (maxX - minX) : 0;
      const sy = maxY > minY ? (H - 2 * PAD) / (maxY - minY) : 0;
      // One scale for both axes keeps GNS3's shape; centre the drawing.
      const s = Math.min(sx || Infinity, sy || Infinity);
      pos.height = Math.max(MIN_H, Math.min(H, (maxY - minY) * s + 2 * PAD));
      const offX = (W - (maxX - minX) * s) / 2, offY = (pos.height - (maxY - minY) * s) / 2;
      nodes.forEach((n, i) => pos.set(n.node_id, [offX + (pts[i][0] - minX) * s, offY + (pts[i][1] - minY) * s]));
      return pos;
    }
    const sorted = nodes.slice().sort((a, b) => String(a.name).localeCompare(String(b.name), undefined, { numeric: true }));
    const r = Math.min(W, H) / 2 - PAD;
    sorted.forEach((n, i) => {
      const a = (2 * Math.PI * i) / sorted.length - Math.PI / 2;
      pos.set(n.node_id, [W / 2 + r * Math.cos(a), H / 2 + r * Math.sin(a)]);
    });
    return pos;
  }

  function create(svg) {
    let circles = new Map(); // node id -> {circle, title}

    function draw(nodes, links) {
      const pos = layout(nodes);
      const dense = nodes.length > 60;
      const radius = dense ? Math.max(4, Math.min(10, 2200 / Math.max(nodes.length, 1))) : 16;
      svg.classList.toggle('dense', dense);
      svg.setAttribute('viewBox', '0 0 ' + W + ' ' + pos.height.toFixed(0));
      // The box follows the drawing's proportions (CSSOM, which the CSP allows).
      svg.style.aspectRatio = W + ' / ' + pos.height.toFixed(0);
      const linkGroup = el('g', { class: 'links' });
      for (const l of links) {
        const ends = (l.nodes || []).map((e) => pos.get(e.node_id)).filter(Boolean);
        if (ends.length !== 2) continue;
        const line = el('line', { x1: ends[0][0].toFixed(1), y1: ends[0][1].toFixed(1), x2: ends[1][0].toFixed(1), y2: ends[1][1].toFixed(1) });
        line.dataset.link = l.link_id;
        linkGroup.appendChild(line);
      }
      const nodeGroup = el('g', { class: 'nodes' });
      const next = new Map();
      for (const n of nodes) {
        const p = pos.get(n.node_id);
        const g = el('g', {});
        g.dataset.node = n.node_id;
        const circle = el('circle', { cx: p[0].toFixed(1), cy: p[1].toFixed(1), r: radius, class: statusClass(n.status) });
        const title = el('title', {});
        title.textContent = n.name + ': ' + (n.status || 'unknown');
        circle.appendChild(title);
        g.appendChild(circle);
        const label = el('text', { x: p[0].toFixed(1), y: (p[1] + radius + 14).toFixed(1) });
        label.textContent = n.name;
        g.appendChild(label);
        nodeGroup.appendChild(g);
        next.set(n.node_id, { circle, title, status: n.status });
      }
      svg.replaceChildren(linkGroup, nodeGroup);
      circles = next;
    }

    function setStatus(node) {
      const c = circles.get(node.node_id);
      if (!c) return false;
      if (c.status === node.status) return true;
      c.status = node.status;
      c.circle.setAttribute('class', statusClass(node.status));
      c.title.textContent = node.name + ': ' + (node.status || 'unknown');
      return true;
    }

    function clear() {
      svg.replaceChildren();
      circles = new Map();
    }

    return { draw, setStatus, clear };
  }

  window.Topology = { create, layout, statusClass };
})();
