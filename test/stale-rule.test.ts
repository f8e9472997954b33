/**
 * Stale buttons, the pure parts: when a click on an outdated copy no longer holds (the rule of
 * src/chat/intake/stale.ts), how a button carries the revision (src/chat/button-value.ts), and
 * the answer as Slack and Teams draw it. End to end: test/stale-buttons.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { renderForViewer, renderTeams } from '../bots/teams/cards.ts';
import { renderSlack } from '../bots/slack/render.ts';
import { buttonValue, readButtonValue, readRevision } from '../src/chat/button-value.ts';
import { decisionOutdated, runActionOutdated } from '../src/chat/intake/stale.ts';
import { buildOutdatedView, describeChange, MAX_CHANGES } from '../src/views/outdated-view.ts';
import type { Principal } from '../src/common/principals.ts';
import { parse } from './helpers/adaptive-cards.ts';

const at = new Date('2026-12-07T10:02:00Z');
const ev = (type: string, payload: Record<string, unknown> = {}, actor: unknown = null) => ({ seq: 1, type, step_idx: null, actor, payload, created_at: at });
const ALICE: Principal = { platform: 'slack', tenant: 'T1', user: 'U1' };

describe('the rule', () => {
  const failed = { status: 'failed' as const, cancel_requested_at: null };
  it('Retry holds on a failed run nobody touched since; the failure the copy shows does not count', () => {
    expect(runActionOutdated('on-failed', failed, [])).toBe(false);
    expect(runActionOutdated('on-failed', failed, [ev('step.failed'), ev('run.failed')])).toBe(false);
  });
  it('Retry is outdated once the run was retried (even if it failed again), or is no longer failed', () => {
    expect(runActionOutdated('on-failed', failed, [ev('run.retried'), ev('step.started'), ev('step.failed'), ev('run.failed')])).toBe(true);
    expect(runActionOutdated('on-failed', { status: 'running', cancel_requested_at: null }, [])).toBe(true);
    expect(runActionOutdated('on-failed', { status: 'dead_letter', cancel_requested_at: null }, [])).toBe(false);
  });
  it('Cancel holds through plain progress, not once the run ended, was cancelled, or passed a gate', () => {
    const running = { status: 'running' as const, cancel_requested_at: null };
    expect(runActionOutdated('stop', running, [ev('step.started'), ev('step.succeeded'), ev('approval.decided')])).toBe(false);
    expect(runActionOutdated('stop', running, [ev('approval.approved')])).toBe(true);
    expect(runActionOutdated('stop', running, [ev('run.retried')])).toBe(true);
    expect(runActionOutdated('stop', { status: 'running', cancel_requested_at: at }, [])).toBe(true);
    expect(runActionOutdated('stop', { status: 'succeeded', cancel_requested_at: null }, [])).toBe(true);
  });
  it('Approve holds while only the tally changed; not after an escalation of that approval, a resolution, the deadline or the run’s end', () => {
    const pending = { id: 'apr_1', status: 'pending', runEnded: false, deadlinePassed: false };
    expect(decisionOutdated(pending, [ev('approval.decided', { approvalId: 'apr_1', decision: 'approve' })])).toBe(false);
    expect(decisionOutdated(pending, [ev('approval.escalated', { approvalId: 'apr_2' })])).toBe(false);
    expect(decisionOutdated(pending, [ev('approval.escalated', { approvalId: 'apr_1' })])).toBe(true);
    expect(decisionOutdated({ ...pending, status: 'approved' }, [])).toBe(true);
    expect(decisionOutdated({ ...pending, deadlinePassed: true }, [])).toBe(true);
    expect(decisionOutdated({ ...pending, runEnded: true }, [])).toBe(true);
  });
});

describe('the revision on a button', () => {
  it('is `<id>@<revision>`; a value without one (posted before versions) is the id alone', () => {
    expect(buttonValue('run_abc', 42)).toBe('run_abc@42');
    expect(buttonValue('run_abc', undefined)).toBe('run_abc');
    expect(readButtonValue('run_abc@42')).toEqual({ id: 'run_abc', revision: 42 });
    expect(readButtonValue('run_abc')).toEqual({ id: 'run_abc' });
    expect(readButtonValue('run_abc@x')).toEqual({ id: 'run_abc@x' });
    expect(readButtonValue(undefined)).toEqual({ id: '' });
    expect(readRevision('7')).toBe(7);
    expect(readRevision(-1)).toBeUndefined();
  });
});

describe('the answer', () => {
  const since = [ev('run.retried', {}, ALICE), ev('step.started', { step: 'third' }), ev('step.failed', { step: 'third' }), ev('run.failed')];
  const view = buildOutdatedView({ runId: 'run_1', since, now: 'failed at step third' });
  it('names what happened since, by whom, from the journal; bookkeeping left out', () => {
    expect(view.changes.map((c) => c.what)).toEqual(['Retried', 'Step third failed']);
    expect(view.changes[0]?.by).toEqual(ALICE);
    expect(describeChange(ev('step.started'))).toBeNull();
    const many = buildOutdatedView({ runId: 'run_1', since: Array.from({ length: 8 }, () => ev('run.retried')), now: 'x' });
    expect(many.changes).toHaveLength(MAX_CHANGES);
    expect(many.earlier).toBe(8 - MAX_CHANGES);
  });
  it('Slack: a mention and a date of the reader’s time zone; Teams: a valid card, also on top of the redrawn card', () => {
    const slack = renderSlack({ kind: 'outdated', outdated: view });
    expect(JSON.stringify(slack.blocks)).toContain('Retried by <@U1> <!date^');
    expect(slack.text).toContain('This message was out of date, so nothing was done.');
    const teams = renderTeams({ kind: 'outdated', outdated: view });
    expect(JSON.stringify(teams.body)).toContain('Now: failed at step third');
    const card = renderForViewer({ kind: 'notice', text: 'the card' }, ALICE, view);
    expect(parse(card).issues).toEqual([]);
    expect(JSON.stringify(card)).toContain('This message was out of date');
  });
});
