/**
 * The Teams adapter's intake at `POST /api/messages`: authenticate the activity, parse it into an
 * intent for the chat core (src/chat/intake.ts `ChatCore.submit`), answer.
 *
 * General notes
 * - Authentication first, by botbuilder (adapter.ts); every failure is 401 and nothing is read,
 *   recorded or sent. With no MicrosoftAppId, botbuilder accepts anonymous requests: the adapter
 *   is then only built when TEAMS_ALLOW_UNAUTHENTICATED=true says so (index.ts).
 * - Who acts is the verified activity's AAD object id and tenant (identity.ts); card actions carry
 *   ids only.
 * - Messages (personal, group chat, channel) are read with the same command grammar as Slack; the
 *   answer, or the run's live card, is a row of the outbox, posted by the `chat-deliver` job. The
 *   HTTP answer (200) is sent only after `submit` recorded the intent (invariant 8). Free text
 *   goes to the model when one is configured (`understand: true`), read by the worker after the
 *   answer; a proposal's Confirm and Edit are card actions like the others.
 * - Card actions (`adaptiveCard/action` invokes, Universal Actions) are answered in the HTTP
 *   response with the clicked card redrawn for the clicker: the outcome of their decision, or why
 *   it was refused, on top. Every other copy is brought up to date by the outbox. A decision that
 *   arrives while another is being decided (a burst: INLINE_DECISIONS) is recorded and carried out
 *   right after the answer instead, as Slack's clicks are, and answered with a message.
 * - Installations and every activity keep the sender's and tenant's addresses (`seenIn`, recorded
 *   by the chat layer with the request: src/chat/directory.ts), so approvers get their card later
 *   without having written to the bot.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Activity } from 'botbuilder';
import {
  ALREADY_RECORDED,
  notice,
  parseChatCommand,
  PROPOSAL_UNKNOWN,
  readBody,
  readRevision,
  sendJson,
  type ChatCore,
  type Intent,
  type Logger,
  type Principal,
  type Shown,
  type TeamsSeen,
  type Where,
} from '../../src/chat/index.ts';
import type { TeamsCloudAdapter } from './adapter.ts';
import { PARAM_INPUT_PREFIX, renderForViewer, reasonInputId, VERBS, type AdaptiveCard, type CardNote } from './cards.ts';
import { editConfirmCard, editFormCard, paramValues, RESOLVE_INPUTS, resolveFormCard } from './amend-cards.ts';
import { commandText, principalOf, tenantOf, type TeamsActivity } from './identity.ts';

const CARD = 'application/vnd.microsoft.card.adaptive';

/** The body of an invoke response that replaces the clicked card for the clicker. */
function cardResponse(card: AdaptiveCard) {
  return { statusCode: 200, type: CARD, value: card };
}

function errorResponse(statusCode: number, message: string) {
  return { statusCode, type: 'application/vnd.microsoft.error', value: { code: statusCode === 400 ? 'BadRequest' : 'Error', message } };
}

/**
 * What a verified activity says of where its sender and tenant can be reached later (the tenant's
 * serviceUrl, the sender's id and personal conversation, members added): recorded by the chat
 * layer with the activity's request, so approvers get their card later without having written.
 */
function seenIn(a: TeamsActivity): TeamsSeen | undefined {
  const tenant = tenantOf(a);
  if (!tenant) return undefined;
  const personal = a.conversation.conversationType === 'personal' ? a.conversation.id : null;
  const users = [
    ...(a.from?.aadObjectId ? [{ aadObjectId: a.from.aadObjectId, userId: a.from.id, name: a.from.name, personalConversation: personal }] : []),
    ...(a.type === 'conversationUpdate' ? (a.membersAdded ?? []) : []).flatMap((m) =>
      m.aadObjectId ? [{ aadObjectId: m.aadObjectId, userId: m.id, name: m.name, personalConversation: null }] : [],
    ),
  ];
  return { tenant, serviceUrl: a.serviceUrl, users };
}

const noted = (remember: TeamsSeen | undefined) => (remember ? { remember } : {});

/** What the clicked card showed (stale buttons): its revision, and the posted card it was (to redraw it for everyone). */
function shownBy(a: TeamsActivity, revision: number | undefined): { shown?: Shown } {
  if (revision === undefined) return {};
  const message = a.replyToId ? { message: { platform: 'teams', conversation: a.conversation.id, messageId: a.replyToId } } : {};
  return { shown: { revision, ...message } };
}

/**
 * How many Approve/Reject invokes are decided inline at once. An invoke decided inline is answered
 * with the card redrawn to show its outcome, but it holds its HTTP answer for a transaction of
 * about a dozen round trips; in a burst (a whole team approving at once) those queue for the pool,
 * and a click waited a second for its answer. So a decision is decided inline only when no other
 * is: one arriving meanwhile is recorded through the grouped write Slack's clicks use and decided
 * by the worker right after, and the invoke is answered with a message at once (the card is
 * brought up to date through the outbox within milliseconds, a refusal explained in the clicker's
 * personal chat with the bot, as Slack explains one ephemerally).
 */
export const INLINE_DECISIONS = 1;

/** The invoke answer of a decision recorded to be carried out right after: Teams shows the text and keeps the card. */
function recordedMessage(decision: 'approve' | 'reject') {
  const value = `Your ${decision === 'approve' ? 'approval' : 'rejection'} is recorded; the card shows it in a moment.`;
  return { statusCode: 200, type: 'application/vnd.microsoft.activity.message', value };
}

export class TeamsBot {
  readonly #adapter: TeamsCloudAdapter;
  readonly #core: () => ChatCore;
  readonly #log: Logger;
  readonly #inlineDecisions: number;
  /** Decisions being decided inline now (INLINE_DECISIONS). */
  #deciding = 0;

  constructor(o: { adapter: TeamsCloudAdapter; core: () => ChatCore; log: Logger; inlineDecisions?: number }) {
    this.#adapter = o.adapter;
    this.#core = o.core;
    this.#log = o.log.child({ component: 'teams' });
    this.#inlineDecisions = o.inlineDecisions ?? INLINE_DECISIONS;
  }

  /** The HTTP handler of `POST /api/messages`. */
  readonly handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let activity: TeamsActivity | undefined;
    const body = await readBody(req); // over the limit: 413, answered by the server
    try {
      const parsed: unknown = JSON.parse(body.toString('utf8'));
      if (parsed && typeof parsed === 'object' && typeof (parsed as { type?: unknown }).type === 'string') activity = parsed as TeamsActivity;
    } catch {
      // not JSON, or the body could not be read: answered 400 below, as JSON without a "type" is
    }
    if (!activity) {
      sendJson(res, 400, { error: 'The body is not a Bot Framework activity (a JSON object with a "type").' });
      return;
    }
    try {
      await this.#adapter.authenticate(activity as unknown as Activity, String(req.headers.authorization ?? ''));
    } catch (e) {
      // botbuilder throws AuthenticationError for some failures and plain JWT errors for others
      // (forged signature, alg none, nbf in the future): all of them are 401.
      // The reason (an unreachable key endpoint, a bad signature) is for the log only, under the request id.
      this.#log.warn(
        { err: (e as Error).message, serviceUrl: activity.serviceUrl, requestId: res.getHeader('x-request-id') },
        'refused a Teams request whose token did not verify',
      );
      sendJson(res, 401, { error: 'Unauthorized: the request could not be authenticated.' });
      return;
    }
    // A tenant not on the project's `tenants` list: 403, nothing recorded (the core logs it).
    if (!this.#core().tenantAllowed('teams', tenantOf(activity))) {
      sendJson(res, 403, { error: 'This Tollgate does not serve this tenant.' });
      return;
    }
    const answer = await this.#activity(activity);
    if (answer === undefined) {
      res.writeHead(200).end();
    } else {
      sendJson(res, 200, answer);
    }
  };

  async #activity(a: TeamsActivity): Promise<unknown> {
    const actor = principalOf(a);
    const remember = seenIn(a);
    if (a.type === 'message' && actor) return this.#message(a, actor, remember);
    if (a.type === 'invoke' && a.name === 'adaptiveCard/action') return this.#action(a, actor, remember);
    await this.#introduce(remember);
    return undefined;
  }

  /** An activity that asks for nothing: only what it said of where people are is recorded. */
  async #introduce(remember: TeamsSeen | undefined): Promise<void> {
    if (remember) await this.#core().submit({ kind: 'introduce', remember });
  }

  /** Where the answer to this activity goes: its conversation, in a channel the thread it was said in. */
  #where(a: TeamsActivity, actor: Principal): Where {
    const channel = a.conversation.conversationType === 'channel';
    return {
      platform: 'teams',
      tenant: actor.tenant,
      conversation: a.conversation.id,
      thread: channel ? (a.replyToId ?? a.id ?? null) : null,
      address: { serviceUrl: a.serviceUrl },
      direct: a.conversation.conversationType === 'personal',
    };
  }

  async #message(a: TeamsActivity, actor: Principal, remember: TeamsSeen | undefined): Promise<undefined> {
    const text = commandText(a);
    if (!text) {
      await this.#introduce(remember);
      return undefined;
    }
    await this.#core().submit({
      kind: 'command',
      command: parseChatCommand(text),
      actor,
      where: this.#where(a, actor),
      key: { key: `message:${a.id ?? ''}`, kind: 'message' },
      replyVia: 'outbox',
      carryOut: 'after-ack',
      understand: true,
      ...noted(remember),
    });
    return undefined;
  }

  /** A Universal Action: do what the verb asks, then answer with the clicked card as the clicker now sees it. */
  async #action(a: TeamsActivity, actor: Principal | undefined, remember: TeamsSeen | undefined): Promise<unknown> {
    const action = (a.value as { action?: { verb?: unknown; data?: unknown } } | undefined)?.action;
    const verb = typeof action?.verb === 'string' ? action.verb : '';
    const data = (action?.data && typeof action.data === 'object' ? action.data : {}) as Record<string, unknown>;
    if (!actor) {
      await this.#introduce(remember);
      return errorResponse(400, 'This action names no Teams user and tenant, so Tollgate cannot tell who acted.');
    }
    const str = (k: string) => (typeof data[k] === 'string' ? data[k] : '');
    const key = { key: `invoke:${a.id ?? ''}`, kind: verb };
    const core = this.#core();
    // The revision the clicked card was drawn at (stale buttons); a card from before versions has none.
    const shown = shownBy(a, readRevision(data.v));
    switch (verb) {
      case VERBS.approve:
      case VERBS.reject: {
        const approvalId = str('approvalId');
        const comment = (str(reasonInputId(approvalId)) || str('reason')).trim();
        const decision = verb === VERBS.approve ? 'approve' : 'reject';
        const intent = {
          kind: 'decide' as const,
          approvalId,
          decision,
          ...(comment && verb === VERBS.reject ? { comment } : {}),
          actor,
          ...shown,
          ...noted(remember),
        } satisfies Partial<Intent>;
        // A Reject without a reason is always answered inline: the card asks for the reason (nothing is recorded).
        if (this.#deciding >= this.#inlineDecisions && (decision === 'approve' || comment)) {
          // A burst: recorded now, decided by the worker right after (INLINE_DECISIONS).
          await core.submit({ ...intent, explainAt: this.#where(a, actor), carryOut: 'after-ack' });
          return recordedMessage(decision);
        }
        this.#deciding++;
        let outcome: Awaited<ReturnType<ChatCore['submit']>>;
        try {
          outcome = await core.submit({ ...intent, explainAt: null }); // explained on the returned card
        } finally {
          this.#deciding--;
        }
        const { decided, fieldErrors, reply } = outcome;
        if (fieldErrors?.comment) return this.#card(a, actor, fieldErrors.comment, { approvalId }); // a reject needs a reason
        if (reply?.kind === 'outdated') return this.#card(a, actor, reply.outdated, { approvalId }); // an outdated card: redrawn, with what happened since
        const note =
          decided?.kind === 'recorded'
            ? `Recorded: you ${verb === VERBS.approve ? 'approved' : 'rejected'} this request.`
            : (decided?.message ?? 'Nothing changed.');
        return this.#card(a, actor, note, { approvalId });
      }
      case VERBS.retry:
      case VERBS.cancel: {
        const runId = str('runId');
        const r = await core.submit({
          kind: 'operate',
          action: verb === VERBS.retry ? 'retry' : 'cancel',
          runId,
          actor,
          key,
          explainAt: null,
          ...shown,
          ...noted(remember),
        });
        const note = r.duplicate ? ALREADY_RECORDED : r.reply?.kind === 'notice' ? r.reply.text : r.reply?.kind === 'outdated' ? r.reply.outdated : undefined;
        return this.#card(a, actor, note, { runId });
      }
      case VERBS.start:
        return this.#start(a, actor, data, key, remember);
      case VERBS.confirm: {
        // Carried out now: the answer is the proposal card redrawn (confirmed), or why not.
        const proposalId = str('proposalId');
        const r = await core.submit({ kind: 'confirm', proposalId, actor, key, explainAt: null, ...noted(remember) });
        const note = r.duplicate ? ALREADY_RECORDED : r.reply?.kind === 'notice' ? r.reply.text : undefined;
        const view = await core.proposalView(proposalId);
        return cardResponse(renderForViewer(view ?? notice(note ?? 'This proposal is no longer known to Tollgate.'), actor, view ? note : undefined));
      }
      case VERBS.edit: {
        // The workflow's form, prefilled with what was understood; its Start run is a form start.
        await this.#introduce(remember);
        const form = await core.proposalForm(str('proposalId'));
        if (!form) return cardResponse(renderForViewer(notice(PROPOSAL_UNKNOWN), actor));
        return cardResponse(renderForViewer(core.invalidParams(form.def, {}, form.given), actor));
      }
      case VERBS.editRun:
      case VERBS.editPreview:
      case VERBS.editConfirm:
      case VERBS.resolve:
      case VERBS.resolveSubmit:
        await this.#introduce(remember);
        return this.#amend(a, actor, verb, data, key);
      case VERBS.refresh:
        await this.#introduce(remember);
        return this.#card(a, actor, undefined, { approvalId: str('approvalId'), runId: str('runId') });
      default:
        await this.#introduce(remember);
        return errorResponse(400, `Unknown action "${verb}". This card may come from an older version of Tollgate; ask for it again.`);
    }
  }

  /** The parameters form was submitted: the core starts the run, or answers with the form again and its errors. */
  async #start(
    a: TeamsActivity,
    actor: Principal,
    data: Record<string, unknown>,
    key: { key: string; kind: string },
    remember: TeamsSeen | undefined,
  ): Promise<unknown> {
    const workflow = typeof data.workflow === 'string' ? data.workflow : '';
    const version = typeof data.version === 'number' ? data.version : Number(data.version) || undefined;
    const values: Record<string, string> = {};
    for (const [k, v] of Object.entries(data)) {
      if (k.startsWith(PARAM_INPUT_PREFIX) && v !== undefined && v !== null)
        values[k.slice(PARAM_INPUT_PREFIX.length)] = typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
    }
    // The run is recorded before the answer and created by the worker right after it.
    const result = await this.#core().submit({
      kind: 'start',
      workflow,
      ...(version !== undefined ? { version } : {}),
      values,
      actor,
      where: this.#where(a, actor),
      key,
      carryOut: 'after-ack',
      ...noted(remember),
    });
    return cardResponse(renderForViewer(result.reply ?? notice(ALREADY_RECORDED), actor));
  }

  /**
   * Edit and retry, Resolve by hand (amend-cards.ts): the forms, the preview of an edit, and the
   * change itself through the core; a refusal is a notice card, field errors the form again.
   */
  async #amend(a: TeamsActivity, actor: Principal, verb: string, data: Record<string, unknown>, key: { key: string; kind: string }): Promise<unknown> {
    const core = this.#core();
    const runId = typeof data.runId === 'string' ? data.runId : '';
    const str = (k: string) => (typeof data[k] === 'string' ? data[k] : '');
    const refused = (t: string) => cardResponse(renderForViewer(notice(t), actor));
    if (verb === VERBS.editRun || verb === VERBS.editPreview) {
      const form = await core.editForm(runId, actor);
      if (!form.ok) return refused(form.text);
      if (verb === VERBS.editRun) return cardResponse(editFormCard(form.form));
      const values = paramValues(data);
      const preview = await core.previewEdit(runId, actor, values);
      if (preview.ok) return cardResponse(editConfirmCard(runId, preview.summary, preview.values));
      if (preview.fieldErrors) return cardResponse(editFormCard(form.form, { ...form.form.given, ...values }, preview.fieldErrors));
      return refused(preview.text);
    }
    if (verb === VERBS.resolve) {
      const form = await core.resolveForm(runId, actor);
      return form.ok ? cardResponse(resolveFormCard(form.form)) : refused(form.text);
    }
    const action = str(RESOLVE_INPUTS.action);
    const reason = str(RESOLVE_INPUTS.reason);
    const change: Extract<Intent, { kind: 'amend' }>['change'] =
      verb === VERBS.editConfirm
        ? { action: 'edit' as const, values: paramValues(data) }
        : action === 'skip' || action === 'give-up'
          ? { action: action, reason }
          : { action: 'by-hand' as const, output: str(RESOLVE_INPUTS.output), reason };
    const r = await core.submit({ kind: 'amend', runId, change, actor, key });
    if (r.fieldErrors && verb === VERBS.resolveSubmit) {
      const form = await core.resolveForm(runId, actor);
      if (form.ok) return cardResponse(resolveFormCard(form.form, r.fieldErrors));
    }
    if (r.refused) return refused(r.refused);
    return this.#card(a, actor, r.duplicate ? ALREADY_RECORDED : r.reply?.kind === 'notice' ? r.reply.text : undefined, { runId });
  }

  /**
   * The clicked card redrawn for the clicker: the message the click was made on when Tollgate
   * posted it (its run card or approval copy), else the approval or run the action named.
   */
  async #card(a: TeamsActivity, actor: Principal, note: CardNote | undefined, named: { approvalId?: string; runId?: string }): Promise<unknown> {
    const posted = a.replyToId ? { platform: 'teams', conversation: a.conversation.id, messageId: a.replyToId } : undefined;
    const view = await this.#core().viewOf({ ...(posted ? { posted } : {}), ...named });
    if (view) return cardResponse(renderForViewer(view, actor, note));
    return cardResponse(
      renderForViewer(typeof note === 'object' ? { kind: 'outdated', outdated: note } : notice(note ?? 'This card is no longer known to Tollgate.'), actor),
    );
  }
}
