/**
 * The console's audit-chain status. Verifying walks every chain of the event log, so it runs only
 * when someone asks (the page's "Verify now"), one at a time per process, and the page shows the
 * last result with its time.
 */
import type pg from 'pg';
import { verifyAuditChain, type VerifyReport } from '../audit/verify.ts';
import type { Logger } from '../common/log.ts';

export interface AuditState {
  last?: { report: VerifyReport; at: Date };
  failed?: { message: string; at: Date };
  running: boolean;
}

export class AuditStatus {
  #last: AuditState['last'];
  #failed: AuditState['failed'];
  #running: Promise<void> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly log: Logger,
  ) {}

  get state(): AuditState {
    return { last: this.#last, failed: this.#failed, running: this.#running !== undefined };
  }

  /** Verifies now; a request while one runs waits for that one instead of starting another. */
  verify(): Promise<void> {
    this.#running ??= verifyAuditChain(this.pool)
      .then((report) => {
        this.#last = { report, at: new Date() };
        this.#failed = undefined;
      })
      .catch((e: unknown) => {
        this.log.warn({ err: e }, 'console: audit verification failed to run');
        this.#failed = { message: (e as Error).message, at: new Date() };
      })
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
  }
}
