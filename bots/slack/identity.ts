/**
 * Slack identity → Tollgate principal, from the verified payload only (invariant 5).
 *
 * `slack:<tenant>:<user id>`: the tenant is the enterprise for org-wide installs (where `team` is
 * null) and otherwise the actor's own workspace (`user.team_id`, which in Slack Connect channels
 * differs from the installing workspace `team.id`). Buttons carry ids only; nothing here reads an
 * action's `value`.
 */
import { personLabel, TollgateError, type Principal } from '../../src/chat/index.ts';

export interface SlackIdentity {
  userId: string;
  /** The actor's home workspace (user.team_id), else the installation's team. */
  teamId?: string | null | undefined;
  enterpriseId?: string | null | undefined;
  isEnterpriseInstall?: boolean | undefined;
  name?: string | undefined;
}

export function slackPrincipal(id: SlackIdentity): Principal {
  const tenant = (id.isEnterpriseInstall && id.enterpriseId) || id.teamId || id.enterpriseId;
  if (!tenant) {
    throw new TollgateError('TG_CHAT_REQUEST_INVALID', `The Slack payload for user ${id.userId} names no team or enterprise; cannot tell who acted.`, {
      user: id.userId,
    });
  }
  return { platform: 'slack', tenant, user: id.userId, ...(id.name ? { name: id.name } : {}) };
}

/** Interaction payloads (block_actions, view_submission): `user`, `team` (null for org installs), `enterprise`. */
export function principalFromInteraction(body: {
  user: { id: string; team_id?: string; username?: string; name?: string };
  team?: { id: string } | null;
  enterprise?: { id: string } | null;
  is_enterprise_install?: boolean;
}): Principal {
  return slackPrincipal({
    userId: body.user.id,
    teamId: body.user.team_id ?? body.team?.id,
    enterpriseId: body.enterprise?.id,
    isEnterpriseInstall: body.is_enterprise_install ?? (body.team === null && Boolean(body.enterprise)),
    name: body.user.username ?? body.user.name,
  });
}

/** Slash command form fields. */
export function principalFromCommand(c: {
  user_id: string;
  user_name?: string;
  team_id: string;
  enterprise_id?: string;
  is_enterprise_install?: string;
}): Principal {
  return slackPrincipal({
    userId: c.user_id,
    teamId: c.team_id,
    enterpriseId: c.enterprise_id,
    isEnterpriseInstall: c.is_enterprise_install === 'true',
    name: c.user_name,
  });
}

/** Events API: the event's user in the envelope's team (or enterprise). */
export function principalFromEvent(
  envelope: { team_id?: string; enterprise_id?: string; is_ext_shared_channel?: boolean; authorizations?: { is_enterprise_install?: boolean }[] },
  event: { user?: string; user_team?: string },
): Principal | undefined {
  if (!event.user) return undefined;
  return slackPrincipal({
    userId: event.user,
    teamId: event.user_team ?? envelope.team_id,
    enterpriseId: envelope.enterprise_id,
    isEnterpriseInstall: envelope.authorizations?.[0]?.is_enterprise_install === true,
  });
}

/** How a principal is shown in Slack: a mention for Slack users, the principal string otherwise. */
export function mention(p: Principal | null | undefined): string {
  if (!p) return 'someone';
  if (p.platform === 'slack') return `<@${p.user}>`;
  // Someone of another platform (a Teams approver): by name with their platform once known (src/views/people.ts).
  return personLabel(p).replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'));
}

/**
 * A click or form submission that does not say who made it (Slack always sends `user`, and a team
 * or an enterprise): it cannot be attributed to anyone, and Bolt itself fails on it (a 500 that
 * Slack retries). Both receivers acknowledge such a request and drop it.
 */
export function isUnattributedInteraction(body: unknown): boolean {
  const b = body as {
    type?: string;
    user?: { id?: string; team_id?: string } | null;
    team?: { id?: string } | null;
    enterprise?: { id?: string } | null;
  } | null;
  if (b?.type !== 'block_actions' && b?.type !== 'view_submission') return false;
  return !b.user?.id || !(b.user.team_id ?? b.team?.id ?? b.enterprise?.id);
}

/** A user as Slack escapes it in text: `<@U123>` or `<@U123|name>`. */
const USER_MENTION = /<@([A-Z0-9]+)(?:\|[^>]*)?>/g;

/**
 * Text for the command grammar. In a `delegate` command, each mention of a person becomes their
 * principal, `slack:<tenant>:<user id>`, in the actor's workspace (or enterprise): who is meant
 * comes from the id Slack wrote, never from a name. Elsewhere, what Slack escapes in a slash
 * command (the manifest's `should_escape`) is written back as typed: `@name`, `#channel`, a link's
 * URL, so `run` parameters read as before.
 */
export function commandTextFor(text: string, tenant: string): string {
  if (/^\s*delegate\b/i.test(text)) return text.replace(USER_MENTION, (_m, id: string) => `slack:${tenant}:${id}`);
  return text
    .replace(/<@([A-Z0-9]+)\|([^>]*)>/g, '@$2')
    .replace(/<#([A-Z0-9]+)\|([^>]*)>/g, '#$2')
    .replace(/<!([a-z]+)(?:\|[^>]*)?>/g, '@$1')
    .replace(/<((?:https?|mailto):[^>|]+)(?:\|[^>]*)?>/g, '$1');
}

/** A mention or DM's text for the grammar: the bot's own mention (first) taken out; a `delegate` command keeps the others as principals. */
export function messageCommandText(raw: string, tenant: string): string {
  const rest = raw.replace(/^\s*<@[A-Z0-9]+(?:\|[^>]*)?>/, ' ').trim();
  if (/^delegate\b/i.test(rest)) return commandTextFor(rest, tenant);
  return raw.replace(USER_MENTION, ' ').trim();
}

/**
 * The tenant of whoever acts in a request, as `slackPrincipal` would name it (the person's own
 * workspace, or the enterprise for org-wide installs): what the `tenants` list is checked against.
 * Undefined for a body that names no one (url_verification is answered before this is asked).
 */
export function requestTenant(body: unknown): string | undefined {
  const b = (body ?? {}) as {
    user?: { team_id?: string } | string;
    team?: { id?: string } | null;
    enterprise?: { id?: string } | null;
    is_enterprise_install?: boolean | string;
    team_id?: string;
    enterprise_id?: string;
    event?: { user_team?: string };
    authorizations?: { is_enterprise_install?: boolean }[];
  };
  const orgWide = b.is_enterprise_install === true || b.is_enterprise_install === 'true' || b.authorizations?.[0]?.is_enterprise_install === true;
  const enterprise = b.enterprise?.id ?? b.enterprise_id;
  if (orgWide && enterprise) return enterprise;
  const own = typeof b.user === 'object' ? b.user.team_id : undefined;
  return own ?? b.event?.user_team ?? b.team?.id ?? b.team_id ?? enterprise;
}
