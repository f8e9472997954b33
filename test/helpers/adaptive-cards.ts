/**
 * Microsoft's own Adaptive Cards parser (`adaptivecards` 3.x) for tests: every card Tollgate draws
 * or sends must parse without a single event (error or warning) and stay under Teams' size limit.
 * Its ESM build does not resolve in Node; the bundled one does.
 */
import { createRequire } from 'node:module';
import type { AdaptiveCard } from '../../bots/teams/cards.ts';

interface AcObject {
  getJsonTypeName(): string;
}
interface AcAction extends AcObject {
  verb?: string;
  title?: string;
  card?: AcCard;
  getReferencedInputs(): Record<string, unknown>;
}
export interface AcCard extends AcObject {
  parse(json: unknown, ctx: AcContext): void;
  getAllActions(): AcAction[];
  validateProperties(): { validationEvents: { message: string }[] };
}
interface AcContext {
  eventCount: number;
  getEventAt(i: number): { message: string };
}
const AC = createRequire(import.meta.url)('adaptivecards/dist/adaptivecards.js') as {
  AdaptiveCard: new () => AcCard;
  SerializationContext: new () => AcContext;
};

export function parse(card: AdaptiveCard): { parsed: AcCard; issues: string[] } {
  const parsed = new AC.AdaptiveCard();
  const ctx = new AC.SerializationContext();
  parsed.parse(JSON.parse(JSON.stringify(card)), ctx);
  const issues = Array.from({ length: ctx.eventCount }, (_, i) => ctx.getEventAt(i).message);
  issues.push(...parsed.validateProperties().validationEvents.map((e) => e.message));
  return { parsed, issues };
}

/** The card's size as Teams counts it: bytes of its JSON. */
export const size = (card: AdaptiveCard) => Buffer.byteLength(JSON.stringify(card), 'utf8');
