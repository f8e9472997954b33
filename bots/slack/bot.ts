/**
 * The Slack adapter: a Bolt app whose listeners turn Slack requests into runtime intents and
 * whose messages are delivered through the outbox (bots/slack/deliver.ts, job `slack-deliver`).
 *
 * General notes
 * - Every listener that changes something does it in one transaction: the delivery key
 *   (`slack_deliveries`: event_id, trigger_id or view id), the intent (start, retry, cancel) and
 *   the messages it asks for. Only after that commits does it `ack()`, and the receiver answers
 *   Slack only after the listener returns (invariant 8). A retried delivery finds its key and is
 *   answered without doing anything again.
 * - Who acts comes from the verified payload (`identity.ts`); buttons carry run or approval ids only.
 * - Approve and the Reject form's submission call `runtime.decide`, whose transaction records the
 *   decision before the ack; decide itself makes a repeat a no-op ("already recorded"), so these
 *   need no delivery key. Anything but a recorded decision is explained to the clicker alone.
 * - Nothing posts or updates a message inline: messages are rows in `chat_messages` that a job
 *   delivers. The exceptions are what Slack only allows now: `views.open` (the trigger_id expires
 *   in 3 s) and the ephemeral answer to a click.
 * - The same command grammar (src/intents/command.ts) serves `/tollgate`, `@tollgate` mentions and
 *   direct messages. Free text would go to the model layer; this build has none, so it gets a
 *   reply naming the `run` form.
 */
import { App, LogLevel, webApi, type AuthorizeResult } from '@slack/bolt';
import type { Logger as BoltLogger } from '@slack/logger';
import type pg from 'pg';
import { z } from 'zod';
import { TollgateError } from '../../src/errors.ts';
import { CommandSyntaxError, parseCommand, type Command } from '../../src/intents/command.ts';
import { mayOperateRun } from '../../src/intents/authorize.ts';
import type { Logger } from '../../src/log.ts';
import type { Principal } from '../../src/principals.ts';
import type { ProjectConfig } from '../../src/project-config.ts';
import type { WorkflowRegistry } from '../../src/runtime/registry.ts';
import type { Runtime } from '../../src/runtime/runtime.ts';
import type { WorkflowDefinition } from '../../src/runtime/workflow.ts';
import { fromFormValues, describeForm, describeInputs, fieldErrors } from '../../src/views/form.ts';
import { ACTION_IDS, listRunsRequestedBy, loadRunView } from '../../src/views/run-view.ts';
import { escapeMrkdwn, plainMessage, renderRunList, renderRunMessage, renderWorkflows, truncate, type SlackMessage } from './blocks.ts';
import { principalFromCommand, principalFromEvent, principalFromInteraction } from './identity.ts';
import { getApproval, listPendingApprovals } from '../../src/approvals/index.ts';
import { formatPrincipal } from '../../src/principals.ts';
import { readReason, REASON_BLOCK, REJECT_CALLBACK_ID, rejectModal, renderPendingApprovals } from './approvals.ts';
import { PARAMS_CALLBACK_ID, paramsMetadataSchema, paramsModal, readSubmission, slackFieldErrors } from './modal.ts';
import { addReply, addRunMessage, claimDelivery, enqueueHomeDelivery, linkDeliveryToRun, withTransaction, type Where } from './store.ts';
import { TollgateHttpReceiver } from './receiver.ts';
import { AckAfterRecordSocketModeReceiver } from './socket-receiver.ts';

type WebClient = InstanceType<typeof webApi.WebClient>;
type Q = pg.PoolClient;

/** The button under a reply about missing parameters; its value names the workflow and what was given. */
export const OPEN_FORM_ACTION = 'run.params.open';
const openFormValueSchema = z.object({ workflow: z.string(), params: z.record(z.string(), z.string()) });

export interface SlackBotOptions {
  signingSecret: string;
  botToken: string;
  /** Socket Mode instead of HTTP when set. */
  appToken?: string | undefined;
  /** Web API base URL (GovSlack, or a local fake). */
  apiUrl?: string | undefined;
  pool: pg.Pool;
  runtime: Runtime;
  registry: WorkflowRegistry;
  project: Pick<ProjectConfig, 'operators'>;
  log: Logger;
  /** Extra Web API client options (tests pass a fast retry policy). */
  clientOptions?: ConstructorParameters<typeof webApi.WebClient>[1];
}

export function boltLogger(log: Logger): BoltLogger {
  const l = log.child({ component: 'slack' });
  const text = (msg: unknown[]) => msg.map((m) => (typeof m === 'string' ? m : m instanceof Error ? m.message : JSON.stringify(m))).join(' ');
  // Bolt logs whole request bodies at debug level: format them only when debug is on.
  const at = (level: 'debug' | 'warn' | 'error') => (...m: unknown[]) => {
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

/** A reply's text and, for commands that started or touched a run, the run. */
interface Reply {
  message: SlackMessage;
  runId?: string;
}

export class SlackBot {
  readonly app: App;
  readonly receiver: TollgateHttpReceiver | undefined;
  /** Web API client for deliveries (throws on 429 so the outbox can honour Retry-After). */
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
      this.receiver = new TollgateHttpReceiver({ signingSecret: o.signingSecret, logger });
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

  #register(): void {
    const { app } = this;

    app.command('/tollgate', async ({ command, ack, client }) => {
      const principal = principalFromCommand(command);
      const where: Where = { channel: command.channel_id, threadTs: null };
      let cmd: Command;
      try {
        cmd = parseCommand(command.text ?? '');
      } catch (e) {
        if (!(e instanceof CommandSyntaxError)) throw e;
        await ack(ephemeral(plainMessage(e.message)));
        return;
      }
      if (cmd.kind === 'run') {
        const def = this.#workflow(cmd.workflow);
        if (!def) {
          await ack(ephemeral(this.#unknownWorkflow(cmd.workflow)));
          return;
        }
        const input = fromFormValues(describeForm(def.input), cmd.params);
        const parsed = def.input.safeParse(input);
        if (!parsed.success) {
          // Missing or invalid parameters: ask for them in a modal generated from the schema.
          try {
            await client.views.open({ trigger_id: command.trigger_id, view: paramsModal(def, cmd.params, parsed.error, where) });
            await ack();
          } catch (e) {
            this.#log.warn({ err: (e as Error).message }, 'views.open failed; answering with the errors instead');
            await ack(ephemeral(this.#invalidParams(def, parsed.error)));
          }
          return;
        }
      }
      const changes = cmd.kind === 'run' || cmd.kind === 'retry' || cmd.kind === 'cancel';
      const reply = await withTransaction(this.#o.pool, async (q) => {
        const key = `command:${command.trigger_id}`;
        // Only commands that change something need to be recognised when re-sent.
        if (changes && !(await claimDelivery(q, key, 'command'))) return { message: plainMessage('Already recorded.') };
        const r = await this.#execute(q, cmd, principal, where);
        if (r.runId) await linkDeliveryToRun(q, key, r.runId);
        return r;
      });
      await ack(ephemeral(reply.message));
    });

    app.event('app_mention', async ({ event, body }) => {
      const e = event as { user?: string; user_team?: string; text: string; ts: string; thread_ts?: string; channel: string };
      const principal = principalFromEvent(body as never, e);
      if (!principal) return;
      await this.#onMessage(body.event_id, principal, e.text, { channel: e.channel, threadTs: e.thread_ts ?? e.ts });
    });

    app.message(async ({ message, body }) => {
      const m = message as { subtype?: string; bot_id?: string; channel_type?: string; user?: string; user_team?: string; text?: string; ts: string; thread_ts?: string; channel: string };
      if (m.subtype || m.bot_id || m.channel_type !== 'im' || !m.text) return;
      const principal = principalFromEvent(body as never, m);
      if (!principal) return;
      await this.#onMessage(body.event_id, principal, m.text, { channel: m.channel, threadTs: m.thread_ts ?? null });
    });

    app.event('app_home_opened', async ({ event, body }) => {
      const e = event as { user: string; tab?: string; user_team?: string };
      if (e.tab && e.tab !== 'home') return;
      const principal = principalFromEvent(body as never, e);
      if (!principal) return;
      await withTransaction(this.#o.pool, async (q) => {
        if (!(await claimDelivery(q, `event:${body.event_id}`, 'app_home_opened'))) return;
        await enqueueHomeDelivery(q, { tenant: principal.tenant, user: principal.user });
      });
    });

    for (const actionId of [ACTION_IDS.retry, ACTION_IDS.cancel] as const) {
      app.action(actionId, async ({ ack, body, action, client }) => {
        const b = body as unknown as ClickBody;
        const runId = (action as { value?: string }).value ?? '';
        const principal = principalFromInteraction(b);
        const channel = b.channel?.id ?? b.container?.channel_id;
        const explain = async (text: string) => {
          if (!channel) return;
          await client.chat.postEphemeral({ channel, user: b.user.id, text }).catch((e: unknown) => {
            this.#log.warn({ err: (e as Error).message, runId }, 'could not post an ephemeral explanation');
          });
        };
        const outcome = await withTransaction(this.#o.pool, async (q) => {
          if (!(await claimDelivery(q, `action:${b.trigger_id}`, actionId))) return undefined;
          return this.#operate(q, actionId === ACTION_IDS.retry ? 'retry' : 'cancel', runId, principal);
        });
        if (outcome && !outcome.ok) await explain(outcome.message.text);
        await ack();
      });
    }

    // Approve: the decision is recorded (its own transaction in runtime.decide) before the ack.
    // Anything but 'recorded' (not an approver, already decided, resolved, expired, parameters
    // changed) changes nothing and is explained to the clicker alone.
    app.action(ACTION_IDS.approve, async ({ ack, body, action, client }) => {
      const b = body as unknown as ClickBody;
      const approvalId = (action as { value?: string }).value ?? '';
      const principal = principalFromInteraction(b);
      const outcome = await this.#o.runtime.decide(approvalId, principal, 'approve', undefined, { via: 'slack' });
      if (outcome.kind !== 'recorded') await this.#explain(client, b, outcome.message, approvalId);
      await ack();
    });

    // Reject: a modal asks for the reason; the decision is recorded on its submission. People who
    // cannot decide are told so at once instead of being shown a form that would be refused.
    app.action(ACTION_IDS.reject, async ({ ack, body, action, client }) => {
      const b = body as unknown as ClickBody;
      const approvalId = (action as { value?: string }).value ?? '';
      const who = formatPrincipal(principalFromInteraction(b));
      const a = await getApproval(this.#o.pool, approvalId);
      const refusal = !a
        ? `No approval with id ${approvalId}.`
        : a.decisions.some((d) => d.principal === who)
          ? `Your decision on ${approvalId} was already recorded; nothing changed.`
          : a.status !== 'pending'
            ? `${approvalId} was already ${a.status}; your decision is not needed.`
            : !a.eligible.includes(who)
              ? `Not allowed: ${who} is not one of the approvers (${a.approvers}); nothing changed.`
              : undefined;
      if (refusal || !a) {
        await this.#explain(client, b, refusal ?? '', approvalId);
      } else {
        await client.views.open({ trigger_id: b.trigger_id, view: rejectModal(a) }).catch(async (e: unknown) => {
          this.#log.warn({ err: (e as Error).message, approvalId }, 'views.open for the reject reason failed');
          await this.#explain(client, b, 'Could not open the form for a reason; try again, or use `tollgate reject` with --comment.', approvalId);
        });
      }
      await ack();
    });

    app.view(REJECT_CALLBACK_ID, async ({ ack, body, view }) => {
      const principal = principalFromInteraction(body as never);
      const approvalId = view.private_metadata;
      const reason = readReason(view.state.values as never);
      if (!reason) {
        await ack({ response_action: 'errors', errors: { [REASON_BLOCK]: 'Say why you reject it; the requester sees this.' } });
        return;
      }
      const outcome = await this.#o.runtime.decide(approvalId, principal, 'reject', reason, { via: 'slack' });
      if (outcome.kind !== 'recorded') {
        await ack({ response_action: 'errors', errors: { [REASON_BLOCK]: truncate(outcome.message, 2000) } });
        return;
      }
      await ack();
    });

    // "Fill in the form" under a reply to a mention or DM with missing parameters.
    app.action(OPEN_FORM_ACTION, async ({ ack, body, action, client }) => {
      const b = body as unknown as { trigger_id: string; channel?: { id: string }; container?: { channel_id?: string; thread_ts?: string; message_ts?: string } };
      const given = openFormValueSchema.safeParse(safeJson((action as { value?: string }).value));
      const def = given.success ? this.#workflow(given.data.workflow) : undefined;
      if (given.success && def) {
        const parsed = def.input.safeParse(fromFormValues(describeForm(def.input), given.data.params));
        const channel = b.channel?.id ?? b.container?.channel_id ?? null;
        await client.views
          .open({ trigger_id: b.trigger_id, view: paramsModal(def, given.data.params, parsed.success ? undefined : parsed.error, { channel, threadTs: b.container?.thread_ts ?? null }) })
          .catch((e: unknown) => this.#log.warn({ err: (e as Error).message }, 'views.open failed'));
      }
      await ack();
    });

    app.view(PARAMS_CALLBACK_ID, async ({ ack, body, view }) => {
      const principal = principalFromInteraction(body as never);
      const meta = paramsMetadataSchema.safeParse(safeJson(view.private_metadata));
      if (!meta.success) {
        await ack({ response_action: 'errors', errors: {} });
        return;
      }
      const def = this.#workflow(meta.data.workflow, meta.data.version) ?? this.#workflow(meta.data.workflow);
      if (!def) {
        await ack();
        return;
      }
      const values = readSubmission(view.state.values as never);
      const parsed = def.input.safeParse(fromFormValues(describeForm(def.input), values));
      if (!parsed.success) {
        await ack({ response_action: 'errors', errors: slackFieldErrors(def, parsed.error) });
        return;
      }
      await withTransaction(this.#o.pool, async (q) => {
        const key = `view:${view.id}`;
        if (!(await claimDelivery(q, key, 'view_submission'))) return;
        const run = await this.#o.runtime.startRun(
          { workflow: def.name, version: def.version, input: parsed.data, requester: principal, origin: this.#origin(principal, meta.data.channel ? { channel: meta.data.channel, threadTs: meta.data.threadTs } : null) },
          q,
        );
        await linkDeliveryToRun(q, key, run.id);
        if (meta.data.channel) await addRunMessage(q, run.id, { channel: meta.data.channel, threadTs: meta.data.threadTs }, { newRun: true });
      });
      await ack();
    });
  }

  // ----- intents ---------------------------------------------------------------------------

  /** A mention or a direct message: one transaction for the delivery key, the intent and the reply. */
  async #onMessage(eventId: string, principal: Principal, rawText: string, where: Where): Promise<void> {
    const text = rawText.replace(/<@[A-Z0-9]+(\|[^>]*)?>/g, ' ').trim();
    await withTransaction(this.#o.pool, async (q) => {
      const key = `event:${eventId}`;
      if (!(await claimDelivery(q, key, 'message'))) return;
      let reply: Reply;
      try {
        reply = await this.#execute(q, parseCommand(text), principal, where);
      } catch (e) {
        if (!(e instanceof CommandSyntaxError)) throw e;
        reply = { message: plainMessage(e.message) };
      }
      if (reply.runId) await linkDeliveryToRun(q, key, reply.runId);
      // A started run speaks for itself (its live message); everything else gets a reply.
      if (!reply.runId) await addReply(q, where, reply.message);
    });
  }

  /** Carries out a parsed command inside the caller's transaction; returns what to tell the person. */
  async #execute(q: Q, cmd: Command, principal: Principal, where: Where): Promise<Reply> {
    const { registry } = this.#o;
    switch (cmd.kind) {
      case 'help':
        return { message: renderWorkflows(registry.latest(), 'Tollgate runs workflows durably and keeps this channel posted.') };
      case 'workflows':
        return { message: renderWorkflows(registry.latest()) };
      case 'text':
        return {
          message: plainMessage(
            `I only understand commands for now (no model is configured for free text). To start something, write \`run <workflow> key=value …\`, e.g. \`run demo name=Ada\`; \`help\` lists the workflows.`,
          ),
        };
      case 'approvals':
        return { message: renderPendingApprovals(await listPendingApprovals(q, principal)) };
      case 'runs':
        return { message: renderRunList(await listRunsRequestedBy(q, principal, 10), 'Your recent runs') };
      case 'status': {
        const view = await loadRunView(q, cmd.runId);
        return { message: view ? renderRunMessage(view) : plainMessage(`No run with id \`${escapeMrkdwn(cmd.runId)}\`. \`runs\` lists yours.`) };
      }
      case 'retry':
      case 'cancel': {
        const r = await this.#operate(q, cmd.kind, cmd.runId, principal);
        return { message: r.message };
      }
      case 'run': {
        const def = this.#workflow(cmd.workflow);
        if (!def) return { message: this.#unknownWorkflow(cmd.workflow) };
        const parsed = def.input.safeParse(fromFormValues(describeForm(def.input), cmd.params));
        if (!parsed.success) {
          // No trigger_id here (a mention or DM): offer a button whose click can open the form.
          const m = this.#invalidParams(def, parsed.error);
          const value = JSON.stringify({ workflow: def.name, params: cmd.params });
          if (value.length <= 2000) {
            m.blocks.push({
              type: 'actions',
              elements: [{ type: 'button', action_id: OPEN_FORM_ACTION, text: { type: 'plain_text', text: 'Fill in the form' }, value }],
            });
          }
          return { message: m };
        }
        const run = await this.#o.runtime.startRun(
          { workflow: def.name, version: def.version, input: parsed.data, requester: principal, origin: this.#origin(principal, where) },
          q,
        );
        await addRunMessage(q, run.id, where, { newRun: true });
        return {
          runId: run.id,
          message: plainMessage(`Started *${escapeMrkdwn(def.name)}* v${def.version} as \`${run.id}\`; its progress is posted ${where.threadTs ? 'in the thread' : 'here'}.`),
        };
      }
    }
  }

  /**
   * Retry or cancel, for the requester or an operator only. Refusals and state errors change
   * nothing and are reported back (the caller decides how: ephemeral, reply or ack text).
   */
  async #operate(q: Q, kind: 'retry' | 'cancel', runId: string, actor: Principal): Promise<{ ok: boolean; message: SlackMessage }> {
    const { rows } = await q.query<{ requester: unknown }>('SELECT requester FROM tollgate.runs WHERE id = $1', [runId]);
    const run = rows[0];
    if (!run) return { ok: false, message: plainMessage(`No run with id \`${escapeMrkdwn(runId)}\`.`) };
    if (!mayOperateRun(actor, run, this.#o.project)) {
      this.#log.info({ runId, actor: `${actor.platform}:${actor.tenant}:${actor.user}`, action: kind }, 'refused: not the requester or an operator');
      return {
        ok: false,
        message: plainMessage(`Only the person who started run \`${runId}\` or an operator can ${kind} it; nothing was changed.`),
      };
    }
    await q.query('SAVEPOINT slack_operate');
    try {
      if (kind === 'retry') await this.#o.runtime.retry(runId, actor, q);
      else await this.#o.runtime.cancel(runId, actor, q);
      await q.query('RELEASE SAVEPOINT slack_operate');
      return { ok: true, message: plainMessage(kind === 'retry' ? `Retrying \`${runId}\` from the step that failed.` : `Cancelling \`${runId}\`.`) };
    } catch (e) {
      await q.query('ROLLBACK TO SAVEPOINT slack_operate');
      if (e instanceof TollgateError) return { ok: false, message: plainMessage(e.message) };
      throw e;
    }
  }

  /** An ephemeral answer to a click, for the clicker only (in the channel or DM clicked in; from App Home, a DM). */
  async #explain(client: WebClient, b: ClickBody, text: string, approvalId: string): Promise<void> {
    const channel = b.channel?.id ?? b.container?.channel_id;
    const thread = b.container?.thread_ts;
    // A click on App Home has no channel: the answer goes to the app's DM with the clicker.
    const call = channel
      ? client.chat.postEphemeral({ channel, user: b.user.id, text, ...(thread ? { thread_ts: thread } : {}) })
      : client.chat.postMessage({ channel: b.user.id, text });
    await call.catch((e: unknown) => {
      this.#log.warn({ err: (e as Error).message, approvalId }, 'could not post an ephemeral explanation');
    });
  }

  #origin(principal: Principal, where: Where | null): Record<string, unknown> {
    return { platform: 'slack', team: principal.tenant, channel: where?.channel ?? null, threadTs: where?.threadTs ?? null };
  }

  #workflow(name: string, version?: number): WorkflowDefinition | undefined {
    try {
      return this.#o.registry.get(name, version);
    } catch {
      return undefined;
    }
  }

  #unknownWorkflow(name: string): SlackMessage {
    return renderWorkflows(this.#o.registry.latest(), `No workflow named \`${escapeMrkdwn(name)}\`.`);
  }

  #invalidParams(def: WorkflowDefinition, error: import('zod').ZodError): SlackMessage {
    const errs = Object.entries(fieldErrors(error))
      .map(([k, m]) => `• ${k ? `*${escapeMrkdwn(k)}*: ` : ''}${escapeMrkdwn(m)}`)
      .join('\n');
    return plainMessage(`Cannot start *${escapeMrkdwn(def.name)}*:\n${errs}\nInputs: ${escapeMrkdwn(describeInputs(def.input))}\nWrite \`run ${def.name} key=value …\`.`);
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
  container?: { channel_id?: string; thread_ts?: string };
}

function safeJson(s: string | undefined): unknown {
  try {
    return JSON.parse(s ?? '');
  } catch {
    return undefined;
  }
}
