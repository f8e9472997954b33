/**
 * Teams identity → Tollgate principal, from an activity whose token botbuilder verified
 * (invariant 5): `teams:<tenant>:<aadObjectId>`. The AAD object id is only unique within its
 * tenant, so the tenant is part of the principal: a user of another tenant with the same object
 * id is someone else. Card actions carry ids only; nothing here reads an action's data.
 */
import type { Principal } from '../../src/chat/index.ts';

/** The fields of an incoming activity that name its sender, its tenant and where it was said. */
export interface TeamsActivity {
  type: string;
  id?: string;
  name?: string;
  text?: string;
  value?: unknown;
  serviceUrl: string;
  channelId?: string;
  replyToId?: string;
  action?: string;
  from: { id: string; name?: string; aadObjectId?: string };
  recipient?: { id: string; name?: string };
  conversation: { id: string; conversationType?: string; tenantId?: string; isGroup?: boolean };
  channelData?: { tenant?: { id?: string }; team?: { id?: string }; channel?: { id?: string } };
  entities?: { type: string; text?: string; mentioned?: { id?: string; name?: string; aadObjectId?: string } }[];
  membersAdded?: { id: string; name?: string; aadObjectId?: string }[];
}

/** The tenant the activity comes from: `channelData.tenant.id`, else `conversation.tenantId`. */
export function tenantOf(a: TeamsActivity): string | undefined {
  return a.channelData?.tenant?.id ?? a.conversation.tenantId ?? undefined;
}

/** The verified sender as a principal; undefined when the activity names no AAD user or tenant (a bot, the Emulator). */
export function principalOf(a: TeamsActivity): Principal | undefined {
  const tenant = tenantOf(a);
  const user = a.from.aadObjectId;
  if (!tenant || !user) return undefined;
  return { platform: 'teams', tenant, user, ...(a.from.name ? { name: a.from.name } : {}) };
}

/**
 * The message text with the bot's own mentions (`<at>Tollgate</at>`) taken out, as the command
 * parser reads it. Other people's mentions stay as their names, except in a `delegate` command,
 * where a mention whose entity carries the person's AAD object id becomes their principal
 * `teams:<tenant>:<aadObjectId>` (in the activity's tenant). A mention that carries only a Bot
 * Framework id (`29:…`) stays a name, and the grammar asks for the principal written out.
 */
export function commandText(a: TeamsActivity): string {
  let text = a.text ?? '';
  const others: { text: string; oid: string | undefined }[] = [];
  for (const e of a.entities ?? []) {
    if (e.type !== 'mention' || !e.text) continue;
    if (!a.recipient || e.mentioned?.id === a.recipient.id) text = text.split(e.text).join(' ');
    else others.push({ text: e.text, oid: aadObjectIdOf(e.mentioned) });
  }
  const tenant = tenantOf(a);
  if (tenant && /^delegate\b/i.test(plain(text))) {
    for (const o of others) if (o.oid) text = text.split(o.text).join(`teams:${tenant}:${o.oid}`);
  }
  return plain(text);
}

function plain(text: string): string {
  return text
    .replace(/<at>([^<]*)<\/at>/g, '$1')
    .replace(/&nbsp;/g, ' ')
    .trim();
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The AAD object id a mention entity carries: `aadObjectId`, or an id that is one (`<guid>`, `8:orgid:<guid>`). */
function aadObjectIdOf(m: { id?: string; aadObjectId?: string } | undefined): string | undefined {
  if (m?.aadObjectId && GUID.test(m.aadObjectId)) return m.aadObjectId;
  const id = m?.id?.replace(/^8:orgid:/, '');
  return id && GUID.test(id) ? id : undefined;
}
