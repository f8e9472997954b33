/**
 * A Bolt receiver that serves `POST /slack/events` from Tollgate's own node:http server (events,
 * slash commands and interactivity at one URL), instead of Bolt starting a server of its own.
 *
 * It follows Bolt's HTTPReceiver step for step, using Bolt's own functions: the body is buffered
 * and verified by `HTTPModuleFunctions.parseAndVerifyHTTPRequest` (v0 HMAC-SHA256 of
 * `v0:<timestamp>:<raw body>`, constant-time compare, timestamps over 5 minutes old refused), so a
 * bad signature or a stale timestamp is answered 401 before anything is parsed or recorded. Bolt
 * only looks into the past; Slack's rule is 5 minutes either way, so a timestamp more than 5 minutes
 * ahead (a signed request kept for replay later) is refused here too (`MAX_SKEW_SEC`); a
 * malformed body is 400; `ssl_check` and `url_verification` are answered here.
 *
 * Acknowledgement always happens after the listeners finish (Bolt's `processBeforeResponse`):
 * the listener records the intent durably, then calls `ack()`, and only then does the response
 * go out (invariant 8). Slack's 3-second limit is kept by doing no Slack Web API work before the
 * ack except what must use the `trigger_id` (views.open); a refused click is explained after the
 * ack, through the outbox.
 */
import type http from 'node:http';
import { HTTPModuleFunctions, HTTPResponseAck, type App, type Receiver, type ReceiverEvent } from '@slack/bolt';
import type { Logger as BoltLogger } from '@slack/logger';
import { TollgateError } from '../../src/chat/index.ts';
import { isUnattributedInteraction } from './identity.ts';

/** How far a request's timestamp may be from now, in either direction (Slack's replay window). */
export const MAX_SKEW_SEC = 5 * 60;

/** What a listener's `ack()` stores: the answer sent once the listener returns. */
export type LeanAck = (response?: unknown) => Promise<void>;

/**
 * The lean path: for a verified, parsed body, the listener that handles it (called with the
 * request's `ack`), or undefined to leave the request to Bolt. Bolt matches a request to its
 * listener through a chain of middleware (authorize, ignore-self, type and id matchers, each an
 * async step) that costs more than the listener itself in a burst of clicks or commands; the few
 * requests a burst is made of (bots/slack/bot.ts `leanListener`) are matched by their id instead.
 */
export type LeanPath = (body: NonNullable<ReceiverEvent['body']>) => ((ack: LeanAck) => Promise<void>) | undefined;

export class TollgateHttpReceiver implements Receiver {
  #app: App | undefined;
  readonly #signingSecret: string;
  readonly #logger: BoltLogger;
  readonly #bodyLimit: number;
  readonly #lean: LeanPath | undefined;

  constructor(opts: { signingSecret: string; logger: BoltLogger; bodyLimit?: number; lean?: LeanPath }) {
    this.#signingSecret = opts.signingSecret;
    this.#logger = opts.logger;
    this.#bodyLimit = opts.bodyLimit ?? HTTPModuleFunctions.defaultBodyLimit;
    this.#lean = opts.lean;
  }

  init(app: App): void {
    this.#app = app;
  }

  // The HTTP server is Tollgate's: starting and stopping it is not the receiver's business.
  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  /** The `POST /slack/events` handler to mount on Tollgate's server. */
  readonly handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    let buffered: Awaited<ReturnType<typeof HTTPModuleFunctions.parseAndVerifyHTTPRequest>>;
    try {
      buffered = await HTTPModuleFunctions.parseAndVerifyHTTPRequest(
        { enabled: true, signingSecret: this.#signingSecret, bodyLimit: this.#bodyLimit },
        req,
        res,
      );
    } catch (e) {
      if (HTTPModuleFunctions.isRawBodyError(e) && (e as { statusCode?: number }).statusCode === 413) {
        HTTPModuleFunctions.buildNoBodyResponse(res, 413);
        return;
      }
      this.#logger.warn(`Refused a request to /slack/events (request ${String(res.getHeader('x-request-id'))}): ${(e as Error).message}`);
      HTTPModuleFunctions.buildNoBodyResponse(res, 401);
      return;
    }
    const timestampSec = Number(HTTPModuleFunctions.getHeader(req, 'x-slack-request-timestamp'));
    if (timestampSec - Date.now() / 1000 > MAX_SKEW_SEC) {
      this.#logger.warn(`Refused a request to /slack/events: its timestamp ${timestampSec} is more than ${MAX_SKEW_SEC} s in the future.`);
      HTTPModuleFunctions.buildNoBodyResponse(res, 401);
      return;
    }
    // Slack bodies are any shape until Bolt looks at them: Bolt's own type for a parsed body (a
    // string-indexed object); the `?.` below still keeps a JSON `null` body from throwing.
    let body: ReceiverEvent['body'];
    try {
      body = HTTPModuleFunctions.parseHTTPRequestBody(buffered) as ReceiverEvent['body'];
    } catch (e) {
      this.#logger.warn(`Malformed request body on /slack/events: ${(e as Error).message}`);
      HTTPModuleFunctions.buildNoBodyResponse(res, 400);
      return;
    }
    if (body?.ssl_check === '1') {
      HTTPModuleFunctions.buildSSLCheckResponse(res);
      return;
    }
    if (body?.type === 'url_verification') {
      HTTPModuleFunctions.buildUrlVerificationResponse(res, body);
      return;
    }
    if (isUnattributedInteraction(body)) {
      this.#logger.warn(`Dropped a ${String(body.type)} on /slack/events that names no user or workspace.`);
      HTTPModuleFunctions.buildNoBodyResponse(res, 200);
      return;
    }
    // Verified, parsed and attributed: from here on the request is handled, on the lean path or by Bolt.
    const lean = body ? this.#lean?.(body) : undefined;
    if (lean) {
      await this.#handleLean(req, res, lean);
      return;
    }
    await this.#handleWithBolt(req, res, buffered, body);
  };

  /** The lean path: the listener, then its stored answer (Bolt's `processBeforeResponse`, without its ack object and timer). */
  async #handleLean(req: http.IncomingMessage, res: http.ServerResponse, listener: (ack: LeanAck) => Promise<void>): Promise<void> {
    let acked = false;
    let stored: unknown;
    try {
      await listener((response) => {
        if (acked) throw new TollgateError('TG_INTERNAL', 'A Slack request was acknowledged twice.');
        acked = true;
        stored = response || '';
        return Promise.resolve();
      });
      if (res.headersSent) return;
      HTTPModuleFunctions.buildContentResponse(res, stored); // nothing stored (nothing acked): 200, no body, as on Bolt's path
    } catch (error) {
      await HTTPModuleFunctions.defaultProcessEventErrorHandler({
        error: error as Error,
        logger: this.#logger,
        request: req,
        response: res,
        storedResponse: stored,
      });
    }
  }

  async #handleWithBolt(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    buffered: Awaited<ReturnType<typeof HTTPModuleFunctions.parseAndVerifyHTTPRequest>>,
    body: ReceiverEvent['body'],
  ): Promise<void> {
    const ack = new HTTPResponseAck({
      logger: this.#logger,
      processBeforeResponse: true,
      httpRequest: buffered,
      httpRequestBody: body,
      httpResponse: res,
    });
    const event: ReceiverEvent = {
      body,
      ack: ack.bind(),
      retryNum: HTTPModuleFunctions.extractRetryNumFromHTTPRequest(req),
      retryReason: HTTPModuleFunctions.extractRetryReasonFromHTTPRequest(req),
      customProperties: {},
    };
    try {
      if (!this.#app) throw new TollgateError('TG_INTERNAL', 'The Slack receiver was used before Bolt initialised it.');
      await this.#app.processEvent(event);
      if (res.headersSent) return;
      if (ack.storedResponse !== undefined) {
        HTTPModuleFunctions.buildContentResponse(res, ack.storedResponse);
      } else {
        // Nothing listened (an interaction we do not handle): answer now rather than leave Slack
        // waiting for the 3-second timeout.
        ack.ack();
        HTTPModuleFunctions.buildNoBodyResponse(res, 200);
      }
    } catch (error) {
      // Bolt's handler answers 401 for authorisation errors and 500 otherwise; nothing was
      // acknowledged, so Slack shows the failure (and may retry) instead of a false success.
      await HTTPModuleFunctions.defaultProcessEventErrorHandler({
        error: error as Error,
        logger: this.#logger,
        request: req,
        response: res,
        storedResponse: ack.storedResponse as unknown, // Bolt types it `any`; it is passed through untouched
      });
      ack.ack(); // stop the no-ack timer: the request has its answer
    }
  }
}
