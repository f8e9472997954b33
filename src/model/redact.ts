/**
 * Redaction before anything is sent to a model (issue 8, item 2; DESIGN.md invariant 9: only the
 * minimum context leaves the machine).
 *
 * `redact` walks any JSON value and replaces, in every string (object keys are left alone), the
 * personal data and credentials it recognises with stable placeholders: `[[EMAIL_1]]`,
 * `[[PHONE_1]]`, `[[CARD_1]]`, `[[IBAN_1]]`, `[[SECRET_1]]`, and `[[<NAME>_1]]` for the patterns of
 * `model.redact` in the project configuration. The same original gets the same placeholder
 * within one call, so the model can still tell two people apart and refer back to them. The
 * placeholder → original map (the vault) stays in the runtime; `rehydrate` puts the originals
 * back into the model's answer. Values to withhold (a workflow's never-send fields) become
 * `[[WITHHELD]]` wherever they appear, are not in the vault, and so never come back.
 *
 * What counts, and why the near misses do not:
 * - e-mail addresses;
 * - secrets: API keys by their well-known prefixes (`sk-…`, `sk_live_…`, `xoxb-…`, `xapp-…`,
 *   `ghp_…`, `github_pat_…`, `AKIA…`, `AIza…`), JSON web tokens, and the token of `Bearer <token>`;
 * - IBANs only when their mod-97 checksum holds (a reference number of the same shape is left);
 * - card numbers (13–19 digits, spaces or dashes allowed) only when Luhn-valid;
 * - phone numbers: international (`+CC …`), national with a leading 0 (`030 1234567`), and
 *   North-American `(555) 123-4567` / `555-123-4567`, with 7 to 15 digits. A bare run of digits
 *   (`1200`, `52000`, an order number) is not a phone number, nor is a date (`01.02.2024`), nor
 *   the tail of a longer number (a mistyped IBAN); IBANs and card numbers are taken first.
 * Text that already is a placeholder is never matched again.
 */
import type { RedactPattern } from './types.ts';

/** Placeholder → original value, for one call: kept inside the runtime, never sent or recorded. */
export type Vault = ReadonlyMap<string, string>;

export interface Redactor {
  /** The value with placeholders, and the vault to re-hydrate the answer with. */
  redact(value: unknown, withhold?: readonly string[]): { value: unknown; vault: Vault };
  /** Puts the originals back into every string of `value` (the model's answer). */
  rehydrate<T>(value: T, vault: Vault): T;
}

export const WITHHELD = '[[WITHHELD]]';

/** A placeholder as written in text: `[[EMAIL_1]]`, `[[WITHHELD]]`. */
const PLACEHOLDER = /\[\[[A-Z][A-Z0-9_]*\]\]/g;
const NUMBERED_PLACEHOLDER = /\[\[[A-Z][A-Z0-9_]*_\d+\]\]/g;

/**
 * One kind of value to replace. `match` finds candidates; `accept` (when given) returns the
 * length of the longest valid prefix of a candidate, or 0 to leave it (checksums, digit counts).
 * `group` names the capture group holding the value when the match has context around it
 * (`Bearer ` stays, only the token is replaced).
 */
interface Kind {
  name: string;
  match: RegExp;
  accept?: (candidate: string) => number;
  group?: number;
}

const SECRET_PATTERNS = [
  /\bsk-(?:proj-|ant-|svcacct-)?[A-Za-z0-9_-]{16,}/, // OpenAI, Anthropic
  /\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}/, // Stripe
  /\bxox[bpaeors]-[A-Za-z0-9-]{10,}/, // Slack bot/user/app tokens
  /\bxapp-[A-Za-z0-9-]{10,}/, // Slack app-level tokens
  /\bgh[pousr]_[A-Za-z0-9]{20,}/, // GitHub
  /\bgithub_pat_[A-Za-z0-9_]{20,}/,
  /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/, // AWS access key ids
  /\bAIza[0-9A-Za-z_-]{35}/, // Google API keys
  /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/, // JSON web tokens
];

const digitsOf = (s: string) => s.replace(/\D/g, '');

export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return digits.length > 0 && sum % 10 === 0;
}

export function ibanValid(text: string): boolean {
  const iban = text.replace(/\s/g, '').toUpperCase();
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/.test(iban)) return false;
  const moved = iban.slice(4) + iban.slice(0, 4);
  let rest = 0;
  for (const ch of moved) {
    const v = ch >= 'A' ? String(ch.charCodeAt(0) - 55) : ch;
    for (const digit of v) rest = (rest * 10 + (digit.charCodeAt(0) - 48)) % 97;
  }
  return rest === 1;
}

/**
 * The longest prefix of `candidate` that ends at a group boundary (before a space or dash, or
 * at its end) and passes `valid`: a greedy match may have taken the next group of digits or
 * word along ("…1111 12", "DE89 … 00 AND").
 */
function longestValid(candidate: string, valid: (prefix: string) => boolean): number {
  for (let end = candidate.length; end > 0; end--) {
    const atBoundary = end === candidate.length || /[\s-]/.test(candidate[end]!);
    if (atBoundary && /[A-Za-z0-9]/.test(candidate[end - 1]!) && valid(candidate.slice(0, end))) return end;
  }
  return 0;
}

const DATE = /^\d{1,4}([./-])\d{1,2}\1\d{1,4}$/;

function phoneLength(candidate: string): number {
  const digits = digitsOf(candidate).length;
  return digits >= 7 && digits <= 15 && !DATE.test(candidate) ? candidate.length : 0;
}

const BUILT_IN: Kind[] = [
  { name: 'SECRET', match: new RegExp(SECRET_PATTERNS.map((r) => r.source).join('|'), 'g') },
  // Only the token: "Bearer [[SECRET_1]]" still tells the model what it was. A token has a digit
  // or is long: "bearer certificates" is prose.
  { name: 'SECRET', match: /\bBearer\s+((?=[A-Za-z\-._~+/]*\d)[A-Za-z0-9\-._~+/]{12,}=*|[A-Za-z\-._~+/]{24,}=*)/gi, group: 1 },
];

const AFTER_CONFIGURED: Kind[] = [
  { name: 'EMAIL', match: /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g },
  { name: 'IBAN', match: /\b[A-Za-z]{2}\d{2}(?:[ ]?[A-Za-z0-9]){11,34}/g, accept: (c) => longestValid(c, ibanValid) },
  // International: +CC, optional (area), groups of digits. Before cards: its digits may pass Luhn by chance.
  { name: 'PHONE', match: /(?<![\w+])\+\d{1,3}(?:[ .-]?\(\d{1,5}\))?(?:[ .-]?\d{1,8}){1,6}(?!\d)/g, accept: phoneLength },
  {
    name: 'CARD',
    match: /(?<![\d])\d(?:[ -]?\d){12,22}(?!\d)/g,
    accept: (c) =>
      longestValid(c, (p) => {
        const d = digitsOf(p);
        return d.length >= 13 && d.length <= 19 && luhnValid(d);
      }),
  },
  // National forms never start right after a group of digits: that is the tail of a longer
  // number (a mistyped IBAN or card number), not a phone number.
  // North American with separators: (555) 123-4567, 555-123-4567, 555.123.4567.
  { name: 'PHONE', match: /(?<![\d.,+-])(?<!\d[ -])(?:\(\d{3}\)[ .-]?|\b\d{3}[ .-])\d{3}[ .-]\d{4}(?![\d])/g, accept: phoneLength },
  // National with a trunk 0: 030 1234567, 0171-2345678, 01632 960983 (a date is refused by phoneLength).
  { name: 'PHONE', match: /(?<![\d.,+-])(?<!\d[ -])\b0\d{1,4}(?:[ /.-]?\d{2,8}){1,4}(?![\d])/g, accept: phoneLength },
];

function configuredKinds(patterns: readonly RedactPattern[]): Kind[] {
  return patterns.map((p) => ({ name: p.name, match: new RegExp(p.pattern, `${(p.flags ?? '').replace(/[gy]/g, '')}g`) }));
}

/** Applies `fn` to the parts of `text` that are not placeholders already. */
function outsidePlaceholders(text: string, fn: (part: string) => string): string {
  let out = '';
  let last = 0;
  for (const m of text.matchAll(PLACEHOLDER)) {
    out += fn(text.slice(last, m.index)) + m[0];
    last = m.index + m[0].length;
  }
  return out + fn(text.slice(last));
}

export function createRedactor(patterns: readonly RedactPattern[]): Redactor {
  const kinds = [...BUILT_IN, ...configuredKinds(patterns), ...AFTER_CONFIGURED];

  return {
    redact(value, withhold = []) {
      const vault = new Map<string, string>();
      const byOriginal = new Map<string, string>();
      const counters = new Map<string, number>();
      // Longest first, so a withheld value that contains another is withheld whole.
      const withheld = [...new Set(withhold.filter((w) => typeof w === 'string' && w.length > 0))].sort((a, b) => b.length - a.length);

      const placeholderFor = (name: string, original: string): string => {
        const key = `${name}\u0000${original}`;
        let p = byOriginal.get(key);
        if (!p) {
          const n = (counters.get(name) ?? 0) + 1;
          counters.set(name, n);
          p = `[[${name}_${n}]]`;
          byOriginal.set(key, p);
          vault.set(p, original);
        }
        return p;
      };

      const applyKind = (text: string, kind: Kind): string =>
        outsidePlaceholders(text, (part) => {
          kind.match.lastIndex = 0;
          return part.replace(kind.match, (...args: unknown[]) => {
            const whole = args[0] as string;
            if (kind.group !== undefined) {
              const inner = args[kind.group] as string | undefined;
              if (!inner) return whole;
              const at = whole.lastIndexOf(inner);
              return whole.slice(0, at) + placeholderFor(kind.name, inner) + whole.slice(at + inner.length);
            }
            const length = kind.accept ? kind.accept(whole) : whole.length;
            if (length <= 0) return whole;
            return placeholderFor(kind.name, whole.slice(0, length)) + whole.slice(length);
          });
        });

      const redactString = (s: string): string => {
        let text = s;
        for (const w of withheld) text = outsidePlaceholders(text, (part) => part.split(w).join(WITHHELD));
        for (const kind of kinds) text = applyKind(text, kind);
        return text;
      };

      const leaf = (v: unknown): unknown => {
        if (typeof v === 'string') return redactString(v);
        // A card number or a withheld value may come as a JSON number.
        if (typeof v === 'number' && Number.isInteger(v)) {
          const s = String(v);
          const r = redactString(s);
          return r === s ? v : r;
        }
        return v;
      };
      return { value: mapLeaves(value, leaf), vault };
    },

    rehydrate<T>(value: T, vault: Vault): T {
      if (vault.size === 0) return value;
      return mapLeaves(value, (v) => (typeof v === 'string' ? v.replace(NUMBERED_PLACEHOLDER, (p) => vault.get(p) ?? p) : v)) as T;
    },
  };
}

/** A copy of a JSON value with every leaf (not arrays, not objects, not keys) passed through `leaf`. */
function mapLeaves(v: unknown, leaf: (v: unknown) => unknown): unknown {
  if (Array.isArray(v)) return v.map((x) => mapLeaves(x, leaf));
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, inner] of Object.entries(v)) out[k] = mapLeaves(inner, leaf);
    return out;
  }
  return leaf(v);
}
