/**
 * People by name (issue 22, item 5): how every surface but Slack writes a person, their display
 * name with their platform ("Ada Lovelace (Teams)"), or the principal itself while no platform has
 * named them. Slack keeps its `<@U…>` mentions, which Slack renders as the person's current name.
 *
 * A name is for people to read; the principal stays the identity, and nothing that authorises
 * reads a name. Pure.
 */
import { formatPrincipal, type Principal } from '../common/principals.ts';

const PLATFORM_LABELS: Readonly<Record<string, string>> = { slack: 'Slack', teams: 'Teams', cli: 'CLI' };

/** `Slack`, `Teams`, `CLI`; another platform by its own name. */
export function platformLabel(platform: string): string {
  return PLATFORM_LABELS[platform] ?? platform;
}

/** "Ada Lovelace (Teams)", or `teams:tid:aad-1` while no name is known. */
export function personLabel(p: Pick<Principal, 'platform' | 'tenant' | 'user' | 'name'>): string {
  const name = p.name?.trim();
  return name ? `${name} (${platformLabel(p.platform)})` : formatPrincipal(p);
}

/**
 * The principal named as the directory (`names`: principal → display name) calls them now, and
 * unnamed when it does not know them: a name that came along with a request (a Slack handle) is
 * not shown as a display name.
 */
export function withName<P extends Principal | null>(p: P, names: ReadonlyMap<string, string>): P {
  if (!p) return p;
  const { name: _sent, ...bare } = p;
  const name = names.get(formatPrincipal(p));
  return (name ? { ...bare, name } : bare) as P;
}
