/**
 * No way around `http.request`'s allowlist (issue 9, item 5): entries bind scheme, host and port;
 * credentials go only where they are bound, over https unless an entry says otherwise; names that
 * resolve to loopback, link-local or private addresses are refused unless an entry allows it; the
 * idempotency header is the tool's own; and a bad configuration stops start-up naming the field.
 * Real requests against a local HTTP server (test/helpers/http-target.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { startApp } from '../src/app.ts';
import { loadConfig } from '../src/config/config.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseProjectConfig } from '../src/config/project-config.ts';
import type { RunRow } from '../src/db/queries/runs.ts';
import { defineWorkflow, type WorkflowDefinition } from '../src/runtime/workflow.ts';
import { nonPublicAddress } from '../src/tools/http-request.ts';
import { startHttpTarget, type HttpTarget } from './helpers/http-target.ts';
import { testLogger } from './helpers/log.ts';
import { createTestRuntime, useTestRuntimes, waitForRun } from './helpers/runtime.ts';

const files = useTestRuntimes();
let target: HttpTarget;
let port: number;

beforeAll(async () => {
  target = await startHttpTarget(() => ({ status: 200, json: { ok: true } }));
  port = Number(new URL(target.url).port);
});
afterAll(async () => {
  await target?.close();
});

const fetcher = defineWorkflow({
  name: 'fetcher',
  version: 1,
  description: 'GET a URL',
  input: z.object({ url: z.string(), headers: z.record(z.string(), z.string()).optional() }),
  tools: ['http.request'],
  run: async (ctx) => ctx.tool('http.request', { method: 'GET', url: ctx.input.url, headers: ctx.input.headers }, { retry: { maxAttempts: 1 } }),
}) as unknown as WorkflowDefinition;

/** Runs one GET with this http.request configuration; the run as it ended and the requests the target saw. */
async function get(config: Record<string, unknown>, url: string, headers?: Record<string, string>): Promise<{ run: RunRow; seen: HttpTarget['requests'] }> {
  // A worker of its own, stopped before the next call: its configuration is this call's only.
  const t = await createTestRuntime(files.db, [fetcher], { project: parseProjectConfig({ tools: { 'http.request': config } }) });
  try {
    const before = target.requests.length;
    const started = await t.runtime.startRun({ workflow: 'fetcher', input: { url, headers } });
    const run = await waitForRun(t.runtime, started.id, ['succeeded', 'failed']);
    return { run, seen: target.requests.slice(before) };
  } finally {
    await t.stop();
  }
}

const message = (run: RunRow) => (run.error as { message?: string } | null)?.message ?? '';

describe('http.request allowlist entries bind the port', () => {
  it('does not let an entry without a port reach another port of that host', async () => {
    const { run, seen } = await get({ allowedHosts: ['127.0.0.1'] }, `${target.url}/x`);
    expect(run.status).toBe('failed');
    expect(message(run)).toContain(`http.request refused 127.0.0.1:${port}: it is not on the allowlist (127.0.0.1)`);
    expect(message(run)).toContain('an entry without a port admits only the default port');
    expect(seen).toHaveLength(0);

    const explicit = await get({ allowedHosts: [{ host: '127.0.0.1', allowInsecure: true, allowPrivate: true }] }, `${target.url}/x`);
    expect(explicit.run.status).toBe('failed');
    expect(message(explicit.run)).toContain('is not on the allowlist');
    expect(explicit.seen).toHaveLength(0);
  });
});

describe('http.request credentials', () => {
  it('never sends configured credentials over plain http, and sends them only to the port they are bound to', async () => {
    const auth = { Authorization: 'Bearer secret-token' };
    const plain = await get({ allowedHosts: [target.host], headers: { [target.host]: auth } }, `${target.url}/x`);
    expect(plain.run.status).toBe('failed');
    expect(message(plain.run)).toContain(`http.request refused http://${target.host}: plain http is not allowed. Use https, or set "allowInsecure": true`);
    expect(plain.seen.filter((r) => r.headers.authorization)).toEqual([]);

    // Credentials keyed by the bare host belong to its default port, not to every port of it.
    const otherPort = await get({ allowedHosts: [target.allowEntry], headers: { '127.0.0.1': auth } }, `${target.url}/x`);
    expect(otherPort.run.status).toBe('succeeded');
    expect(otherPort.seen).toHaveLength(1);
    expect(otherPort.seen[0]?.headers.authorization).toBeUndefined();
  });
});

describe('http.request resolves the host and checks the addresses', () => {
  it('refuses a name that resolves to loopback, and a loopback literal, unless the entry allows private addresses', async () => {
    const named = await get({ allowedHosts: [{ host: `localhost:${port}`, allowInsecure: true }] }, `http://localhost:${port}/x`);
    expect(named.run.status).toBe('failed');
    expect(message(named.run)).toMatch(new RegExp(`http.request refused localhost:${port}: it resolves to (127\\.0\\.0\\.1|::1), a loopback address`));
    expect(message(named.run)).toContain('"allowPrivate": true');
    expect(named.seen).toHaveLength(0);

    const literal = await get({ allowedHosts: [{ host: target.host, allowInsecure: true }] }, `${target.url}/x`);
    expect(message(literal.run)).toContain(`it resolves to 127.0.0.1, a loopback address`);
    expect(literal.seen).toHaveLength(0);

    const allowed = await get({ allowedHosts: [{ host: `localhost:${port}`, allowInsecure: true, allowPrivate: true }] }, `http://localhost:${port}/x`);
    // localhost may resolve to ::1 first, where nothing listens; either way the address check let it through.
    expect(message(allowed.run)).not.toContain('resolves to');
  });

  it('classifies loopback, link-local, private, unspecified and IPv4-mapped addresses as not public', () => {
    for (const ip of [
      '127.0.0.1',
      '127.8.9.10',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.254',
      '192.168.1.1',
      '169.254.169.254',
      '0.0.0.0',
      '100.64.0.1',
      '::1',
      '::',
      'fe80::1',
      'fe80::1%eth0',
      'fc00::1',
      'fd12:3456::1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::ffff:a9fe:a9fe',
      '::ffff:10.0.0.1',
    ]) {
      expect([ip, nonPublicAddress(ip)]).toEqual([ip, expect.any(String)]);
    }
    for (const ip of ['8.8.8.8', '172.32.0.1', '93.184.216.34', '2606:4700:4700::1111', '::ffff:8.8.8.8']) {
      expect([ip, nonPublicAddress(ip)]).toEqual([ip, null]);
    }
  });

  it('judges an IPv6 address that carries an IPv4 one (mapped, compatible, NAT64) by that IPv4 address, and names why', () => {
    const why: [string, string | null][] = [
      ['::ffff:127.0.0.1', 'a loopback address'],
      ['::FFFF:7F00:1', 'a loopback address'],
      ['::127.0.0.1', 'a loopback address'],
      ['64:ff9b::7f00:1', 'a loopback address'],
      ['64:ff9b::10.0.0.1', 'a private address'],
      ['::ffff:172.20.0.1', 'a private address'],
      ['::ffff:100.64.0.1', 'a shared (carrier-grade NAT) address'],
      ['::ffff:0.0.0.0', 'an unspecified ("this network") address'],
      ['::ffff:224.0.0.1', 'a multicast or reserved address'],
      ['::', 'an unspecified address'],
      ['::1', 'a loopback address'],
      ['224.0.0.1', 'a multicast or reserved address'],
      ['255.255.255.255', 'a multicast or reserved address'],
      ['fec0::1', 'a site-local address'],
      ['ff02::1', 'a multicast address'],
      ['febf::1', 'a link-local address'],
      ['localhost', 'not an IP address'],
      ['64:ff9b::8.8.8.8', null],
      ['::8.8.8.8', null],
      ['::ffff:93.184.216.34', null],
      ['fe00::1', null],
      ['64:ff9b:1::7f00:1', null], // the local-use NAT64 prefix is not the well-known one
    ];
    for (const [ip, expected] of why) expect([ip, nonPublicAddress(ip)]).toEqual([ip, expected]);
  });
});

describe('http.request owns the idempotency header', () => {
  it("drops any spelling of Idempotency-Key from the input and sends the call's own key", async () => {
    const { run, seen } = await get({ allowedHosts: [target.allowEntry] }, `${target.url}/x`, { 'idempotency-key': 'chosen-by-the-caller', 'X-Trace': 't1' });
    expect(run.status).toBe('succeeded');
    expect(seen).toHaveLength(1);
    expect(seen[0]?.headers['idempotency-key']).toBe(`${run.id}:0`);
    expect(seen[0]?.headers['x-trace']).toBe('t1');
  });
});

describe('http.request configuration at start-up', () => {
  it('stops start-up on a bad tools.http.request section, naming the field', async () => {
    const start = async (httpConfig: unknown) => {
      const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'tollgate-http-')), 'tollgate.json');
      writeFileSync(file, JSON.stringify({ tools: { 'http.request': httpConfig } }));
      const config = loadConfig({ DATABASE_URL: files.db.url, TOLLGATE_CONFIG: file, LOG_LEVEL: 'silent' });
      const app = await startApp({ config, log: testLogger(), mode: 'none' });
      await app.stop();
    };
    await expect(start({ allowedHosts: 'x.com' })).rejects.toMatchObject({
      code: 'TG_CONFIG_INVALID',
      message: expect.stringContaining('tools.http.request.allowedHosts'),
    });
    await expect(start({ allowedHosts: ['https://x.com/api'] })).rejects.toMatchObject({
      code: 'TG_CONFIG_INVALID',
      message: expect.stringMatching(/tools\.http\.request\.allowedHosts\.0.*without a scheme or path/s),
    });
  });
});
