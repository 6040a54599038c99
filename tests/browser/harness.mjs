// What the browser tests stand on: the real service binary started with
// `serve --test-mode` (its built-in GNS3 stand-in) on a free loopback port, with tokens
// made by `gns3-central token create` and written to a config file; a TCP relay in front
// of it that a test can cut and restore (a dropped connection, seen by the browser as it
// would see a network failure); and small REST helpers for the service and the stand-in.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = process.env.GNS3_CENTRAL_BIN
  || path.join(process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target'), 'debug', 'gns3-central');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const SHOTS = process.env.SCREENSHOT_DIR
  || path.join(process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target'), 'browser-screenshots');

/** Polls `check` (async, returns a truthy value when done) until it holds or `ms` pass. */
export async function until(what, check, ms = 15000, every = 50) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A new token of `role`: its value and the `[[auth.tokens]]` lines for the config. */
export function createToken(name, role) {
  const out = execFileSync(BIN, ['token', 'create', '--name', name, '--role', role], { encoding: 'utf8' });
  const value = out.match(/g3c_[0-9a-f]+/)?.[0];
  const block = out.slice(out.indexOf('[[auth.tokens]]'));
  if (!value || !block.startsWith('[[auth.tokens]]')) throw new Error(`unexpected token create output: ${out}`);
  return { value, block };
}

/** The service process: `start()` on a fixed port (the same one again after `stop()`). */
export class Service {
  constructor(configText) {
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'gc-browser-'));
    this.config = path.join(this.dir, 'config.toml');
    writeFileSync(this.config, configText);
    this.port = 0;
    this.proc = null;
    this.log = '';
  }

  async start() {
    if (!this.port) this.port = await freePort();
    this.log = '';
    const env = { ...process.env, RUST_LOG: process.env.TEST_LOG || 'info', NO_COLOR: '1' };
    for (const k of Object.keys(env)) if (k.startsWith('GNS3_') || k.startsWith('REDIS_')) delete env[k];
    this.proc = spawn(BIN, ['serve', '--test-mode', '--config', this.config, '--bind', `127.0.0.1:${this.port}`],
      { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise((r) => this.proc.once('exit', (code) => r(code)));
    this.exited = exited;
    this.proc.stdout.on('data', (d) => { this.log += d; });
    this.proc.stderr.on('data', (d) => { this.log += d; });
    await until('the service to be ready', async () => {
      if (this.proc.exitCode !== null) throw new Error(`the service exited: ${this.log}`);
      const r = await fetch(`${this.base}/readyz`);
      return r.ok;
    }, 30000, 100);
    // eslint-disable-next-line no-control-regex
    const plain = this.log.replace(/\x1b\[[0-9;]*m/g, '');
    this.simulator = plain.match(/url=(http:\/\/127\.0\.0\.1:\d+)/)?.[1];
    if (!this.simulator) throw new Error(`no stand-in URL in the service log: ${plain}`);
  }

  get base() { return `http://127.0.0.1:${this.port}`; }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return;
    this.proc.kill('SIGTERM');
    const code = await Promise.race([this.exited, new Promise((r) => setTimeout(() => r('timeout'), 10000))]);
    if (code === 'timeout') {
      this.proc.kill('SIGKILL');
      await this.exited;
    }
  }

  async api(token, method, p, body) {
    const headers = { Authorization: `Bearer ${token}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await fetch(this.base + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    let json = null;
    try { json = JSON.parse(text); } catch { json = text; }
    return { status: r.status, body: json, headers: r.headers };
  }

  /** A call straight to the GNS3 stand-in, as a GNS3 GUI user would make it. */
  async gns3(method, p, body) {
    const r = await fetch(this.simulator + p, {
      method, headers: { 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await r.json().catch(() => null);
    if (!r.ok) throw new Error(`GNS3 stand-in ${method} ${p}: ${r.status} ${JSON.stringify(json)}`);
    return json;
  }
}

/** A TCP relay 127.0.0.1:port -> target; `cut()` drops every connection and refuses new ones. */
export class Relay {
  constructor(targetPort) {
    this.targetPort = targetPort;
    this.sockets = new Set();
    this.server = null;
    this.port = 0;
  }

  async open() {
    if (!this.port) this.port = await freePort();
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', resolve);
    });
  }

  get base() { return `http://127.0.0.1:${this.port}`; }

  async cut() {
    const closed = new Promise((r) => this.server.close(r));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}

export function shotPath(name) {
  mkdirSync(SHOTS, { recursive: true });
  return path.join(SHOTS, name);
}
