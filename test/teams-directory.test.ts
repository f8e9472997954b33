/**
 * The Teams directory's upsert (src/db/queries/teams-directory.ts `rememberSeen`), which every
 * verified Teams activity runs in the transaction that records its request. An approver's burst of
 * clicks must not queue on their own directory row when nothing about them changed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findContact, rememberSeen, tenantServiceUrl, type TeamsSeen } from '../src/db/queries/teams-directory.ts';
import { rememberAll } from '../src/chat/directory.ts';
import { withTransaction } from '../src/db/transaction.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db.close();
});

const seen = (over: Partial<TeamsSeen['users'][number]> = {}, serviceUrl = 'https://smba.example/teams/'): TeamsSeen => ({
  tenant: 'tenant-1',
  serviceUrl,
  users: [{ aadObjectId: 'aad-1', userId: '29:1abc', name: 'Ada', personalConversation: 'a:1conv', ...over }],
});

/** Runs `rememberSeen` in a second transaction, refused after 300 ms of waiting for a lock, while `holder` holds an open one that already ran it. */
async function whileHeld(first: TeamsSeen, second: TeamsSeen): Promise<'written' | 'blocked'> {
  const holder = await db.pool.connect();
  try {
    await holder.query('BEGIN');
    await rememberSeen(holder, first);
    try {
      await withTransaction(db.pool, async (q) => {
        await q.query("SET LOCAL lock_timeout = '300ms'");
        await rememberSeen(q, second);
      });
      return 'written';
    } catch (e) {
      if ((e as { code?: string }).code === '55P03') return 'blocked';
      throw e;
    } finally {
      await holder.query('ROLLBACK');
    }
  } finally {
    holder.release();
  }
}

describe('rememberSeen', () => {
  it('does not wait for another open transaction that saw the same person, when nothing about them changed', async () => {
    await rememberSeen(db.pool, seen());
    expect(await whileHeld(seen(), seen())).toBe('written');
    // A later activity without a name or personal conversation keeps the ones known.
    expect(await whileHeld(seen(), seen({ name: undefined, personalConversation: null }))).toBe('written');
  });

  it('still writes what changed (and waits its turn for the row to do so)', async () => {
    await rememberSeen(db.pool, seen());
    // Two transactions that both change the row still take turns on it.
    expect(await whileHeld(seen({ name: 'Ada M.' }), seen({ name: 'Ada L.' }))).toBe('blocked');
    await rememberSeen(db.pool, seen({ name: 'Ada L.', personalConversation: null }, 'https://smba.example/emea/'));
    expect(await findContact(db.pool, 'tenant-1', 'aad-1')).toEqual({
      userId: '29:1abc',
      name: 'Ada L.',
      conversationId: 'a:1conv',
      serviceUrl: 'https://smba.example/emea/',
    });
    expect(await tenantServiceUrl(db.pool, 'tenant-1')).toBe('https://smba.example/emea/');
  });
});

describe('rememberAll (a grouped write of many activities)', () => {
  it('ends where the same notes written one after another would end (names, conversations, Bot Connectors)', async () => {
    const notes: TeamsSeen[] = [
      { tenant: 'tenant-2', serviceUrl: 'https://smba.example/a/', users: [{ aadObjectId: 'aad-2', userId: '29:2', name: 'Bo', personalConversation: null }] },
      {
        tenant: 'tenant-2',
        serviceUrl: 'https://smba.example/a/',
        users: [{ aadObjectId: 'aad-2', userId: '29:2', name: undefined, personalConversation: 'a:2' }],
      },
      { tenant: 'tenant-2', serviceUrl: 'https://smba.example/a/', users: [{ aadObjectId: 'aad-3', userId: '29:3', name: 'Cy', personalConversation: null }] },
      { tenant: 'tenant-3', serviceUrl: 'https://smba.example/b/', users: [{ aadObjectId: 'aad-2', userId: '29:2b', name: 'Bo', personalConversation: null }] },
      {
        tenant: 'tenant-2',
        serviceUrl: 'https://smba.example/c/',
        users: [{ aadObjectId: 'aad-2', userId: '29:2', name: 'Bo B.', personalConversation: null }],
      },
    ];
    await withTransaction(db.pool, (q) => rememberAll(q, notes));
    expect(await findContact(db.pool, 'tenant-2', 'aad-2')).toEqual({
      userId: '29:2',
      name: 'Bo B.',
      conversationId: 'a:2',
      serviceUrl: 'https://smba.example/c/',
    });
    expect(await findContact(db.pool, 'tenant-2', 'aad-3')).toEqual({
      userId: '29:3',
      name: 'Cy',
      conversationId: null,
      serviceUrl: 'https://smba.example/a/',
    });
    expect(await findContact(db.pool, 'tenant-3', 'aad-2')).toEqual({
      userId: '29:2b',
      name: 'Bo',
      conversationId: null,
      serviceUrl: 'https://smba.example/b/',
    });
    expect(await tenantServiceUrl(db.pool, 'tenant-2')).toBe('https://smba.example/c/');
    const { rows } = await db.pool.query<{ display_name: string }>(`SELECT display_name FROM tollgate.people WHERE principal = 'teams:tenant-2:aad-2'`);
    expect(rows).toEqual([{ display_name: 'Bo B.' }]);
  });
});
