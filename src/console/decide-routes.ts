/**
 * Deciding in the console (issue 22, item 2), and the pages built around it: the pending list,
 * "My approvals" and "My runs" of the signed-in person, and their live streams.
 *
 * - Who may decide is the one eligibility rule, as in chat: the buttons are its answer on what
 *   the approval's view carries (approval-card.ts), and the decision itself goes through the chat
 *   layer's `submit(intent)` like a click (a `decide` intent with `via: 'console'`), where
 *   `decide` is the authority. So the console records nothing itself: a reject without a reason
 *   is refused by the core with the same sentence as every platform, a person the policy does not
 *   allow is refused by `decide`, and every chat copy of the approval is updated by the outbox
 *   from the decision's events, as after a click.
 * - Only a signed-in person (`viewer.principal`, auth.ts) decides; the console token alone reads.
 *   Forms are POSTs behind the guard's same-origin check.
 * - The lists update live (live.ts): redrawn when the newest event moved, sent when what they
 *   show changed.
 */
import { createHash, randomBytes } from 'node:crypto';
import type pg from 'pg';
import { listDecidedBy, listPendingApprovals } from '../approvals/store.ts';
import type { DecideKind } from '../approvals/types.ts';
import type { Intent, SubmitResult } from '../chat/intake.ts';
import { eligibilityOnView } from '../chat/viewer.ts';
import type { Principal } from '../common/principals.ts';
import { newestEventId } from '../db/queries/approvals.ts';
import { listRunsFiltered } from '../db/queries/run-views.ts';
import { toApprovalView, type ApprovalView } from '../views/approval-view.ts';
import { buildRunView } from '../views/run-view.ts';
import type { DecideOptions } from './approval-card.ts';
import { approvalsFragment, approvalsPage, type PageNotes } from './approvals-page.ts';
import type { ConsoleViewer } from './auth.ts';
import type { Html } from './html.ts';
import type { LiveTimelines } from './live.ts';
import { DECIDED_SHOWN, myApprovalsFragment, myApprovalsPage, signInFirstPage } from './my-approvals-page.ts';
import { myRunsPage } from './my-runs-page.ts';
import { nameApprovals, namedViewer, nameRuns } from './people.ts';
import { formBody, redirect, sendHtml, type ConsoleMount, type ConsoleRequest } from './routing.ts';

/** What the console needs of the chat layer: `ChatCore.submit`, where a decision goes like a click. */
export interface ConsoleChat {
  submit(intent: Intent): Promise<SubmitResult>;
  /** Keeps the name a person signed in under (ChatCore.rememberName). */
  rememberName?(principal: string, name: string | null, source: string): Promise<void>;
}

export interface DecideRoutes {
  pool: pg.Pool;
  live: LiveTimelines;
  /** The chat layer; without it (a console mounted alone) the decide buttons answer 503. */
  chat: ConsoleChat | undefined;
  pageSize: number;
  mount: ConsoleMount;
}

const PENDING = '/console/approvals';
const MINE = '/console/my/approvals';

/** Where a decision form may send the person back to: the two lists (never another site). */
function backTo(value: string | null | undefined): typeof PENDING | typeof MINE {
  return value === MINE ? MINE : PENDING;
}

function refusalStatus(kind: DecideKind | undefined): number {
  return kind === 'not_allowed' ? 403 : kind === 'not_found' ? 404 : 409;
}

const digest = (text: string) => createHash('sha256').update(text).digest('base64url').slice(0, 22);

/** May the person decide this approval now, one way or the other (the eligibility rule). */
const mayDecideNow = (a: ApprovalView, me: Principal) => eligibilityOnView(a, me, 'approve').may || eligibilityOnView(a, me, 'reject').may;

export function mountDecideRoutes(r: DecideRoutes): void {
  const { pool, live, chat, mount } = r;

  const pending = async () => nameApprovals(pool, (await listPendingApprovals(pool)).map(toApprovalView));
  const mine = async (me: Principal) => {
    const waiting = (await pending()).filter((a) => mayDecideNow(a, me));
    const decided = await nameApprovals(pool, (await listDecidedBy(pool, me, DECIDED_SHOWN)).map(toApprovalView));
    return { waiting, decided };
  };

  /** A list's fragment as the page draws it and the stream sends it: same state, same text, same version. */
  const fragment = async (back: string, viewer: ConsoleViewer, problem?: DecideOptions['problem']): Promise<Html> => {
    const decide: DecideOptions = { viewer: viewer.principal, back, csrf: viewer.csrf, ...(problem ? { problem } : {}) };
    if (back === MINE && viewer.principal) {
      const { waiting, decided } = await mine(viewer.principal);
      return myApprovalsFragment(waiting, decided, decide);
    }
    return approvalsFragment(await pending(), decide);
  };

  /** The page, with what was recorded or refused on top. */
  const show: Show = async (c, back, extra = {}) => {
    const viewer = await namedViewer(pool, c.viewer);
    if (back === MINE && !viewer.principal) return sendHtml(c.res, extra.status ?? 200, signInFirstPage(viewer, 'My approvals', 'my-approvals'));
    const version = digest((await fragment(back, viewer)).text); // what the stream compares with: drawn without a problem
    const nonce = randomBytes(16).toString('base64');
    const decide: DecideOptions = { viewer: viewer.principal, back, csrf: viewer.csrf, ...(extra.problem ? { problem: extra.problem } : {}) };
    const notes = { ...(extra.notice ? { notice: extra.notice } : {}), ...(extra.alert ? { alert: extra.alert } : {}) };
    const html =
      back === MINE && viewer.principal
        ? myApprovalsPage({ viewer, ...(await mine(viewer.principal)), decide, version, nonce, ...notes })
        : approvalsPage({ viewer, approvals: await pending(), decide, version, nonce, ...notes });
    sendHtml(c.res, extra.status ?? 200, html, nonce);
  };

  const decidedNotice = (url: URL): string | undefined => {
    const id = url.searchParams.get('decided');
    const as = url.searchParams.get('as');
    if (!id || (as !== 'approve' && as !== 'reject')) return undefined;
    return `Recorded: you ${as === 'approve' ? 'approved' : 'rejected'} ${id}. Every chat copy of it is brought up to date.`;
  };

  mount('GET', PENDING, (c) => show(c, PENDING, { notice: decidedNotice(c.url) }));
  mount('GET', MINE, (c) => show(c, MINE, { notice: decidedNotice(c.url) }));

  for (const back of [PENDING, MINE]) {
    mount('GET', `${back}/events`, (c) => {
      let mark: string | undefined;
      let text: string | undefined;
      let version: string | undefined;
      live.stream(c.req, c.res, {
        since: (c.req.headers['last-event-id'] as string | undefined) ?? c.url.searchParams.get('since') ?? undefined,
        event: 'approvals',
        version: async () => {
          const now = await newestEventId(pool); // read first: a change after it is drawn again, never missed
          if (now !== mark || text === undefined) {
            text = (await fragment(back, await namedViewer(pool, c.viewer))).text;
            version = digest(text);
            mark = now;
          }
          return version;
        },
        render: () => Promise.resolve(text),
      });
    });
  }

  mountDecisionForms(mount, chat, show);

  mount('GET', '/console/my/runs', async (c) => {
    const viewer = await namedViewer(pool, c.viewer);
    if (!viewer.principal) return sendHtml(c.res, 200, signInFirstPage(viewer, 'My runs', 'my-runs'));
    const before = (c.url.searchParams.get('before') ?? '').trim();
    const rows = await listRunsFiltered(pool, { requester: viewer.principal, before: before || undefined, limit: r.pageSize + 1 });
    const runs = await nameRuns(
      pool,
      rows.slice(0, r.pageSize).map((row) => buildRunView(row, [])),
    );
    sendHtml(c.res, 200, myRunsPage({ viewer, runs, more: rows.length > r.pageSize, before }));
  });
}

/** Show a list page again, with what was recorded or refused on top. */
type Show = (c: ConsoleRequest, back: string, extra?: PageNotes & { status?: number; problem?: DecideOptions['problem'] }) => Promise<void>;

/** `POST /console/approvals/:id/approve|reject`: a decision, through the chat layer like a click. */
function mountDecisionForms(mount: ConsoleMount, chat: ConsoleChat | undefined, show: Show): void {
  for (const decision of ['approve', 'reject'] as const) {
    mount('POST', `/console/approvals/:id/${decision}`, async (c) => {
      const approvalId = c.params.id as string;
      const form = await formBody(c.req);
      const back = backTo(form.get('back'));
      const comment = (form.get('comment') ?? '').trim();
      const actor = c.viewer.principal;
      if (!actor) {
        return show(c, back, { status: 403, alert: 'Sign in to decide: without a signed-in person the console is read-only. Nothing was recorded.' });
      }
      if (!chat) {
        return show(c, back, {
          status: 503,
          alert: 'This console was started without the chat layer, so it cannot decide; decide in chat or with `tollgate approve`.',
        });
      }
      const result = await chat.submit({
        kind: 'decide',
        approvalId,
        decision,
        ...(comment ? { comment } : {}),
        actor,
        explainAt: null, // the refusal is the page's
        via: 'console',
      });
      const reason = result.fieldErrors?.comment;
      if (reason) return show(c, back, { status: 400, alert: reason, problem: { approvalId, message: reason, comment } });
      const outcome = result.decided;
      if (outcome?.kind !== 'recorded') {
        return show(c, back, { status: refusalStatus(outcome?.kind), alert: outcome?.message ?? 'Nothing was recorded.' });
      }
      redirect(c.res, `${back}?decided=${encodeURIComponent(approvalId)}&as=${decision}`);
    });
  }
}
