/**
 * The Slack adapter's intake: a Bolt app whose listeners parse Slack requests into intents for the
 * chat core (src/chat/intake.ts `ChatCore.submit`). Messages are not posted here: they are rows of
 * the outbox, delivered by the `chat-deliver` job through bots/slack/platform.ts.
 *
 * General notes
 * - Every listener that changes something hands it to `submit`, which records the delivery key
 *   (event_id, trigger_id or view id), the intent and the messages it asks for in one transaction.
 *   Only after that commits does the listener `ack()`, and the receiver answers Slack only after
 *   the listener returns (invariant 8). A retried delivery finds its key and changes nothing.
 * - Who acts comes from the verified payload (`identity.ts`); buttons carry run or approval ids only.
 * - A refused click is explained after the ack, through the outbox (an ephemeral message, or the
 *   app's DM for a click on App Home): the ack never waits for Slack's API.
 * - What Slack only allows now is called inline: `views.open` (the trigger_id expires in 3 s).
 * - The same command grammar (src/intents/command.ts) serves `/tollgate`, `@tollgate` mentions and
 *   direct messages. Free text in a mention or a DM goes to the model when one is configured
 *   (`understand: true`): the worker answers in the thread with a question, the form, or a
 *   proposal with Confirm and Edit. `/tollgate` free text never calls the model; it, and free
 *   text with no model configured, gets a reply naming the `run` form.
 */
import { App, LogLevel, webApi, type AuthorizeResult } from '@slack/bolt';
import type { Logger as BoltLogger } from '@slack/logger';
import type { Middleware, SlackActionMiddlewareArgs, SlackCommandMiddlewareArgs, SlackEventMiddlewareArgs, SlackViewMiddlewareArgs } from '@slack/bolt';
import {
  ACTION_IDS,
  FORM_NOT_OPENED,
  parseChatCommand,
  PROPOSAL_ACTION_IDS,
  PROPOSAL_UNKNOWN,
  readButtonValue,
  REASON_FORM_NOT_OPENED,
  type ChatCore,
  type Logger,
  type Principal,
  type Shown,
  type Where,
} from '../../src/chat/index.ts';
import { plainMessage, type SlackMessage } from './blocks.ts';
import { commandTextFor, messageCommandText, principalFromCommand, principalFromEvent, principalFromInteraction, requestTenant } from './identity.ts';
import { readReason, readRejectMetadata, REASON_BLOCK, REJECT_CALLBACK_ID, rejectModal } from './approvals.ts';
import { PARAMS_CALLBACK_ID, paramsMetadataSchema, paramsModal, readSubmission, slackFieldErrorsOf } from './modal.ts';
import { OPEN_FORM_ACTION, openFormValueSchema, renderReply } from './render.ts';
import { TollgateHttpReceiver, type LeanAck } from './receiver.ts';
import { amendListeners } from './amend.ts';
import { AckAfterRecordSocketModeReceiver } from './socket-receiver.ts';

type WebClient = InstanceType<typeof webApi.WebClient>;
type ActionListener = Middleware<SlackActionMiddlewareArgs>;
type ViewListener = Middleware<SlackViewMiddlewareArgs>;

export interface SlackBotOptions {
  signingSecret: string;
  botToken: string;
  /** Socket Mode instead of HTTP when set. */
  appToken?: string | undefined;
  /** Web API base URL (GovSlack, or a local fake). */
  apiUrl?: string | undefined;
  /** The chat core, set once every platform is known (see createSlackAdapter). */
  core: () => ChatCore;
  log: Logger;
  /** Extra Web API client options (tests pass a fast retry policy). */
  clientOptions?: ConstructorParameters<typeof webApi.WebClient>[1];
}

export function boltLogger(log: Logger): BoltLogger {
  const l = log.child({ component: 'slack' });
  const text = (msg: unknown[]) => msg.map((m) => (typeof m === 'string' ? m : m instanceof Error ? m.message : JSON.stringify(m))).join(' ');
  // Bolt logs whole request bodies at debug level: format them only when debug is on.
  const at =
    (level: 'debug' | 'warn' | 'error') =>
    (...m: unknown[]) => {
      if (l.isLevelEnabled(level)) l[level](text(m));
    };
  return {
    debug: at('debug'),
    info: at('debug'), // Bolt's info lines are per-request chatter
    warn: at('warn'),
    error: at('error'),
    setLevel: () => {},
    getLevel: () => LogLevel.DEBUG,
    setName: () => {},
  };
}

const ephemeral = (m: SlackMessage) => ({ response_type: 'ephemeral' as const, text: m.text, blocks: m.blocks });

export class SlackBot {
  readonly app: App;
  readonly receiver: TollgateHttpReceiver | undefined;
  /** Web API client for the outbox (throws on 429 so the outbox can honour Retry-After). */
  readonly client: WebClient;
  readonly #o: SlackBotOptions;
  readonly #log: Logger;
  #auth: Promise<AuthorizeResult> | undefined;

  constructor(o: SlackBotOptions) {
    this.#o = o;
    this.#log = o.log.child({ component: 'slack' });
    const logger = boltLogger(o.log);
    const clientOptions = {
      ...(o.apiUrl ? { slackApiUrl: o.apiUrl } : {}),
      timeout: 10_000,
      retryConfig: { retries: 2, factor: 2, minTimeout: 200, maxTimeout: 2000 },
      ...o.clientOptions,
      logger,
    };
    this.client = new webApi.WebClient(o.botToken, { ...clientOptions, rejectRateLimitedCalls: true });
    const authorize = () => this.#authorize();
    if (o.appToken) {
      this.receiver = undefined;
      const receiver = new AckAfterRecordSocketModeReceiver({ appToken: o.appToken, logger, installerOptions: { clientOptions } });
      this.app = new App({ receiver, authorize, clientOptions, logger, convoStore: false });
    } else {
      this.receiver = new TollgateHttpReceiver({ signingSecret: o.signingSecret, logger, lean: (body) => this.leanListener(body) });
      this.app = new App({ receiver: this.receiver, authorize, clientOptions, logger, convoStore: false });
    }
    this.#register();
  }

  /**
   * auth.test once (for the bot's own ids, which Bolt uses to ignore its own messages). If Slack
   * cannot be reached, requests are still taken with the token alone and auth.test is tried again
   * on the next one: intake must not depend on Slack being up.
   */
  #authorize(): Promise<AuthorizeResult> {
    const { botToken } = this.#o;
    this.#auth ??= this.client.auth
      .test()
      .then((r) => ({ botToken, botId: r.bot_id, botUserId: r.user_id, teamId: r.team_id }))
      .catch((e: unknown) => {
        this.#log.warn({ err: (e as Error).message }, 'Slack auth.test failed; taking requests with the token alone and trying again later');
        this.#auth = undefined;
        return { botToken };
      });
    return this.#auth;
  }

  /** Verifies the token (auth.test) and, in Socket Mode, connects. */
  async start(): Promise<void> {
    await this.#authorize();
    if (this.#o.appToken) await this.app.start();
  }

  async stop(): Promise<void> {
    if (this.#o.appToken) await this.app.stop();
  }

  // ----- listeners -------------------------------------------------------------------------

  readonly #slashCommand: Middleware<SlackCommandMiddlewareArgs> = async ({ command, ack, client }) => {
    // Slack always sends both; a signed request without them cannot say who asked, so it is
    // answered (not failed with a 500) and nothing is recorded.
    if (!command.user_id || (!command.team_id && !command.enterprise_id)) {
      this.#log.warn({ user_id: command.user_id ?? null, team_id: command.team_id ?? null }, 'refused a slash command that names no user or workspace');
      await ack(ephemeral(plainMessage('This request names no user (user_id) or workspace (team_id), so Tollgate cannot tell who asked; nothing was done.')));
      return;
    }
    const actor = principalFromCommand(command);
    const where = this.#where(actor, command.channel_id, null);
    const cmd = parseChatCommand(commandTextFor(command.text ?? '', actor.tenant));
    if (cmd.kind === 'invalid') {
      await ack(ephemeral(plainMessage(cmd.message)));
      return;
    }
    if (cmd.kind === 'run') {
      const def = this.#core().workflow(cmd.workflow);
      if (!def) {
        await ack(ephemeral(renderReply(this.#core().unknownWorkflow(cmd.workflow))));
        return;
      }
      const checked = this.#core().checkInput(def, cmd.params);
      if (!checked.ok) {
        // Missing or invalid parameters: ask for them in a modal generated from the schema.
        try {
          await client.views.open({
            trigger_id: command.trigger_id,
            view: paramsModal(def, cmd.params, checked.error, { channel: command.channel_id, threadTs: null }),
          });
          await ack();
        } catch (e) {
          this.#log.warn({ err: (e as Error).message }, 'views.open failed; answering with the errors instead');
          await ack(ephemeral(renderReply(this.#core().invalidParams(def, checked.error, cmd.params))));
        }
        return;
      }
    }
    // A run start is recorded before the ack and created by the worker right after it.
    const result = await this.#core().submit({
      kind: 'command',
      command: cmd,
      actor,
      where,
      key: { key: `command:${command.trigger_id}`, kind: 'command' },
      replyVia: 'return',
      carryOut: 'after-ack',
    });
    await ack(ephemeral(renderReply(result.reply ?? { kind: 'notice', text: 'Done.' })));
  };

  readonly #mention: Middleware<SlackEventMiddlewareArgs<'app_mention'>> = async ({ event, body }) => {
    const e = event as { user?: string; user_team?: string; text: string; ts: string; thread_ts?: string; channel: string };
    const actor = principalFromEvent(body, e);
    if (!actor) return;
    await this.#onMessage(body.event_id, actor, e.text, this.#where(actor, e.channel, e.thread_ts ?? e.ts));
  };

  readonly #directMessage: Middleware<SlackEventMiddlewareArgs<'message'>> = async ({ message, body }) => {
    const m = message as {
      subtype?: string;
      bot_id?: string;
      channel_type?: string;
      user?: string;
      user_team?: string;
      text?: string;
      ts: string;
      thread_ts?: string;
      channel: string;
    };
    if (m.subtype || m.bot_id || m.channel_type !== 'im' || !m.text) return;
    const actor = principalFromEvent(body, m);
    if (!actor) return;
    await this.#onMessage(body.event_id, actor, m.text, this.#where(actor, m.channel, m.thread_ts ?? null));
  };

  readonly #homeOpened: Middleware<SlackEventMiddlewareArgs<'app_home_opened'>> = async ({ event, body }) => {
    const e = event as { user: string; tab?: string; user_team?: string };
    if (e.tab && e.tab !== 'home') return;
    const actor = principalFromEvent(body, e);
    if (!actor) return;
    await this.#core().openHome(actor, { key: `event:${body.event_id}`, kind: 'app_home_opened' });
  };

  /** Retry or Cancel: recorded before the ack, carried out by the worker right after; a refusal is explained to the clicker alone. */
  #operate(actionId: typeof ACTION_IDS.retry | typeof ACTION_IDS.cancel): ActionListener {
    return async ({ ack, body, action }) => {
      const b = body as unknown as ClickBody;
      const actor = principalFromInteraction(b);
      const { id: runId, revision } = readButtonValue((action as { value?: string }).value);
      await this.#core().submit({
        kind: 'operate',
        action: actionId === ACTION_IDS.retry ? 'retry' : 'cancel',
        runId,
        actor,
        key: { key: `action:${b.trigger_id}`, kind: actionId },
        explainAt: this.#explainAt(actor, b),
        carryOut: 'after-ack',
        ...shownBy(revision, b),
      });
      await ack();
    };
  }

  /**
   * Approve: the click is recorded before the ack and carried out by the worker right after
   * (`carryOut: 'after-ack'`, so a burst of clicks is one insert). Anything but a recorded
   * decision (not an approver, already decided, resolved, expired, parameters changed) changes
   * nothing and is explained to the clicker alone.
   */
  readonly #approve: ActionListener = async ({ ack, body, action }) => {
    const b = body as unknown as ClickBody;
    const actor = principalFromInteraction(b);
    const { id: approvalId, revision } = readButtonValue((action as { value?: string }).value);
    await this.#core().submit({
      kind: 'decide',
      approvalId,
      decision: 'approve',
      actor,
      explainAt: this.#explainAt(actor, b),
      carryOut: 'after-ack',
      ...shownBy(revision, b),
    });
    await ack();
  };

  /**
   * Reject: a modal asks for the reason; the decision is recorded on its submission. People who
   * cannot decide are told so instead of being shown a form that would be refused.
   */
  readonly #reject: ActionListener = async ({ ack, body, action, client }) => {
    const b = body as unknown as ClickBody;
    const { id: approvalId, revision } = readButtonValue((action as { value?: string }).value);
    const actor = principalFromInteraction(b);
    const { shown } = shownBy(revision, b);
    // An outdated copy (stale button): answered and redrawn, no form.
    const target = { on: 'approval' as const, action: 'reject' as const, approvalId };
    if (await this.#core().answeredAsOutdated({ target, actor, shown, explainAt: this.#explainAt(actor, b) })) {
      await ack();
      return;
    }
    // A requester among the approvers may reject their own request, so this asks about a reject.
    const { eligibility, approval: a } = await this.#core().eligibility(actor, approvalId, 'reject');
    if (!eligibility.may || !a) {
      await this.#core().explain(actor, this.#explainAt(actor, b), eligibility.may ? '' : eligibility.message);
    } else {
      await client.views.open({ trigger_id: b.trigger_id, view: rejectModal(a, this.#explainAt(actor, b), shown) }).catch(async (e: unknown) => {
        this.#log.warn({ err: (e as Error).message, approvalId }, 'views.open for the reject reason failed');
        await this.#core().explain(actor, this.#explainAt(actor, b), REASON_FORM_NOT_OPENED);
      });
    }
    await ack();
  };

  readonly #rejectSubmitted: ViewListener = async ({ ack, body, view }) => {
    const actor = principalFromInteraction(body);
    // Recorded, then carried out after the ack like an Approve click: a refusal (the approval was
    // resolved meanwhile, …) is explained where the Reject button was clicked. Without a reason
    // the core records nothing and says why, under the reason input.
    const { approvalId, at, shown } = readRejectMetadata(view.private_metadata);
    const result = await this.#core().submit({
      kind: 'decide',
      approvalId,
      decision: 'reject',
      comment: readReason(view.state.values),
      actor,
      explainAt: at ? { ...this.#where(actor, at.channel, at.threadTs), ...(at.direct ? { direct: true } : {}) } : this.#appDm(actor),
      carryOut: 'after-ack',
      ...(shown ? { shown } : {}),
    });
    if (result.fieldErrors?.comment) {
      await ack({ response_action: 'errors', errors: { [REASON_BLOCK]: result.fieldErrors.comment } });
      return;
    }
    await ack();
  };

  /**
   * Confirm under a proposal (a free-text request understood): recorded before the ack, carried
   * out by the worker. Only the asker may confirm; anyone else is told why, alone.
   */
  readonly #confirm: ActionListener = async ({ ack, body, action }) => {
    const b = body as unknown as ClickBody;
    const actor = principalFromInteraction(b);
    await this.#core().submit({
      kind: 'confirm',
      proposalId: (action as { value?: string }).value ?? '',
      actor,
      key: { key: `action:${b.trigger_id}`, kind: PROPOSAL_ACTION_IDS.confirm },
      explainAt: this.#explainAt(actor, b),
      carryOut: 'after-ack',
    });
    await ack();
  };

  /**
   * Edit under a proposal: the workflow's form, prefilled with what was understood, in its thread.
   */
  readonly #edit: ActionListener = async ({ ack, body, action, client }) => {
    const b = body as unknown as ClickBody;
    const actor = principalFromInteraction(b);
    const form = await this.#core().proposalForm((action as { value?: string }).value ?? '');
    if (!form) {
      await this.#core().explain(actor, this.#explainAt(actor, b), PROPOSAL_UNKNOWN);
    } else {
      const checked = this.#core().checkInput(form.def, form.given);
      await client.views
        .open({
          trigger_id: b.trigger_id,
          view: paramsModal(form.def, form.given, checked.ok ? undefined : checked.error, { channel: form.where.conversation, threadTs: form.where.thread }),
        })
        .catch(async (e: unknown) => {
          this.#log.warn({ err: (e as Error).message }, 'views.open for a proposal failed');
          await this.#core().explain(actor, this.#explainAt(actor, b), FORM_NOT_OPENED);
        });
    }
    await ack();
  };

  /**
   * "Fill in the form" under a reply to a mention or DM with missing parameters.
   */
  readonly #openForm: ActionListener = async ({ ack, body, action, client }) => {
    const b = body as unknown as { trigger_id: string; channel?: { id: string }; container?: { channel_id?: string; thread_ts?: string; message_ts?: string } };
    const given = openFormValueSchema.safeParse(safeJson((action as { value?: string }).value));
    const def = given.success ? this.#core().workflow(given.data.workflow) : undefined;
    if (given.success && def) {
      const checked = this.#core().checkInput(def, given.data.params);
      const channel = b.channel?.id ?? b.container?.channel_id ?? null;
      await client.views
        .open({
          trigger_id: b.trigger_id,
          view: paramsModal(def, given.data.params, checked.ok ? undefined : checked.error, { channel, threadTs: b.container?.thread_ts ?? null }),
        })
        .catch((e: unknown) => this.#log.warn({ err: (e as Error).message }, 'views.open failed'));
    }
    await ack();
  };

  readonly #paramsSubmitted: ViewListener = async ({ ack, body, view }) => {
    const actor = principalFromInteraction(body);
    const meta = paramsMetadataSchema.safeParse(safeJson(view.private_metadata));
    if (!meta.success) {
      await ack({ response_action: 'errors', errors: {} });
      return;
    }
    // The core finds the workflow, validates with its schema and records the start (chat's one
    // form-submit flow); its field errors go back into the form.
    const result = await this.#core().submit({
      kind: 'start',
      workflow: meta.data.workflow,
      version: meta.data.version,
      values: readSubmission(view.state.values),
      actor,
      where: meta.data.channel ? this.#where(actor, meta.data.channel, meta.data.threadTs) : null,
      key: { key: `view:${view.id}`, kind: 'view_submission' },
      carryOut: 'after-ack',
    });
    if (result.fieldErrors && result.reply?.kind === 'invalid-params') {
      await ack({ response_action: 'errors', errors: slackFieldErrorsOf(result.reply.fields ?? [], result.fieldErrors) });
      return;
    }
    await ack();
  };

  /** Every listener, by what Slack sends: one table, each listener a method below. */
  #register(): void {
    const { app } = this;
    // A workspace not on the project's `tenants` list is refused before any listener: answered
    // 200 with nothing done (Slack re-sends anything else), nothing recorded, logged by the core.
    app.use(async ({ body, next }) => {
      if (this.#core().tenantAllowed('slack', requestTenant(body))) await next();
    });
    app.command('/tollgate', this.#slashCommand);
    app.event('app_mention', this.#mention);
    app.message(this.#directMessage);
    app.event('app_home_opened', this.#homeOpened);
    const actions: [string, ActionListener][] = [
      [ACTION_IDS.retry, this.#operate(ACTION_IDS.retry)],
      [ACTION_IDS.cancel, this.#operate(ACTION_IDS.cancel)],
      [ACTION_IDS.approve, this.#approve],
      [ACTION_IDS.reject, this.#reject],
      [PROPOSAL_ACTION_IDS.confirm, this.#confirm],
      [PROPOSAL_ACTION_IDS.edit, this.#edit],
      [OPEN_FORM_ACTION, this.#openForm],
    ];
    for (const [actionId, listener] of actions) app.action(actionId, listener);
    const views: [string, ViewListener][] = [
      [REJECT_CALLBACK_ID, this.#rejectSubmitted],
      [PARAMS_CALLBACK_ID, this.#paramsSubmitted],
    ];
    for (const [callbackId, listener] of views) app.view(callbackId, listener);
    // Edit and retry, Resolve by hand (amend.ts).
    const amend = amendListeners({ core: () => this.#core(), log: this.#log, explainAt: (actor, b) => this.#explainAt(actor, b) });
    for (const [actionId, listener] of amend.actions) app.action(actionId, listener);
    for (const [callbackId, listener] of amend.views) app.view(callbackId, listener);
  }

  #core(): ChatCore {
    return this.#o.core();
  }

  /**
   * The receiver's lean path (bots/slack/receiver.ts `LeanPath`): the listener of a `/tollgate`
   * command, an Approve, Retry, Cancel or Confirm click, or a Reject reason's submission, matched
   * as Bolt matches it (the command's name; a block action's first action's id; a submitted view's
   * callback id), and called with the arguments it reads, the same listener Bolt would call. Every
   * other request (events, the buttons that open a form) goes through Bolt.
   */
  leanListener(body: Record<string, unknown>): ((ack: LeanAck) => Promise<void>) | undefined {
    // The lean path skips Bolt's middleware, so the tenants check (#register's first middleware) is made here too.
    if (!this.#core().tenantAllowed('slack', requestTenant(body))) return (ack) => ack();
    const client = this.client;
    if (typeof body.command === 'string') {
      if (body.command !== '/tollgate') return undefined;
      const command = body as unknown as SlackCommandMiddlewareArgs['command'];
      return (ack) =>
        this.#slashCommand({ command, body: command, payload: command, ack, client } as unknown as Parameters<Middleware<SlackCommandMiddlewareArgs>>[0]);
    }
    if (body.type === 'block_actions' && Array.isArray(body.actions)) {
      const action = body.actions[0] as { action_id?: unknown } | undefined;
      const listener = typeof action?.action_id === 'string' ? this.#leanActions.get(action.action_id) : undefined;
      if (!listener) return undefined;
      return (ack) => listener({ body, action, payload: action, ack, client } as unknown as Parameters<ActionListener>[0]);
    }
    if (body.type === 'view_submission') {
      const view = body.view as { callback_id?: unknown } | undefined;
      if (view?.callback_id !== REJECT_CALLBACK_ID) return undefined;
      return (ack) => this.#rejectSubmitted({ body, view, payload: view, ack, client } as unknown as Parameters<ViewListener>[0]);
    }
    return undefined;
  }

  /** The clicks of the lean path, by action id: those recorded before the ack with no Web API call. */
  readonly #leanActions = new Map<string, ActionListener>([
    [ACTION_IDS.retry, this.#operate(ACTION_IDS.retry)],
    [ACTION_IDS.cancel, this.#operate(ACTION_IDS.cancel)],
    [ACTION_IDS.approve, this.#approve],
    [PROPOSAL_ACTION_IDS.confirm, this.#confirm],
  ]);

  // ----- helpers ---------------------------------------------------------------------------

  /** A mention or a direct message: the reply (or the run's message) goes through the outbox. */
  async #onMessage(eventId: string, actor: Principal, rawText: string, where: Where): Promise<void> {
    const text = messageCommandText(rawText, actor.tenant);
    await this.#o.core().submit({
      kind: 'command',
      command: parseChatCommand(text),
      actor,
      where,
      key: { key: `event:${eventId}`, kind: 'message' },
      replyVia: 'outbox',
      carryOut: 'after-ack',
      understand: true,
    });
  }

  #where(actor: Principal, channel: string, threadTs: string | null): Where {
    return { platform: 'slack', tenant: actor.tenant, conversation: channel, thread: threadTs };
  }

  /** Where to explain a click to the clicker alone: the channel or DM clicked in; from App Home, the app's DM. */
  #explainAt(actor: Principal, b: ClickBody): Where {
    const channel = b.channel?.id ?? b.container?.channel_id;
    if (channel) return this.#where(actor, channel, b.container?.thread_ts ?? null);
    return this.#appDm(actor);
  }

  /** The app's DM with the actor: posting to a user id lands there. */
  #appDm(actor: Principal): Where {
    return { ...this.#where(actor, actor.user, null), direct: true };
  }
}

/** The fields of a block_actions payload the click handlers read. */
interface ClickBody {
  user: { id: string; team_id?: string; username?: string };
  team: { id: string } | null;
  enterprise?: { id: string } | null;
  is_enterprise_install?: boolean;
  trigger_id: string;
  channel?: { id: string };
  container?: { channel_id?: string; thread_ts?: string; message_ts?: string };
}

/**
 * What the clicked copy showed (stale buttons): the revision its button carried, and the message
 * it was (to redraw it). Nothing for a button without a revision (posted before versions existed):
 * the click is carried out as before.
 */
function shownBy(revision: number | undefined, b: ClickBody): { shown?: Shown } {
  if (revision === undefined) return {};
  const channel = b.channel?.id ?? b.container?.channel_id;
  const messageTs = b.container?.message_ts;
  return { shown: { revision, ...(channel && messageTs ? { message: { platform: 'slack', conversation: channel, messageId: messageTs } } : {}) } };
}

function safeJson(s: string | undefined): unknown {
  try {
    return JSON.parse(s ?? '');
  } catch {
    return undefined;
  }
}
