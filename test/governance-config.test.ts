import { describe, expect, it } from 'vitest';
import { paramsHash, canonicalJson } from '../src/approvals/hash.ts';
import { parseProjectConfig } from '../src/config/project-config.ts';
import { builtinWorkflows } from '../src/workflows/index.ts';
import { hostAllowed } from '../src/tools/http-request.ts';

describe('parameters hash', () => {
  it('is the same for the same parameters in any key order, and differs when any value changes', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, 2], c: 'x' } })).toBe('{"a":{"c":"x","d":[1,2]},"b":1}');
    expect(paramsHash({ vendor: 'Acme', amount: 5000 })).toBe(paramsHash({ amount: 5000, vendor: 'Acme' }));
    expect(paramsHash({ vendor: 'Acme', amount: 5000 })).not.toBe(paramsHash({ vendor: 'Acme', amount: 5001 }));
    expect(paramsHash({ amount: '5000' })).not.toBe(paramsHash({ amount: 5000 }));
  });
});

describe('project configuration', () => {
  it('accepts Slack and Teams principals in groups and refuses a malformed one, naming where it is', () => {
    const ok = parseProjectConfig({ groups: { finance: ['slack:T1:U1', 'teams:tenant-1:0000-aad'] } });
    expect(ok.groups.finance).toHaveLength(2);
    expect(() => parseProjectConfig({ groups: { finance: ['U1'] } })).toThrow(/groups\.finance\.0: "U1" is not a principal/);
  });

  it('checks built-in workflow settings at start-up, naming the field', () => {
    expect(() => builtinWorkflows(parseProjectConfig({ workflows: { 'purchase-order': { approvalThreshold: 'lots' } } }))).toThrow(
      /workflows\.purchase-order\.approvalThreshold/,
    );
    expect(() => builtinWorkflows(parseProjectConfig({ workflows: { deploy: { webhookUrl: 'not a url' } } }))).toThrow(/workflows\.deploy\.webhookUrl/);
    expect(() => builtinWorkflows(parseProjectConfig({ workflows: { 'purchase-order': { approvalTimeout: 'tomorrow' } } }))).toThrow(
      /workflows\.purchase-order\.approvalTimeout: a duration such as/,
    );
  });

  it('matches http.request allowlist entries by host, host:port or *.domain only', () => {
    const allowed = ['api.example.com', '127.0.0.1:8080', '*.internal.example.com'];
    expect(hostAllowed(new URL('https://api.example.com/x'), allowed)).toBe(true);
    expect(hostAllowed(new URL('http://127.0.0.1:8080/'), allowed)).toBe(true);
    expect(hostAllowed(new URL('http://127.0.0.1:9090/'), allowed)).toBe(false);
    expect(hostAllowed(new URL('https://a.internal.example.com/'), allowed)).toBe(true);
    expect(hostAllowed(new URL('https://internal.example.com.evil.io/'), allowed)).toBe(false);
    expect(hostAllowed(new URL('https://api.example.com.evil.io/'), allowed)).toBe(false);
  });
});
