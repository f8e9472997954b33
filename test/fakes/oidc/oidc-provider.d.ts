/**
 * The part of oidc-provider 8's API that test/fakes/oidc/provider.ts uses (the package ships no
 * types, and @types/oidc-provider is not installed): the constructor, its configuration as used
 * there, `callback()`, `interactionFinished` and `Grant`.
 */
declare module 'oidc-provider' {
  import type http from 'node:http';

  interface Grant {
    addOIDCScope(scope: string): void;
    save(): Promise<string>;
  }

  interface Ctx {
    oidc: {
      session?: { accountId?: string };
      client?: { clientId: string };
      provider: Provider;
    };
  }

  interface Configuration {
    clients: Record<string, unknown>[];
    jwks: { keys: Record<string, unknown>[] };
    cookies: { keys: string[] };
    pkce: { required: () => boolean };
    conformIdTokenClaims: boolean;
    ttl: Record<string, number>;
    claims: Record<string, string[]>;
    features: Record<string, { enabled: boolean }>;
    interactions: { url: (ctx: Ctx, interaction: { uid: string }) => string };
    findAccount: (ctx: Ctx, id: string) => { accountId: string; claims: () => Record<string, unknown> } | undefined;
    loadExistingGrant: (ctx: Ctx) => Promise<Grant | undefined>;
  }

  export default class Provider {
    constructor(issuer: string, configuration: Configuration);
    Grant: new (o: { clientId: string; accountId: string }) => Grant;
    callback(): (req: http.IncomingMessage, res: http.ServerResponse) => void;
    interactionFinished(
      req: http.IncomingMessage,
      res: http.ServerResponse,
      result: Record<string, unknown>,
      options?: { mergeWithLastSubmission?: boolean },
    ): Promise<void>;
  }
}
