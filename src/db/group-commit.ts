/**
 * Group commit in the application: concurrent writes share one statement, one transaction and
 * one WAL flush instead of paying one each.
 *
 * `submit(item)` resolves with that item's own outcome once the write that carried it has
 * committed. While a write is in flight, new arrivals queue; when it ends, everything queued
 * goes together in the next write (up to `maxBatch`). An item arriving at an idle batcher is
 * written at once, so at low load nothing waits for company (no timer, no linger).
 *
 * `write(items)` must return one outcome per item, in order, from a single atomic write (one
 * set-based statement, or one transaction). If it throws for a batch of several items, the
 * items are written again one by one, so an item the database refuses (a constraint, a value it
 * cannot store) fails alone and its neighbours are still recorded; a lone item's error is its
 * caller's. An atomic write that threw recorded nothing, so writing again is safe.
 *
 * The same idea as PostgreSQL's own commit_delay, moved to where the round trips are: on a
 * loaded machine a statement's round trip costs more than its work, so 200 clicks become a
 * handful of statements rather than 200 transactions queueing for pool connections.
 */
import { TollgateError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';

export interface GroupCommitOptions<I, O> {
  /** For logs. */
  name: string;
  /** Writes the items atomically; one outcome per item, in the same order. */
  write: (items: I[]) => Promise<O[]>;
  /** The most items one write carries (default 500). */
  maxBatch?: number;
  log: Logger;
}

interface Waiting<I, O> {
  item: I;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
}

export class GroupCommit<I, O> {
  readonly #o: GroupCommitOptions<I, O>;
  readonly #queue: Waiting<I, O>[] = [];
  #inFlight = false;
  #batches = 0;
  #items = 0;

  constructor(o: GroupCommitOptions<I, O>) {
    this.#o = o;
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      this.#pump();
    });
  }

  /** Writes so far and the items they carried (for tests and the bench: proof that items were grouped). */
  stats(): { batches: number; items: number } {
    return { batches: this.#batches, items: this.#items };
  }

  #pump(): void {
    if (this.#inFlight || this.#queue.length === 0) return;
    this.#inFlight = true;
    const batch = this.#queue.splice(0, this.#o.maxBatch ?? 500);
    void this.#flush(batch).finally(() => {
      this.#inFlight = false;
      this.#pump();
    });
  }

  async #flush(batch: Waiting<I, O>[]): Promise<void> {
    this.#batches++;
    this.#items += batch.length;
    try {
      const out = await this.#o.write(batch.map((w) => w.item));
      if (out.length !== batch.length)
        throw new TollgateError('TG_INTERNAL', `${this.#o.name}: the write returned ${out.length} outcomes for ${batch.length} items`);
      batch.forEach((w, i) => w.resolve(out[i] as O));
      return;
    } catch (e) {
      if (batch.length === 1) {
        batch[0]?.reject(e);
        return;
      }
      this.#o.log.warn({ err: e, batch: this.#o.name, items: batch.length }, 'a grouped write failed; writing its items one by one');
    }
    for (const w of batch) {
      try {
        const [o] = await this.#o.write([w.item]);
        w.resolve(o as O);
      } catch (e) {
        w.reject(e);
      }
    }
  }
}
