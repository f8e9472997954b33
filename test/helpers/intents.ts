/**
 * Chat requests are acknowledged once recorded; the worker carries them out right after (a run
 * start, a decision, a Retry: `chat-intent` jobs, src/chat/intake.ts). Tests that look at the
 * outcome wait for that with `intentsCarriedOut`, which the Slack and Teams harnesses' `send`
 * does by default; a test about the ack itself passes `settle: false`.
 */
import type pg from 'pg';

/** Resolves once no `chat-intent` job is waiting or running. */
export async function intentsCarriedOut(pool: pg.Pool, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM graphile_worker.jobs WHERE task_identifier = 'chat-intent'`);
    if (Number(rows[0]?.n) === 0) return;
    if (Date.now() > deadline) throw new Error(`${rows[0]?.n} recorded chat requests were not carried out within ${timeoutMs} ms (is a worker running?)`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
