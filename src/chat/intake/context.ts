/**
 * What every part of intake shares (`Intake`): the options, the two grouped writes (run starts
 * and deferred clicks), the platforms, and the explanation of a refusal through the outbox.
 */
import type pg from 'pg';
import type { Principal } from '../../common/principals.ts';
import { TollgateError } from '../../common/errors.ts';
import { GroupCommit } from '../../db/group-commit.ts';
import type { Queryable } from '../../db/queryable.ts';
import { withTransaction } from '../../db/transaction.ts';
import type { WorkflowDefinition } from '../../runtime/workflow.ts';
import { rememberAll, type TeamsSeen } from '../directory.ts';
import { writeDeferredIntents, writeRunStarts, type DeferredWrite, type RunStartWrite } from '../intake-writes.ts';
import { addReply, type Where } from '../outbox.ts';
import type { ChatPlatform } from '../platform.ts';
import { notice, type ChatReply } from '../replies.ts';
import type { ChatCoreOptions } from './types.ts';

export interface Intake {
  readonly o: ChatCoreOptions;
  readonly starts: GroupCommit<RunStartWrite & Noted, boolean>;
  readonly deferred: GroupCommit<DeferredWrite & Noted, boolean>;
  platform(name: string): ChatPlatform;
  /** Records a one-off explanation (a notice's text, or a reply) for one person, through the outbox (no-op without a place to say it). */
  explain(actor: Principal, at: Where | null, text: string | ChatReply, q?: Queryable): Promise<void>;
  /** The workflow, or undefined when no such name (and version) is registered. */
  workflow(name: string, version?: number): WorkflowDefinition | undefined;
}

export function createIntake(o: ChatCoreOptions): Intake {
  const platform = (name: string): ChatPlatform => {
    const p = o.platforms.get(name);
    if (!p) throw new TollgateError('TG_CONFIG_INVALID', `Chat platform "${name}" is not registered in this process.`);
    return p;
  };
  return {
    o,
    // One statement per write: atomic on its own, so the pool runs it without a transaction
    // (unless an item carries a directory note: then one transaction holds both).
    starts: new GroupCommit({ name: 'run starts', log: o.log, write: noting<RunStartWrite & Noted>(o.pool, writeRunStarts) }),
    deferred: new GroupCommit({ name: 'deferred clicks', log: o.log, write: noting<DeferredWrite & Noted>(o.pool, writeDeferredIntents) }),
    platform,
    explain: async (actor, at, text, q = o.pool) => {
      if (!at) return;
      await addReply(q, at, platform(at.platform).render(typeof text === 'string' ? notice(text) : text), { visibleTo: at.direct ? null : actor });
    },
    workflow: (name, version) => {
      try {
        return o.registry.get(name, version);
      } catch {
        return undefined;
      }
    },
  };
}

/** A grouped write's item may carry what its activity said of where people are (directory.ts). */
export interface Noted {
  remember?: TeamsSeen | undefined;
}

/**
 * A grouped write that also records its items' directory notes: the write alone when none has
 * one (one statement, atomic on its own), else both in one transaction.
 */
function noting<I extends Noted>(pool: pg.Pool, write: (q: Queryable, items: I[]) => Promise<boolean[]>): (items: I[]) => Promise<boolean[]> {
  return async (items) => {
    const notes = items.flatMap((i) => (i.remember ? [i.remember] : []));
    if (notes.length === 0) return write(pool, items);
    return withTransaction(pool, async (q) => {
      const written = await write(q, items);
      await rememberAll(q, notes);
      return written;
    });
  };
}
