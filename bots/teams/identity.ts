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
  entities?: { type: string; text?: string; mentioned?: { id?: string } }[];
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
 * parser reads it. Other people's mentions stay as their names.
 */
export function commandText(a: TeamsActivity): string {
  let text = a.text ?? '';
  for (const e of a.entities ?? []) {
    if (e.type === 'mention' && e.text && (!a.recipient || e.mentioned?.id === a.recipient.id)) text = text.split(e.text).join(' ');
  }
  return text
    .replace(/<at>([^<]*)<\/at>/g, '$1')
    .replace(/&nbsp;/g, ' ')
    .trim();
}
