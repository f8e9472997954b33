/**
 * The core's views (src/chat/platform.ts `ChatView`) as Adaptive Cards 1.5 for Teams:
 * `{text, body: {card}}`, where `text` is the notification and fallback text.
 *
 * - Pure: the same view gives the same JSON (the outbox hashes it); nothing reads the clock. Dates
 *   are written as Adaptive Cards' `{{DATE(…)}} {{TIME(…)}}`, so each reader sees their own time zone.
 * - The sentences are the shared ones (src/views/text.ts) with Teams' markup, so Teams says what
 *   Slack says.
 * - Interactive ids are the external contract: `Action.Execute` verbs (ACTION_IDS, `run.start`,
 *   `card.refresh`) whose `data` holds ids only (`approvalId`, `runId`, `workflow`/`version`);
 *   who clicked comes from the verified activity, never from the card.
 * - Reject asks why: its reason input (`reason.<approvalId>`, required) sits with the Reject button
 *   in a card shown under "Reject…", so a card with several pending approvals validates only the
 *   reason of the one being rejected (`associatedInputs: 'auto'` gathers every input of the
 *   enclosing cards, but not those of sibling show-cards).
 * - Everyone sees the base card (`renderTeams`), with the buttons while a gate is pending; its
 *   `refresh` (eligible Teams approvers, at most 60) makes Teams ask for each approver's own card
 *   (`renderForViewer`), which keeps buttons only for someone who may still decide.
 * - Size: every card stays under `LIMITS.cardBytes` by construction: texts are cut, steps folded,
 *   lists and approvals added only while they fit, and a card that would still be too large is
 *   replaced by a short one saying so.
 */
import {
  ACTION_IDS,
  approvalFallback,
  approvalHeadline,
  approvalLines,
  copyStillAsks,
  eligibilityOnView,
  ESCALATED_AWAY,
  foldSteps,
  personLabel,
  outdatedLines,
  outdatedPlain,
  PROPOSAL_ACTION_IDS,
  REJECT_REASON_REQUIRED,
  STATUS_LABELS,
  stepText,
  truncate,
  type ChatReply,
  type ChatView,
  type Principal,
  type Rendered,
  type RunStatus,
  type RunSummary,
  type StepStatus,
  type WorkflowSummary,
} from '../../src/chat/index.ts';
import { TollgateError } from '../../src/chat/index.ts';
import type { ApprovalCopy, ApprovalView } from '../../src/views/approval-view.ts';
import type { FormField } from '../../src/views/form.ts';
import type { OutdatedView } from '../../src/views/outdated-view.ts';
import type { ProposalView } from '../../src/views/proposal-view.ts';
import type { RunView } from '../../src/views/run-view.ts';
import type { Markup } from '../../src/views/text.ts';

/** Every interactive verb a Teams card sends (`Action.Execute`), and what its `data` holds. */
export const VERBS = {
  /** data `{ approvalId }` */
  approve: ACTION_IDS.approve,
  /** data `{ approvalId, 'reason.<approvalId>': <text> }` */
  reject: ACTION_IDS.reject,
  /** data `{ runId }` */
  retry: ACTION_IDS.retry,
  /** data `{ runId }` */
  cancel: ACTION_IDS.cancel,
  /** data `{ workflow, version? }` plus one value per field, keyed `param.<field name>` */
  start: 'run.start',
  /** data `{ approvalId }` or `{ runId }` */
  refresh: 'card.refresh',
  /** data `{ proposalId }`: start what a free-text request was understood to mean (only its asker may) */
  confirm: PROPOSAL_ACTION_IDS.confirm,
  /** data `{ proposalId }`: answered with the workflow's form, prefilled */
  edit: PROPOSAL_ACTION_IDS.edit,
  /** data `{ runId }`: Edit and retry, answered with the workflow's form prefilled with the run's input (amend-cards.ts) */
  editRun: ACTION_IDS.edit,
  /** data `{ runId }` plus `param.<field>` values: answered with what the edit will do, to confirm */
  editPreview: 'run.edit.preview',
  /** data `{ runId }` plus `param.<field>` values: the edit, carried out */
  editConfirm: 'run.edit.confirm',
  /** data `{ runId }`: Resolve by hand, answered with the failed step's form */
  resolve: ACTION_IDS.resolve,
  /** data `{ runId, 'resolve.action', 'resolve.output', 'resolve.reason' }`: the resolution, carried out */
  resolveSubmit: 'run.resolve.submit',
} as const;

export const REASON_INPUT_PREFIX = 'reason.';
/** Shown by Teams under an empty reason; the core refuses a reject without one with the same sentence. */
export const REASON_REQUIRED_MESSAGE = REJECT_REASON_REQUIRED;
export const REASON_MAX_LENGTH = 2000;
/** Teams refreshes a card automatically for at most 60 listed users. */
export const MAX_REFRESH_USERS = 60;

/** The id of the Reject reason input of one approval (its value arrives in the invoke's data under this key). */
export function reasonInputId(approvalId: string): string {
  return `${REASON_INPUT_PREFIX}${approvalId}`;
}

export const LIMITS = {
  /** Teams documents more, but older pages said 28 KB: every card stays below this (UTF-8 bytes of its JSON). */
  cardBytes: 27_500,
  /** One TextBlock's text: characters, and bytes once in the card's JSON (emoji and quotes take more). */
  textBlock: 1500,
  textBlockBytes: 1600,
  errorText: 1500,
  visibleSteps: 20,
  /** Approvals drawn in one run card (then a count), if they fit. */
  runApprovals: 8,
  /** Approvals drawn in the `approvals` reply (then a count), if they fit. */
  listedApprovals: 10,
  listedRuns: 50,
  listedWorkflows: 60,
  formFields: 40,
  fallbackText: 2000,
} as const;

export const CARD_SCHEMA = 'http://adaptivecards.io/schemas/adaptive-card.json';

export type CardElement = { type: string } & Record<string, unknown>;

export interface ExecuteAction {
  type: 'Action.Execute';
  title?: string;
  verb: string;
  data: Record<string, string | number>;
  associatedInputs?: 'auto' | 'none';
  style?: 'positive' | 'destructive';
}

export interface ShowCardAction {
  type: 'Action.ShowCard';
  title: string;
  card: { type: 'AdaptiveCard'; body: CardElement[]; actions: CardAction[] };
}

export type CardAction = ExecuteAction | ShowCardAction;

export interface AdaptiveCard {
  type: 'AdaptiveCard';
  $schema: typeof CARD_SCHEMA;
  version: '1.5';
  fallbackText: string;
  refresh?: { action: ExecuteAction; userIds: string[] };
  body: CardElement[];
  actions?: CardAction[];
  msteams: { width: 'Full' };
}

// ---------------------------------------------------------------------------------------------
// Markup

/**
 * Teams TextBlock markdown knows bold, italics, lists and links. Inserted values are escaped so
 * they can neither restyle the card nor hide a link behind other words. An underscore inside a
 * word (`run_01`, `amount_eur`) cannot start emphasis and is left as it is, which keeps ids
 * readable in clients that show a stray backslash.
 */
export function escapeMarkdown(s: string): string {
  return s.replace(/[\\*[\]]|(?<![\p{L}\p{N}])_|_(?![\p{L}\p{N}])/gu, '\\$&');
}

/** Adaptive Cards' date functions want RFC 3339 without fractions. */
export function teamsDate(d: Date): string {
  const iso = d.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return `{{DATE(${iso}, SHORT)}} {{TIME(${iso})}}`;
}

export const TEAMS_MARKUP: Markup = {
  text: escapeMarkdown,
  bold: (s) => `**${s}**`,
  // No inline code in Teams cards: shown as plain text.
  code: escapeMarkdown,
  // People by name, with their platform ("Ada Lovelace (Teams)"), else their principal (src/views/people.ts).
  person: (p) => (p ? escapeMarkdown(personLabel(p)) : 'someone'),
  date: teamsDate,
};

/** A notice's `*bold*` and `` `code` `` marks (src/chat/replies.ts) as Teams markdown; everything else escaped. */
export function noticeMarkdown(s: string): string {
  return s
    .split(/(`[^`\n]*`|\*[^*\n]+\*)/)
    .map((part, i) =>
      i % 2 === 0 ? escapeMarkdown(part) : part.startsWith('`') ? escapeMarkdown(part.slice(1, -1)) : `**${escapeMarkdown(part.slice(1, -1))}**`,
    )
    .join('');
}

/** A notice without its marks, for notifications. */
export function noticePlain(s: string): string {
  return s.replace(/`([^`\n]*)`/g, '$1').replace(/\*([^*\n]+)\*/g, '$1');
}

// ---------------------------------------------------------------------------------------------
// Elements

type TextOptions = {
  spacing?: 'None' | 'Small' | 'Medium';
  weight?: 'Bolder';
  size?: 'Medium' | 'Small';
  color?: 'Attention' | 'Good';
  isSubtle?: boolean;
  fontType?: 'Monospace';
};

/** `s` cut to `maxChars` characters, then further until its JSON takes at most `maxBytes` bytes. */
function fitText(s: string, maxChars: number, maxBytes: number): string {
  const cut = truncate(s, maxChars);
  if (bytes(cut) <= maxBytes) return cut;
  let lo = 0;
  let hi = cut.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (bytes(truncate(s, mid)) <= maxBytes) lo = mid;
    else hi = mid - 1;
  }
  return truncate(s, lo);
}

function textBlock(text: string, opts: TextOptions = {}): CardElement {
  return { type: 'TextBlock', text: fitText(text, LIMITS.textBlock, LIMITS.textBlockBytes), wrap: true, ...opts };
}

/** Lines as TextBlocks, tight together (a single `\n` is not a line break in every Teams client). */
function textLines(lines: string[], opts: TextOptions = {}): CardElement[] {
  return lines.map((l, i) => textBlock(l, i === 0 ? opts : { ...opts, spacing: 'None' }));
}

function section(items: CardElement[], separator = true): CardElement {
  return { type: 'Container', separator, spacing: 'Medium', items };
}

function bytes(v: unknown): number {
  return Buffer.byteLength(JSON.stringify(v), 'utf8');
}

/**
 * Takes items in order while they fit in `budget` bytes; `max` caps the count. Returns what fits
 * and how many were left out.
 */
function fitting<T>(items: T[], budget: number, max: number, draw: (item: T) => CardElement[]): { drawn: CardElement[]; left: number } {
  const drawn: CardElement[] = [];
  let used = 0;
  let n = 0;
  for (const item of items) {
    if (n >= max) break;
    const els = draw(item);
    const size = bytes(els) + 1;
    if (used + size > budget) break;
    drawn.push(...els);
    used += size;
    n++;
  }
  return { drawn, left: items.length - n };
}

function execute(title: string, verb: string, data: ExecuteAction['data'], associatedInputs: 'auto' | 'none', style?: ExecuteAction['style']): ExecuteAction {
  return style ? { type: 'Action.Execute', title, verb, data, associatedInputs, style } : { type: 'Action.Execute', title, verb, data, associatedInputs };
}

function reasonInput(approvalId: string): CardElement {
  return {
    type: 'Input.Text',
    id: reasonInputId(approvalId),
    label: 'Why? (the requester sees this)',
    isMultiline: true,
    maxLength: REASON_MAX_LENGTH,
    isRequired: true,
    errorMessage: REASON_REQUIRED_MESSAGE,
  };
}

/**
 * The data of a button acting on `id` (`approvalId` or `runId`), with the revision of the view it
 * was drawn from as `v` (stale buttons, src/chat/intake/stale.ts) when the view has one.
 */
function actionData(key: 'approvalId' | 'runId', id: string, revision: number | undefined): ExecuteAction['data'] {
  return revision === undefined ? { [key]: id } : { [key]: id, v: revision };
}

/** Approve at once; "Reject…" opens the reason and the Reject button, which sends only that reason. */
function decisionButtons(approvalId: string, revision?: number): CardElement {
  const data = actionData('approvalId', approvalId, revision);
  return {
    type: 'ActionSet',
    actions: [
      execute('Approve', VERBS.approve, data, 'none', 'positive'),
      {
        type: 'Action.ShowCard',
        title: 'Reject…',
        card: { type: 'AdaptiveCard', body: [reasonInput(approvalId)], actions: [execute('Reject', VERBS.reject, data, 'auto', 'destructive')] },
      },
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// Who sees buttons, and who gets a refresh

/** Whether a copy of an approval offers Approve/Reject to the one it is drawn for. */
type MayDecide = (a: ApprovalView, copy: ApprovalCopy) => boolean;

const THREAD: ApprovalCopy = { kind: 'thread' };

/** The base card, seen by everyone: buttons while the copy still asks (authorisation happens at the click). */
const anyoneMayTry: MayDecide = (a, copy) => copyStillAsks(a, copy);

/**
 * One person's card: buttons only while they may still decide, by the one eligibility rule (so a
 * requester the policy bars from approving their own request sees none).
 */
function viewerMayDecide(viewer: Principal): MayDecide {
  return (a, copy) => copyStillAsks(a, copy) && eligibilityOnView(a, viewer).may;
}

const TEAMS_PRINCIPAL = /^teams:[^:\s]+:([^:\s]+)$/;

/** The Teams user ids (`8:orgid:<aadObjectId>`) of the Teams principals among `eligible`, at most 60, in order. */
export function refreshUserIds(eligible: string[]): string[] {
  const ids = new Set<string>();
  for (const p of eligible) {
    const m = TEAMS_PRINCIPAL.exec(p);
    if (m) ids.add(`8:orgid:${m[1]}`);
    if (ids.size === MAX_REFRESH_USERS) break;
  }
  return [...ids];
}

function refreshFor(data: { approvalId: string } | { runId: string }, pending: ApprovalView[]): AdaptiveCard['refresh'] {
  const userIds = refreshUserIds(pending.flatMap((a) => a.eligible));
  if (userIds.length === 0) return undefined;
  return { action: { type: 'Action.Execute', verb: VERBS.refresh, data }, userIds };
}

// ---------------------------------------------------------------------------------------------
// Views

const STEP_ICON: Record<StepStatus, string> = {
  running: '▶️',
  retrying: '🔁',
  sleeping: '💤',
  succeeded: '✅',
  failed: '❌',
  compensating: '↩️',
  compensated: '↩️',
  compensation_failed: '‼️',
};
const RUN_ICON: Record<RunStatus, string> = {
  queued: '⏳',
  running: '▶️',
  waiting: '⏸️',
  succeeded: '✅',
  failed: '❌',
  cancelled: '🚫',
  compensating: '↩️',
  compensated: '↩️',
  compensation_failed: '‼️',
  dead_letter: '☠️',
};

/** A card's body, actions and refresh, before the common envelope. */
interface Drawn {
  text: string;
  body: CardElement[];
  actions?: CardAction[];
  refresh?: AdaptiveCard['refresh'];
}

/** One approval: the shared lines, and the buttons when `mayDecide`. */
function approvalSection(a: ApprovalView, copy: ApprovalCopy, mayDecide: MayDecide): CardElement[] {
  const items = textLines(approvalLines(a, TEAMS_MARKUP));
  if (mayDecide(a, copy)) items.push(decisionButtons(a.id, a.revision));
  return [section(items)];
}

/** An approval with its headline and run on top (a copy, or a list entry). */
function approvalWithHeadline(a: ApprovalView, copy: ApprovalCopy, mayDecide: MayDecide): CardElement[] {
  const icon = a.status === 'pending' ? '✋' : a.status === 'approved' ? '✅' : '🚫';
  const run = `Run ${escapeMarkdown(a.runId)} (${escapeMarkdown(a.workflow)})`;
  return [
    textBlock(`${icon} ${approvalHeadline(a, TEAMS_MARKUP)}`, { size: 'Medium' }),
    textBlock(run, { isSubtle: true, spacing: 'None' }),
    ...approvalSection(a, copy, mayDecide),
  ];
}

function approvalCopyCard(a: ApprovalView, copy: ApprovalCopy, mayDecide: MayDecide): Drawn {
  const body = approvalWithHeadline(a, copy, mayDecide);
  const escalatedAway = a.status === 'pending' && !copyStillAsks(a, copy);
  if (escalatedAway) body.push(textBlock(ESCALATED_AWAY, { isSubtle: true }));
  const refresh = escalatedAway || a.status !== 'pending' ? undefined : refreshFor({ approvalId: a.id }, [a]);
  return { text: approvalFallback(a), body, refresh };
}

function runHead(run: RunView): CardElement[] {
  const cancel = run.cancelRequested && run.status !== 'cancelled' ? ' (cancel requested)' : '';
  const head = `**${escapeMarkdown(run.workflow)}** v${run.version} · ${RUN_ICON[run.status]} **${STATUS_LABELS[run.status]}**${cancel}`;
  return [
    textBlock(head, { size: 'Medium' }),
    textBlock(`Requested by ${TEAMS_MARKUP.person(run.requester)}`, { spacing: 'None' }),
    textBlock(`Run ${escapeMarkdown(run.runId)}`, { isSubtle: true, spacing: 'None' }),
  ];
}

function runSteps(run: RunView): CardElement[] {
  if (run.steps.length === 0) return [];
  const { earlier, shown } = foldSteps(run.steps, LIMITS.visibleSteps);
  const lines = shown.map((s) => `${STEP_ICON[s.status]} ${stepText(s, TEAMS_MARKUP)}`);
  if (earlier) lines.unshift(`_${escapeMarkdown(earlier)}_`);
  return [section(textLines(lines))];
}

function runWaiting(run: RunView): CardElement[] {
  if (!run.waiting) return [];
  const until = run.waiting.until ? ` until ${teamsDate(run.waiting.until)}` : '';
  return [textBlock(`⏳ Waiting (${escapeMarkdown(run.waiting.reason)})${until}`, { isSubtle: true })];
}

function runError(run: RunView): CardElement[] {
  if (!run.error) return [];
  const where = run.error.step ? `Step **${escapeMarkdown(run.error.step)}** failed:` : 'The run failed:';
  const message = escapeMarkdown(truncate(run.error.message, LIMITS.errorText));
  return [section([textBlock(where, { color: 'Attention', weight: 'Bolder' }), textBlock(message, { fontType: 'Monospace', spacing: 'None' })])];
}

function runActions(run: RunView): CardAction[] {
  const data = actionData('runId', run.runId, run.revision);
  return run.actions.map((verb): CardAction =>
    verb === VERBS.editRun || verb === VERBS.resolve
      ? execute(verb === VERBS.editRun ? 'Edit and retry' : 'Resolve…', verb, data, 'none')
      : verb === VERBS.retry
        ? execute('Retry', VERBS.retry, data, 'none', 'positive')
        : {
            type: 'Action.ShowCard',
            title: 'Cancel…',
            card: {
              type: 'AdaptiveCard',
              body: [textBlock('Cancel this run? It stops at the next step boundary and undoes completed steps that can be undone.')],
              actions: [execute('Cancel run', VERBS.cancel, data, 'none', 'destructive')],
            },
          },
  );
}

function runCard(run: RunView, mayDecide: MayDecide): Drawn {
  const top = [...runHead(run), ...runSteps(run), ...runWaiting(run)];
  const error = runError(run);
  const actions = runActions(run);
  const refresh = refreshFor(
    { runId: run.runId },
    run.approvals.filter((a) => a.status === 'pending'),
  );
  const room = LIMITS.cardBytes - bytes({ top, error, actions, refresh }) - 2000;
  const { drawn, left } = fitting(run.approvals, room, LIMITS.runApprovals, (a) => approvalSection(a, THREAD, mayDecide));
  if (left > 0)
    drawn.push(textBlock(`… and ${left} more approval${left === 1 ? '' : 's'}; send **approvals** to see those waiting for you.`, { isSubtle: true }));
  // As Slack: the steps, the waiting line, the approvals, then the error above the buttons.
  const body = [...top, ...drawn, ...error];
  const text = `${run.workflow} v${run.version}: ${STATUS_LABELS[run.status]} (${run.runId})`;
  return { text, body, actions, refresh };
}

function reminderCard(a: ApprovalView): Drawn {
  const when = a.deadline ? teamsDate(a.deadline) : 'soon';
  const line = `⏰ Reminder: ${escapeMarkdown(truncate(a.summary, 1000))} needs your decision by ${when}; Approve or Reject it in the message above (or send **approvals**).`;
  return { text: `Reminder: ${a.summary} needs your decision`, body: [textBlock(line)] };
}

function noticeCard(text: string): Drawn {
  return { text: noticePlain(text), body: textLines(truncate(text, 6000).split('\n').map(noticeMarkdown)) };
}

const USAGE = 'Write **run <workflow> key=value …** to start a run · status <run-id> · runs · approvals · retry <run-id> · cancel <run-id> · workflows · help';

function workflowsCard(workflows: WorkflowSummary[], intro: string | null): Drawn {
  const head = intro ? [textBlock(escapeMarkdown(intro))] : [];
  const draw = (w: WorkflowSummary) => [
    textBlock(`**${escapeMarkdown(w.name)}** v${w.version}: ${escapeMarkdown(truncate(w.description, 500))}`),
    textBlock(`inputs: ${escapeMarkdown(truncate(w.inputs, 500))}`, { isSubtle: true, spacing: 'None' }),
  ];
  const { drawn, left } = fitting(workflows, LIMITS.cardBytes - 4000, LIMITS.listedWorkflows, draw);
  if (workflows.length === 0) drawn.push(textBlock('No workflows are registered.'));
  if (left > 0) drawn.push(textBlock(`… and ${left} more.`, { isSubtle: true }));
  const text = `${intro ? `${intro} ` : ''}Workflows: ${workflows.map((w) => w.name).join(', ')}`;
  return { text, body: [...head, ...drawn, textBlock(USAGE, { isSubtle: true })] };
}

function runsCard(runs: RunSummary[], title: string): Drawn {
  const draw = (r: RunSummary) => [
    textBlock(
      `${RUN_ICON[r.status]} **${escapeMarkdown(r.workflow)}** v${r.version} · ${STATUS_LABELS[r.status]} · ${escapeMarkdown(r.id)} · ${teamsDate(r.createdAt)}`,
      { spacing: 'None' },
    ),
  ];
  const { drawn, left } = fitting(runs, LIMITS.cardBytes - 3000, LIMITS.listedRuns, draw);
  if (runs.length === 0) drawn.push(textBlock('_No runs yet._'));
  if (left > 0) drawn.push(textBlock(`… and ${left} more.`, { isSubtle: true }));
  return { text: `${title}: ${runs.length} run(s)`, body: [textBlock(escapeMarkdown(truncate(title, 150)), { weight: 'Bolder', size: 'Medium' }), ...drawn] };
}

function approvalsCard(list: ApprovalView[], mayDecide: MayDecide): Drawn {
  const body = [textBlock('Waiting for your decision', { weight: 'Bolder', size: 'Medium' })];
  if (list.length === 0) body.push(textBlock('_Nothing waits for your decision._'));
  const { drawn, left } = fitting(list, LIMITS.cardBytes - 3000, LIMITS.listedApprovals, (a) => [section(approvalWithHeadline(a, THREAD, mayDecide))]);
  body.push(...drawn);
  if (left > 0) body.push(textBlock(`… and ${left} more; tollgate approvals list shows them all.`, { isSubtle: true }));
  return { text: `${list.length} approval(s) wait for your decision`, body };
}

/** The invalid-params reply (with the form description the core adds). */
type InvalidParams = Extract<ChatReply, { kind: 'invalid-params' }>;

/** The form's input ids are prefixed, so a field named like the action's own data (`workflow`, `version`) cannot overwrite it. */
export const PARAM_INPUT_PREFIX = 'param.';

export function fieldInput(f: FormField, given: string | undefined): CardElement {
  const label = truncate(f.description ? `${f.name}: ${f.description}` : f.name, 200);
  const value = truncate(given ?? f.defaultValue ?? '', 1000);
  const common = { id: `${PARAM_INPUT_PREFIX}${f.name}`, label, isRequired: !f.optional, ...(f.optional ? {} : { errorMessage: `${f.name} is required.` }) };
  if (f.type === 'number') {
    return { type: 'Input.Number', ...common, ...(/^-?\d+(\.\d+)?$/.test(value.trim()) ? { value: Number(value.trim()) } : {}) };
  }
  if (f.type === 'enum' || f.type === 'boolean') {
    const options = f.options ?? [];
    const choices = options.map((o) => ({ title: truncate(o, 100), value: o }));
    return { type: 'Input.ChoiceSet', ...common, style: 'compact', choices, ...(options.includes(value) ? { value } : {}) };
  }
  return { type: 'Input.Text', ...common, ...(value ? { value } : {}) };
}

function errorLines(errors: { field: string; message: string }[]): string[] {
  return errors.map((e) => `${e.field ? `**${escapeMarkdown(e.field)}**: ` : ''}${escapeMarkdown(truncate(e.message, 500))}`);
}

function formCard(reply: InvalidParams): Drawn {
  const fields = reply.fields ?? [];
  const errorsText = reply.errors.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message)).join('; ');
  const text = reply.intro ? noticePlain(reply.intro) : `Cannot start ${reply.workflow}: ${errorsText}`;
  const hint = `Inputs: ${escapeMarkdown(truncate(reply.inputs, 1000))} · write **run ${escapeMarkdown(reply.workflow)} key=value …**`;
  const intro = reply.intro ? [textBlock(noticeMarkdown(truncate(reply.intro, 1000)))] : [];
  if (fields.length === 0) {
    const head = reply.intro ? intro : [textBlock(`Cannot start **${escapeMarkdown(reply.workflow)}**:`, { weight: 'Bolder' })];
    const body = [...head, ...textLines(errorLines(reply.errors).slice(0, 30), { color: 'Attention' }), textBlock(hint, { isSubtle: true })];
    return { text, body };
  }
  const names = new Set(fields.map((f) => f.name));
  const general = reply.errors.filter((e) => !names.has(e.field));
  const body: CardElement[] = [
    ...intro,
    textBlock(`Start **${escapeMarkdown(reply.workflow)}**${reply.version !== undefined ? ` v${reply.version}` : ''}`, { weight: 'Bolder', size: 'Medium' }),
  ];
  body.push(...textLines(errorLines(general).slice(0, 20), { color: 'Attention' }));
  const draw = (f: FormField): CardElement[] => {
    const err = reply.errors.find((e) => e.field === f.name);
    const input = fieldInput(f, reply.given[f.name]);
    return err ? [input, textBlock(escapeMarkdown(truncate(err.message, 500)), { color: 'Attention', size: 'Small', spacing: 'None' })] : [input];
  };
  const { drawn, left } = fitting(fields, LIMITS.cardBytes - bytes(body) - 4000, LIMITS.formFields, draw);
  body.push(...drawn);
  if (left > 0) body.push(textBlock(`${left} more input${left === 1 ? '' : 's'} do not fit here. ${hint}`, { isSubtle: true }));
  const data: ExecuteAction['data'] = reply.version !== undefined ? { workflow: reply.workflow, version: reply.version } : { workflow: reply.workflow };
  return { text, body, actions: [execute('Start run', VERBS.start, data, 'auto', 'positive')] };
}

/** What a free-text request was understood to mean: Confirm and Edit while it waits, the run once confirmed. */
function proposalCard(p: ProposalView): Drawn {
  const head = `${p.runId ? 'Confirmed' : 'I understood'}: start **${escapeMarkdown(p.workflow)}** v${p.version} (${escapeMarkdown(truncate(p.description, 300))})`;
  const facts = p.params.slice(0, LIMITS.formFields).map((x) => ({ title: truncate(x.name, 100), value: truncate(x.value, 500) }));
  const asker = TEAMS_MARKUP.person(p.asker);
  const body: CardElement[] = [textBlock(head, { weight: 'Bolder' }), facts.length ? { type: 'FactSet', facts } : textBlock('_No parameters._')];
  const text = `${p.runId ? 'Confirmed' : 'Confirm?'} ${p.workflow} v${p.version}: ${p.params.map((x) => `${x.name}=${x.value}`).join(', ')}`;
  if (p.runId) {
    body.push(textBlock(`${asker} confirmed; it started as ${escapeMarkdown(p.runId)}.`, { color: 'Good' }));
    return { text, body };
  }
  body.push(textBlock(`Nothing starts until ${asker} presses **Confirm**. **Edit** opens the form with these values.`, { isSubtle: true }));
  const data = { proposalId: p.id };
  return { text, body, actions: [execute('Confirm', VERBS.confirm, data, 'none', 'positive'), execute('Edit', VERBS.edit, data, 'none')] };
}

function draw(view: ChatView, mayDecide: MayDecide): Drawn {
  if (view.kind === 'run' || view.kind === 'run-status') return runCard(view.run, mayDecide);
  if (view.kind === 'approval') return approvalCopyCard(view.approval, view.copy, mayDecide);
  if (view.kind === 'reminder') return reminderCard(view.approval);
  if (view.kind === 'approvals') return approvalsCard(view.approvals, mayDecide);
  if (view.kind === 'workflows') return workflowsCard(view.workflows, view.intro);
  if (view.kind === 'runs') return runsCard(view.runs, view.title);
  if (view.kind === 'invalid-params') return formCard(view);
  if (view.kind === 'proposal') return proposalCard(view.proposal);
  if (view.kind === 'outdated') return { text: outdatedPlain(view.outdated), body: textLines(outdatedLines(view.outdated, TEAMS_MARKUP)) };
  return noticeCard(view.text);
}

/** What a card says on top for the clicker: a notice's text, or the answer to a click on an outdated copy. */
export type CardNote = string | OutdatedView;

function noteLines(note: CardNote): string[] {
  if (typeof note !== 'string') return outdatedLines(note, TEAMS_MARKUP).map((l) => truncate(l, LIMITS.textBlock));
  return truncate(note, 1000).split('\n').map(noticeMarkdown);
}

function envelope(d: Drawn, note?: CardNote): AdaptiveCard {
  const fallbackText = truncate(d.text, LIMITS.fallbackText);
  const top = note ? [{ type: 'Container', style: 'emphasis', items: textLines(noteLines(note), { weight: 'Bolder' }) }] : [];
  const card: AdaptiveCard = {
    type: 'AdaptiveCard',
    $schema: CARD_SCHEMA,
    version: '1.5',
    fallbackText,
    ...(d.refresh ? { refresh: d.refresh } : {}),
    body: [...top, ...d.body],
    ...(d.actions?.length ? { actions: d.actions } : {}),
    msteams: { width: 'Full' },
  };
  if (bytes(card) <= LIMITS.cardBytes) return card;
  // Not reached by the views' own limits; kept so that no view can ever produce a card Teams refuses.
  const body = [...top, textBlock(escapeMarkdown(truncate(d.text, 1000))), textBlock('This message is too large to show here in full.', { isSubtle: true })];
  return {
    type: 'AdaptiveCard',
    $schema: CARD_SCHEMA,
    version: '1.5',
    fallbackText,
    ...(d.refresh ? { refresh: d.refresh } : {}),
    body,
    ...(d.actions?.length ? { actions: d.actions } : {}),
    msteams: { width: 'Full' },
  };
}

/** The card everyone sees (posted and updated by the outbox). */
export function renderTeams(view: ChatView): Rendered {
  const card = envelope(draw(view, anyoneMayTry));
  return { text: card.fallbackText, body: { card } };
}

/** A stored rendering's card (the outbox keeps `body` opaque). */
export function cardOf(r: Rendered): AdaptiveCard {
  const card = (r.body as { card?: AdaptiveCard } | null)?.card;
  if (!card || card.type !== 'AdaptiveCard') throw new TollgateError('TG_INTERNAL', 'This rendering holds no Adaptive Card.');
  return card;
}

/**
 * The card one person sees: the invoke response after their click, and the answer to a `refresh`.
 * Approve/Reject only where they may still decide; Retry/Cancel as the run offers them; `note`
 * (with the notice marks `*bold*` and `` `code` ``) on top.
 */
export function renderForViewer(view: ChatView, viewer: Principal, note?: CardNote): AdaptiveCard {
  return envelope(draw(view, viewerMayDecide(viewer)), note);
}

/** Every `Action.Execute` in a card, including those inside show-cards and action sets, in order. */
export function executeActions(card: { body?: unknown; actions?: unknown }): ExecuteAction[] {
  const out: ExecuteAction[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (!v || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    if (o.type === 'Action.Execute') out.push(o as unknown as ExecuteAction);
    for (const x of Object.values(o)) walk(x);
  };
  walk({ body: card.body, actions: card.actions });
  return out;
}
