import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { parseProjectConfig } from '../src/project-config.ts';

describe('configuration', () => {
  it('applies defaults and freezes the result', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ host: '127.0.0.1', port: 3000, databaseUrl: undefined, worker: { concurrency: 10 } });
    expect(c.dataDir).toMatch(/\.tollgate$/);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.worker)).toBe(true);
  });

  it('keeps 0 as a value (PORT=0 means any free port)', () => {
    expect(loadConfig({ PORT: '0' }).port).toBe(0);
  });

  it('names each bad variable, the value found and what is expected', () => {
    expect(() => loadConfig({ PORT: 'eighty', LOG_LEVEL: 'loud' })).toThrow(
      /PORT: got "eighty"; expected a number[\s\S]*LOG_LEVEL: got "loud"; expected one of "fatal"/,
    );
  });

  it('masks the password of a bad DATABASE_URL and secrets in messages', () => {
    let message = '';
    try {
      loadConfig({ DATABASE_URL: 'not a url with secret', SLACK_API_URL: 'nope' });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain('DATABASE_URL');
    expect(message).toContain('SLACK_API_URL: got "nope"');
    expect(message).not.toContain('not a url with secret');
  });

  it('sizes the pool for the worker, and refuses a pool too small for its concurrency', () => {
    expect(loadConfig({}).pgPoolSize).toBe(25);
    expect(loadConfig({ WORKER_CONCURRENCY: '40' }).pgPoolSize).toBe(85);
    expect(() => loadConfig({ WORKER_CONCURRENCY: '40', PG_POOL_SIZE: '20' })).toThrow(/PG_POOL_SIZE: got "20"; expected at least WORKER_CONCURRENCY \+ 5 = 45/);
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ DATABASE_URL: '' }).databaseUrl).toBeUndefined();
  });

  it('rejects a principal that is not platform:tenant:user in the project file, naming the field', () => {
    expect(() => parseProjectConfig({ groups: { finance: ['slack:T1:U1', 'alice'] } })).toThrow(/groups\.finance\.1: "alice" is not a principal/);
  });
});
