import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/common/log.ts';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { lines, log: createLogger({ level: 'info', destination: stream }) };
}

describe('logging', () => {
  it('writes JSON lines with runId and step as fields', () => {
    const { lines, log } = capture();
    log.child({ runId: 'run_1' }).child({ step: 'fetch' }).info('step started');
    expect(lines[0]).toMatchObject({ runId: 'run_1', step: 'fetch', msg: 'step started' });
  });

  it('never writes tokens or secrets', () => {
    const { lines, log } = capture();
    log.info({ slack: { botToken: 'xoxb-123', signingSecret: 's3cret' }, token: 'abc', req: { headers: { authorization: 'Bearer x' } } }, 'configured');
    const text = JSON.stringify(lines[0]);
    expect(text).not.toContain('xoxb-123');
    expect(text).not.toContain('s3cret');
    expect(text).not.toContain('Bearer x');
    expect(text).toContain('[redacted]');
  });
});
