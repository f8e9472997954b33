/**
 * The audit chain's key as a pool carries it. Each session of a pool created with a key gets the
 * key's pads at start-up (`pgOptions`), so the events trigger can link what it appends; the key
 * itself is loaded and checked by src/audit/key.ts, which owns it. It lives here, in the data
 * layer, because creating a pool needs it and the data layer imports nothing above itself.
 */

export interface AuditKey {
  /** HMAC of `data` under the key (what the trigger computes in SQL). */
  hmac(data: Buffer | string): Buffer;
  /** HMAC(K, 'tollgate-audit-key-id'): names the key without revealing it. */
  readonly fingerprint: Buffer;
  /** The pool's start-up `options`: `-c tollgate.audit_ikey=… -c tollgate.audit_okey=…`. */
  readonly pgOptions: string;
  /** Where it came from, for messages ('TOLLGATE_AUDIT_KEY' or the key file's path). */
  readonly source: string;
}

// The key each pool was created with, so code handed a pool (verify, the checkpoint task) finds it
// without every caller threading it through.
const poolKeys = new WeakMap<object, AuditKey>();

export function rememberPoolKey(pool: object, key: AuditKey): void {
  poolKeys.set(pool, key);
}

export function auditKeyOf(pool: object): AuditKey | undefined {
  return poolKeys.get(pool);
}
