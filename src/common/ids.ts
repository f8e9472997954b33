/**
 * Ids a person reads are prefixed by kind (`run_…`, `apr_…`), so a pasted id explains itself.
 * The body is time-ordered (48-bit milliseconds, then 80 random bits, Crockford base32), so ids
 * sort by creation and index well.
 */
import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

export type IdKind = 'run' | 'apr' | 'evt' | 'po' | 'msg' | 'ctc' | 'prop' | 'req' | 'dlg' | 'ses';

export function newId(kind: IdKind, now: number = Date.now()): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = randomBytes(10);
  let rand = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      rand += ALPHABET[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return `${kind}_${time}${rand}`;
}
