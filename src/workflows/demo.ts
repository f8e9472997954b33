/**
 * `demo`: several steps and a short sleep, runnable with no arguments (`tollgate run demo`).
 * `failAt=<step>` makes that step fail (`failTimes` times, default: every attempt), to show
 * retries, failure and `tollgate runs retry`.
 */
import { z } from 'zod';
import { NonRetriableError } from '../common/errors.ts';
import { defineWorkflow } from '../runtime/workflow.ts';

export const DEMO_STEPS = ['prepare', 'fetch', 'transform', 'publish'] as const;

export const demoInput = z.object({
  name: z.string().min(1).max(100).default('world').describe('Who to greet'),
  sleepMs: z.coerce.number().int().min(0).max(3_600_000).default(500).describe('Length of the sleep between fetch and transform'),
  failAt: z.enum(DEMO_STEPS).optional().describe('A step that fails'),
  failTimes: z.coerce.number().int().min(1).optional().describe('How many attempts of failAt fail (default: all)'),
});

export const demo = defineWorkflow({
  name: 'demo',
  version: 1,
  description: 'A few steps and a short sleep; failAt=<step> makes a step fail.',
  input: demoInput,
  run: async (ctx) => {
    const { input } = ctx;
    const maybeFail = (step: string, attempt: number) => {
      if (input.failAt !== step) return;
      if (input.failTimes === undefined) throw new NonRetriableError(`${step} failed because the run asked it to (failAt=${step}).`);
      // Not a Tollgate error: the workflow's own retriable failure, a plain Error as any workflow's code would throw.
      if (attempt <= input.failTimes) throw new Error(`${step} failed on attempt ${attempt} (failTimes=${input.failTimes}).`);
    };
    const retry = { maxAttempts: (input.failTimes ?? 0) + 2, initialDelayMs: 50 };
    const startedAt = ctx.now();
    const prepared = await ctx.step(
      'prepare',
      ({ attempt }) => {
        maybeFail('prepare', attempt);
        return { greeting: `Hello, ${input.name}`, startedAt: startedAt.toISOString() };
      },
      { retry },
    );
    const fetched = await ctx.step(
      'fetch',
      ({ attempt }) => {
        maybeFail('fetch', attempt);
        return { items: [1, 2, 3] };
      },
      { retry },
    );
    await ctx.sleep('pause', input.sleepMs);
    const total = await ctx.step(
      'transform',
      ({ attempt }) => {
        maybeFail('transform', attempt);
        return fetched.items.reduce((a, b) => a + b, 0);
      },
      { retry },
    );
    return ctx.step(
      'publish',
      ({ attempt, idempotencyKey }) => {
        maybeFail('publish', attempt);
        return { message: `${prepared.greeting}: total ${total}`, idempotencyKey };
      },
      { retry },
    );
  },
});
