/**
 * Fakes of Microsoft Teams / Bot Framework for tests, faked only at the HTTP boundary and
 * speaking the real protocol, so the unmodified botbuilder 4.23 (and our Teams adapter on top of
 * it) runs against them offline:
 *
 * - identity.ts: the Microsoft side of authentication — OpenID metadata and JWKS for inbound
 *   channel tokens (`mint()` signs them, and signs the broken ones botbuilder must refuse), and a
 *   managed-identity token endpoint for outbound calls (`settings()` and `env()` point botbuilder
 *   at it).
 * - connector.ts: the Bot Connector behind an activity's `serviceUrl` (create conversation, send,
 *   reply, update, delete, members), recording calls and failing on demand (429 with
 *   Retry-After, 5xx, error codes).
 * - activities.ts: incoming Teams activities (message, Action.Execute invoke, installation and
 *   membership updates) and `sendActivity()`, which posts one to the bot as the channel does.
 *
 * Why not mock botbuilder: the adapter's correctness lies in how it uses botbuilder (which token
 * errors surface how, what the connector client retries, which ids Teams returns), and those are
 * exactly what a mock would assume instead of exercise. test/teams-fakes.test.ts checks each fake
 * against the real botbuilder.
 */
export * from './identity.ts';
export * from './connector.ts';
export * from './activities.ts';
