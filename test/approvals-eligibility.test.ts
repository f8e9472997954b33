/**
 * The one eligibility rule (src/approvals/eligibility.ts): may P decide A now, and if not, why.
 * Pure: the approval's facts in, an answer with a code and a sentence out.
 */
import { describe, expect, it } from 'vitest';
import { eligibility, mayDecide, policyEligibility, type EligibilityFacts } from '../src/approvals/eligibility.ts';

const REQ = 'teams:t1:req';
const AP = 'teams:t1:ap';
const facts = (over: Partial<EligibilityFacts> = {}): EligibilityFacts => ({
  status: 'pending',
  eligible: [REQ, AP],
  approvers: 'group release (2 people)',
  requester: REQ,
  allowSelfApproval: false,
  decisions: [],
  ...over,
});

describe('eligibility', () => {
  it('an approver who has not decided may; the requester may not approve their own request unless the policy allows it, but may reject it', () => {
    expect(eligibility(facts(), 'apr_1', AP)).toEqual({ may: true });
    expect(eligibility(facts(), 'apr_1', REQ)).toMatchObject({ may: false, reason: 'own_request' });
    expect(eligibility(facts(), 'apr_1', REQ, 'reject')).toEqual({ may: true });
    expect(eligibility(facts({ allowSelfApproval: true }), 'apr_1', REQ)).toEqual({ may: true });
    expect(mayDecide(facts(), REQ)).toBe(false);
  });

  it('says why not: unknown, decided already, resolved, not an approver', () => {
    expect(eligibility(undefined, 'apr_9', AP)).toEqual({ may: false, reason: 'not_found', message: 'No approval with id apr_9.' });
    expect(eligibility(facts({ decisions: [{ principal: AP }] }), 'apr_1', AP)).toMatchObject({
      reason: 'already_recorded',
      message: 'Your decision on apr_1 was already recorded; nothing changed.',
    });
    expect(eligibility(facts({ status: 'approved' }), 'apr_1', AP)).toMatchObject({
      reason: 'not_pending',
      message: 'apr_1 was already approved; your decision is not needed.',
    });
    expect(eligibility(facts(), 'apr_1', 'teams:t1:eve')).toMatchObject({
      reason: 'not_an_approver',
      message: 'Not allowed: teams:t1:eve is not one of the approvers (group release (2 people)); nothing changed.',
    });
  });

  it("the policy half names another tenant's principal as such", () => {
    const p = { approvers: [REQ, AP], groups: ['release'], named: [], allowSelfApproval: false };
    expect(policyEligibility(p, 'teams:t2:ap', REQ, 'approve')).toMatchObject({
      reason: 'not_an_approver',
      message: expect.stringContaining('no approver belongs to teams:t2'),
    });
    expect(policyEligibility(p, REQ, REQ, 'approve')).toMatchObject({
      reason: 'own_request',
      message: expect.stringContaining('does not let requesters approve their own requests'),
    });
    expect(policyEligibility(p, AP, REQ, 'approve')).toEqual({ may: true });
  });
});
