// The dashboard's model (src/dashboard/assets/model.js) without a browser: what each event
// changes, and how a topology answer is loaded. The file is the one the binary embeds,
// run here in a bare context (it needs no DOM).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import { ROOT } from './harness.mjs';

const context = { window: {} };
vm.createContext(context);
vm.runInContext(readFileSync(`${ROOT}/src/dashboard/assets/model.js`, 'utf8'), context);
const { Model } = context.window;

const P1 = '11111111-1111-1111-1111-111111111111';
const P2 = '22222222-2222-2222-2222-222222222222';
const node = (id, name, status, project = P1) => ({ node_id: id, name, status, project_id: project, node_type: 'qemu' });
const topology = () => ({
  servers: [{
    server: 'default',
    projects: [
      { project: { project_id: P2, name: 'lab-2', status: 'closed' }, nodes: [], links: [] },
      { project: { project_id: P1, name: 'lab-1', status: 'opened' },
        nodes: [node('n1', 'R1', 'started'), node('n2', 'R2', 'stopped')],
        links: [{ link_id: 'l1', nodes: [{ node_id: 'n1' }, { node_id: 'n2' }] }] },
    ],
  }],
  unavailable: [],
});
const event = (type, fields) => ({ id: 'e-1', seq: 1, type, server: 'default', priority: 'HIGH', ...fields });

test('a topology is loaded and the first open project is chosen', () => {
  const m = Model.create();
  assert.equal(m.rebuild(topology(), null), `default/${P1}`);
  assert.equal(m.projects.get(`default/${P1}`).nodes.size, 2);
  assert.equal(m.projects.get(`default/${P1}`).links.size, 1);
  assert.equal(m.rebuild(topology(), `default/${P2}`), `default/${P2}`, 'the shown project stays');
  assert.equal(m.rebuild({ servers: [] }, `default/${P2}`), null);
});

test('node events: a status change, a node added, a node removed', () => {
  const m = Model.create();
  m.rebuild(topology(), null);
  let c = m.apply(event('node.stopped', { project_id: P1, node_id: 'n1', data: node('n1', 'R1', 'stopped') }));
  assert.equal(c.change, 'status');
  assert.equal(c.label, 'R1 in lab-1');
  assert.equal(m.projects.get(`default/${P1}`).nodes.get('n1').status, 'stopped');
  c = m.apply(event('node.created', { project_id: P1, node_id: 'n3', data: node('n3', 'R3', 'stopped') }));
  assert.equal(c.change, 'added');
  assert.equal(c.node.project_key, `default/${P1}`);
  c = m.apply(event('node.deleted', { project_id: P1, node_id: 'n3', data: node('n3', 'R3', 'stopped') }));
  assert.equal(c.change, 'removed');
  assert.equal(m.apply(event('node.deleted', { project_id: P1, node_id: 'n3', data: {} })).change, 'none', 'twice');
  assert.equal(m.apply(event('node.started', { project_id: 'unknown', node_id: 'x', data: {} })).change, 'none');
});

test('replaying events the topology already holds ends in the latest state', () => {
  const m = Model.create();
  m.rebuild(topology(), null); // R1 already started here
  for (const status of ['stopped', 'started', 'suspended']) {
    m.apply(event(`node.${status}`, { project_id: P1, node_id: 'n1', data: node('n1', 'R1', status) }));
  }
  assert.equal(m.projects.get(`default/${P1}`).nodes.get('n1').status, 'suspended');
});

test('links, projects and servers', () => {
  const m = Model.create();
  m.rebuild(topology(), null);
  assert.equal(m.apply(event('link.deleted', { project_id: P1, data: { link_id: 'l1' } })).change, 'links');
  assert.equal(m.projects.get(`default/${P1}`).links.size, 0);
  assert.equal(m.apply(event('project.closed', { project_id: P1, data: { name: 'lab-1', status: 'closed' } })).change, 'project');
  assert.equal(m.projects.get(`default/${P1}`).status, 'closed');
  assert.equal(m.apply(event('project.opened', { project_id: P1, data: { name: 'lab-1' } })).change, 'opened');
  assert.equal(m.projects.get(`default/${P1}`).status, 'opened');
  assert.equal(m.apply(event('project.deleted', { project_id: P2, data: {} })).change, 'removed-project');
  assert.equal(m.projects.has(`default/${P2}`), false);
  assert.equal(m.apply(event('server.disconnected', { data: {} })).change, 'server');
  assert.equal(m.servers.get('default').connected, false);
  m.apply(event('circuit.opened', { data: {} }));
  assert.equal(m.servers.get('default').circuit.state, 'open');
});

test("one server's topology (a reopened project) replaces that project's nodes", () => {
  const m = Model.create();
  m.rebuild(topology(), null);
  m.load({ server: 'default', projects: [{ project: { project_id: P2, name: 'lab-2', status: 'opened' },
    nodes: [node('m1', 'S1', 'stopped', P2)], links: [] }] });
  assert.equal(m.projects.get(`default/${P2}`).nodes.size, 1);
  assert.equal(m.projects.get(`default/${P2}`).status, 'opened');
  assert.equal(m.projects.get(`default/${P1}`).nodes.size, 2, 'other projects untouched');
});
