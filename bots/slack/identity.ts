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
