import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');

describe('embedded PostgreSQL', () => {
  it('leaves the process its own exit code (a failing run must not exit 0)', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tollgate-exit-'));
    await fs.chmod(dir, 0o755);
    try {
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/embedded-exit-code.ts', dir], { cwd: ROOT, stdio: 'inherit' });
      const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      expect(code).toBe(3);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
