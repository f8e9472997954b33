/**
 * The tests' one polling helper (test/helpers/poll.ts): what counts as an answer, and what a
 * failed wait says, since every other test file relies on it to fail clearly.
 */
import { describe, expect, it } from 'vitest';
import { holdsFor, poll, PollTimeout, undefinedIfTimedOut } from './helpers/poll.ts';

describe('poll', () => {
  it('returns the first value the check yields; undefined, null and false mean "not yet", 0 and "" are values', async () => {
    const answers: unknown[] = [undefined, null, false, 0];
    expect(await poll(() => answers.shift() as number | undefined, { message: 'a number', intervalMs: 1 })).toBe(0);
    expect(await poll(() => '', { message: 'a string' })).toBe('');
  });

  it('fails after its timeout naming what it waited for, the last value seen and the last error', async () => {
    let n = 0;
    const wait = poll(
      () => {
        n++;
        if (n % 2 === 0) throw new Error('the row is not there yet');
        return false;
      },
      { message: 'the row', timeoutMs: 60, intervalMs: 5, detail: () => 'more context' },
    );
    await expect(wait).rejects.toBeInstanceOf(PollTimeout);
    await expect(wait).rejects.toThrow(
      /^Timed out after 60 ms waiting for the row\. The last check gave false\. The last error was: the row is not there yet\nmore context$/,
    );
    expect(n).toBeGreaterThan(2);
  });

  it("with retryErrors: false, fails at once with the check's own error", async () => {
    let n = 0;
    const wait = poll(
      () => {
        n++;
        throw new Error('a real failure');
      },
      { message: 'anything', retryErrors: false },
    );
    await expect(wait).rejects.toThrow('a real failure');
    expect(n).toBe(1);
  });

  it('undefinedIfTimedOut turns only a timeout into undefined', async () => {
    expect(await poll(() => false, { message: 'never', timeoutMs: 10 }).catch(undefinedIfTimedOut)).toBeUndefined();
    await expect(
      poll(
        () => {
          throw new Error('boom');
        },
        { message: 'x', retryErrors: false },
      ).catch(undefinedIfTimedOut),
    ).rejects.toThrow('boom');
  });
});

describe('holdsFor', () => {
  it('resolves when the condition holds for the whole window, and fails as soon as it stops', async () => {
    await holdsFor(() => true, { forMs: 30, message: 'true to stay true' });
    const started = Date.now();
    let n = 0;
    await expect(holdsFor(() => ++n < 3, { forMs: 10_000, intervalMs: 5, message: 'the app to stay up' })).rejects.toThrow(
      /^Expected the app to stay up for 10000 ms; it stopped after \d+ ms\.$/,
    );
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
