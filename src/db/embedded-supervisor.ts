/**
 * Keeps the embedded PostgreSQL running for as long as this process uses it: it looks every
 * `checkEveryMs` whether the data dir's postmaster is alive and, when it is gone without this
 * process having stopped it (SIGKILL, OOM killer, a crash), restarts it, up to `maxAttempts`
 * times with doubling delays (src/common/backoff.ts), logging each attempt, the success and the
 * give-up.
 *
 * Every process using the server supervises it, not only the one that started it: the starter
 * may be a CLI command that has exited since. When several notice the death together, the data
 * dir's start lock lets one restart it and the others find it running (`restart` attaches then).
 * Timers are unref'd: supervision never keeps a finished CLI command alive.
 */
import { retryWithBackoff } from '../common/backoff.ts';
import type { Logger } from '../common/log.ts';

export interface SupervisionOptions {
  /** How often the postmaster is looked at (ms). */
  checkEveryMs?: number;
  /** Restart attempts for one outage before giving up. */
  maxAttempts?: number;
  /** Delay after the first failed attempt (ms); doubled after each, up to `maxDelayMs`. */
  firstDelayMs?: number;
  maxDelayMs?: number;
}

export const SUPERVISION_DEFAULTS: Required<SupervisionOptions> = {
  checkEveryMs: 1000,
  maxAttempts: 6,
  firstDelayMs: 500,
  maxDelayMs: 8000,
};

export interface Supervisor {
  stop(): void;
}

export function superviseEmbedded(opts: {
  isRunning: () => boolean;
  /** Starts the server again, or attaches to one another process restarted; 'restarted' or 'found'. */
  restart: () => Promise<'restarted' | 'found'>;
  log: Logger;
  options?: SupervisionOptions | undefined;
}): Supervisor {
  const o = { ...SUPERVISION_DEFAULTS, ...opts.options };
  const { log } = opts;
  const stopping = new AbortController();
  let recovering = false;

  const recover = async () => {
    const restarted = await retryWithBackoff({
      backoff: { firstMs: o.firstDelayMs, maxMs: o.maxDelayMs },
      maxAttempts: o.maxAttempts,
      signal: stopping.signal,
      ref: false,
      attempt: async (attempt) => {
        log.warn({ attempt, maxAttempts: o.maxAttempts }, 'embedded PostgreSQL is not running; restarting it');
        const how = await opts.restart();
        if (how === 'restarted') log.info({ attempt }, 'embedded PostgreSQL restarted');
        else log.info({ attempt }, 'embedded PostgreSQL is running again (restarted by another Tollgate process)');
      },
      onError: (e, attempt) => {
        log.warn({ attempt, maxAttempts: o.maxAttempts, err: (e as Error).message }, 'embedded PostgreSQL restart attempt failed');
      },
    });
    if (restarted || stopping.signal.aborted) return;
    log.error(
      { attempts: o.maxAttempts },
      'embedded PostgreSQL could not be restarted; giving up. Restart Tollgate, or look at the data dir (TOLLGATE_DATA_DIR) for the cause',
    );
    clearInterval(timer);
  };

  const timer = setInterval(() => {
    if (stopping.signal.aborted || recovering || opts.isRunning()) return;
    recovering = true;
    // Fire-and-forget from a timer: recover() reports each failed attempt itself (retryWithBackoff's
    // onError), and `recovering` keeps a second one from starting meanwhile.
    void recover().finally(() => {
      recovering = false;
    });
  }, o.checkEveryMs);
  timer.unref();

  return {
    stop: () => {
      stopping.abort();
      clearInterval(timer);
    },
  };
}
