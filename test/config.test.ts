import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/config.ts';
import { parseProjectConfig } from '../src/config/project-config.ts';

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
    expect(() => loadConfig({ WORKER_CONCURRENCY: '40', PG_POOL_SIZE: '20' })).toThrow(
      /PG_POOL_SIZE: got "20"; expected at least WORKER_CONCURRENCY \+ 5 = 45/,
    );
  });

  it('reads the HTTP timeouts, the connection budget and the shutdown timeout, and refuses headers slower than the request', () => {
    expect(loadConfig({})).toMatchObject({
      http: { headersTimeoutMs: 5000, requestTimeoutMs: 10_000, keepAliveTimeoutMs: 65_000, maxConnections: 1000 },
      shutdownTimeoutMs: 10_000,
    });
    const c = loadConfig({
      TOLLGATE_HTTP_HEADERS_TIMEOUT_MS: '2000',
      TOLLGATE_HTTP_REQUEST_TIMEOUT_MS: '3000',
      TOLLGATE_HTTP_KEEP_ALIVE_TIMEOUT_MS: '75000',
      TOLLGATE_HTTP_MAX_CONNECTIONS: '50',
      TOLLGATE_SHUTDOWN_TIMEOUT_MS: '25000',
    });
    expect(c).toMatchObject({
      http: { headersTimeoutMs: 2000, requestTimeoutMs: 3000, keepAliveTimeoutMs: 75_000, maxConnections: 50 },
      shutdownTimeoutMs: 25_000,
    });
    expect(() => loadConfig({ TOLLGATE_HTTP_HEADERS_TIMEOUT_MS: '20000' })).toThrow(
      /TOLLGATE_HTTP_HEADERS_TIMEOUT_MS: got "20000"; expected at most TOLLGATE_HTTP_REQUEST_TIMEOUT_MS \(10000\)/,
    );
    expect(() => loadConfig({ TOLLGATE_SHUTDOWN_TIMEOUT_MS: '10' })).toThrow(/TOLLGATE_SHUTDOWN_TIMEOUT_MS: got "10"; expected a value >= 1000/);
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ DATABASE_URL: '' }).databaseUrl).toBeUndefined();
  });

  it('rejects a principal that is not platform:tenant:user in the project file, naming the field', () => {
    expect(() => parseProjectConfig({ groups: { finance: ['slack:T1:U1', 'alice'] } })).toThrow(/groups\.finance\.1: "alice" is not a principal/);
  });

  it('reads the model settings, with defaults for the deadline and retries, and refuses bad ones by name', () => {
    expect(loadConfig({}).model).toEqual({ apiKey: undefined, baseUrl: undefined, name: undefined, timeoutMs: 30_000, maxRetries: 2 });
    expect(loadConfig({ TOLLGATE_MODEL_TIMEOUT_MS: '1500', TOLLGATE_MODEL_MAX_RETRIES: '0' }).model).toMatchObject({ timeoutMs: 1500, maxRetries: 0 });
    expect(() => loadConfig({ TOLLGATE_MODEL_TIMEOUT_MS: '0' })).toThrow(/TOLLGATE_MODEL_TIMEOUT_MS: got "0"; expected a value >= 1/);
    expect(() => loadConfig({ TOLLGATE_MODEL_MAX_RETRIES: '-1' })).toThrow(/TOLLGATE_MODEL_MAX_RETRIES: got "-1"; expected a value >= 0/);
    expect(() => loadConfig({ OPENAI_API_KEY: 'sk-secret-value', OPENAI_BASE_URL: 'nope' })).toThrow(/OPENAI_BASE_URL: got "nope"/);
  });

  it('reads model prices and redaction patterns from the project file, and refuses bad ones naming the path', () => {
    expect(parseProjectConfig({}).model).toEqual({ prices: {}, redact: [] });
    const ok = parseProjectConfig({
      model: { prices: { 'gpt-4o': { inputPerMillion: 2.5, outputPerMillion: 10 } }, redact: [{ name: 'EMPLOYEE_ID', pattern: 'E\\d{6}', flags: 'i' }] },
    });
    expect(ok.model.prices['gpt-4o']).toEqual({ inputPerMillion: 2.5, outputPerMillion: 10 });
    expect(ok.model.redact).toEqual([{ name: 'EMPLOYEE_ID', pattern: 'E\\d{6}', flags: 'i' }]);

    expect(() => parseProjectConfig({ model: { prices: { m: { inputPerMillion: -1, outputPerMillion: 1 } } } })).toThrow(
      /model\.prices\.m\.inputPerMillion: must be a number of US dollars/,
    );
    expect(() => parseProjectConfig({ model: { prices: { m: { input: 1 } } } })).toThrow(/model\.prices\.m/);
    expect(() => parseProjectConfig({ model: { redact: [{ name: 'ticket', pattern: 'T-1' }] } })).toThrow(/model\.redact\.0\.name: must be upper-case letters/);
    expect(() => parseProjectConfig({ model: { redact: [{ name: 'TICKET', pattern: '(T-' }] } })).toThrow(
      /model\.redact\.0\.pattern: is not a valid regular expression/,
    );
    expect(() => parseProjectConfig({ model: { redact: [{ name: 'TICKET', pattern: 'x*' }] } })).toThrow(/model\.redact\.0\.pattern: matches empty text/);
    expect(() => parseProjectConfig({ model: { redact: [{ name: 'TICKET', pattern: 'x', flags: 'gy' }] } })).toThrow(/model\.redact\.0\.flags: may only hold/);
    expect(() => parseProjectConfig({ model: { price: {} } })).toThrow(/model/);
  });
});
