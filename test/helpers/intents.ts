/**
 * Chat requests are acknowledged once recorded; the worker carries them out right after (a run
 * start, a decision, a Retry: `chat-intent` jobs, src/chat/intake.ts). Tests that look at the
 * outcome wait for that with `intentsCarriedOut`, which the Slack and Teams harnesses' `send`
 * does by default; a test about the ack itself passes `settle: false`.
 */
import type pg from 'pg';
import { poll } from './poll.ts';

/** Resolves once no `chat-intent` job is waiting or running. */
export async function intentsCarriedOut(pool: pg.Pool, timeoutMs = 20_000): Promise<void> {
  let waiting: string | undefined;
  await poll(
    async () => {
      const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM graphile_worker.jobs WHERE task_identifier = 'chat-intent'`);
      waiting = rows[0]?.n;
      return Number(waiting) === 0;
    },
    {
      message: 'the recorded chat requests to be carried out (is a worker running?)',
      detail: () => `${waiting} were still waiting.`,
      timeoutMs,
      intervalMs: 10,
      retryErrors: false,
    },
  );
}
