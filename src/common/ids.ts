/**
 * Ids a person reads are prefixed by kind (`run_…`, `apr_…`), so a pasted id explains itself.
 * The body is time-ordered (48-bit milliseconds, then 80 random bits, Crockford base32), so ids
 * sort by creation and index well.
 */
import { randomFillSync } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

export type IdKind = 'run' | 'apr' | 'evt' | 'po' | 'msg' | 'ctc' | 'prop' | 'req' | 'dlg' | 'ses';

/**
 * Random bytes drawn from the CSPRNG 4 KiB at a time and handed out 10 at a time, each byte used
 * once: one `randomBytes(10)` per id cost a system call and a buffer each (a burst of commands
 * makes a few ids per command). The same idea as Node's own cache behind `crypto.randomUUID`.
 */
const POOL = Buffer.alloc(4096);
let poolAt = POOL.length;
function random10(): Buffer {
  if (poolAt + 10 > POOL.length) {
    randomFillSync(POOL);
    poolAt = 0;
  }
  poolAt += 10;
  return POOL.subarray(poolAt - 10, poolAt);
}

export function newId(kind: IdKind, now: number = Date.now()): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = random10();
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
