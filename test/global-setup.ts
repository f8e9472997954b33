/**
 * One PostgreSQL per test run: `TEST_DATABASE_URL` when set (a maintenance database the tests
 * may create databases from), otherwise an embedded server in a fresh temporary directory,
 * stopped and removed at the end. Each test file then creates its own database on it
 * (test/helpers/db.ts), so files never see each other's rows.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres, type EmbeddedServer } from '../src/db/embedded.ts';
import { createLogger } from '../src/common/log.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string;
  }
}

let server: EmbeddedServer | undefined;
let dir: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  const external = process.env.TEST_DATABASE_URL;
  if (external) {
    project.provide('pgUrl', external);
    return;
  }
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tollgate-test-'));
  await fs.chmod(dir, 0o755);
  const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'warn', format: 'json' });
  server = await startEmbeddedPostgres({ dataDir: dir, port: 0, log });
  project.provide('pgUrl', server.url);
}

export async function teardown(): Promise<void> {
  await server?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
}
