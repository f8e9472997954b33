/**
 * People by name, for the chat layer: what platforms already send or answer, kept in the
 * directory (`tollgate.people`, src/db/queries/people.ts) and refreshed when it changes.
 *
 * - Teams sends `from.name` on every activity: recorded with the directory note, in the same
 *   statement (src/db/queries/teams-directory.ts `rememberSeen`).
 * - Slack sends only a handle; its display name comes from `users.info`, asked by the platform's
 *   optional `displayName` (bots/slack/platform.ts) in the worker, after the ack, when the
 *   directory has no name for the person or has not confirmed it for `NAME_TTL_MS`.
 * - Sign-in (the oidc branch) calls `rememberName` with the profile's name.
 *
 * The principal stays the identity: nothing here is read to authorise, and a lookup that fails
 * only leaves the name as it was.
 */
import type { Logger } from '../common/log.ts';
import { formatPrincipal, type Principal } from '../common/principals.ts';
import type { Queryable } from '../db/queryable.ts';
import { selectNames, selectPerson, upsertPersonName } from '../db/queries/people.ts';
import type { ChatPlatform } from './platform.ts';

/** How long a looked-up name is trusted before the platform is asked again (a day). */
export const NAME_TTL_MS = 24 * 60 * 60 * 1000;

/** Where a name came from: a platform's name (`slack`, `teams`), or `oidc` for the sign-in profile. */
export type NameSource = string;

/**
 * Keeps what `principal` is called, from `source`; written only when it changed. An empty name is
 * ignored (a platform that sends none says nothing about the name).
 */
export async function rememberName(q: Queryable, principal: Principal | string, name: string | null | undefined, source: NameSource): Promise<void> {
  const trimmed = name?.trim();
  if (!trimmed) return;
  await upsertPersonName(q, { principal: typeof principal === 'string' ? principal : formatPrincipal(principal), name: trimmed.slice(0, 200), source });
}

/** The display names the directory knows for these principals, by principal. */
export function namesOf(q: Queryable, principals: readonly string[]): Promise<Map<string, string>> {
  return selectNames(q, principals);
}

/**
 * Asks the actor's platform for their display name when the directory has none, or has not
 * confirmed it for `NAME_TTL_MS`, and keeps the answer. Never throws: a name is a courtesy.
 */
export async function refreshName(q: Queryable, platforms: ReadonlyMap<string, ChatPlatform>, actor: Principal, log: Logger, now = Date.now()): Promise<void> {
  const platform = platforms.get(actor.platform);
  if (!platform?.displayName) return;
  const principal = formatPrincipal(actor);
  // Asked or confirmed by this process within the TTL: not even the directory is read again, so a
  // busy approver's clicks cost nothing here (and a lookup that failed is not retried at each click).
  const seen = checkedBy(platforms);
  if (now - (seen.get(principal) ?? -Infinity) < NAME_TTL_MS) return;
  try {
    const known = await selectPerson(q, principal);
    if (known && known.source === platform.name && now - known.updated_at.getTime() < NAME_TTL_MS) {
      seen.set(principal, known.updated_at.getTime());
      return;
    }
    seen.set(principal, now);
    const name = (await platform.displayName(actor))?.trim();
    if (name) await upsertPersonName(q, { principal, name: name.slice(0, 200), source: platform.name, touch: true });
  } catch (e) {
    log.debug({ err: e, principal }, 'the display name of a person could not be looked up; kept as it was');
  }
}

/** When this process last asked for or confirmed each principal's name, per set of platforms (one per chat layer). */
const checked = new WeakMap<ReadonlyMap<string, ChatPlatform>, Map<string, number>>();
const CHECKED_MAX = 10_000;

function checkedBy(platforms: ReadonlyMap<string, ChatPlatform>): Map<string, number> {
  let m = checked.get(platforms);
  if (!m || m.size >= CHECKED_MAX) checked.set(platforms, (m = new Map<string, number>()));
  return m;
}
