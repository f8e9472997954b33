/**
 * The audit key: the secret every event's chain link is keyed with (HMAC-SHA256), kept OUTSIDE
 * the database so that whoever can write the tables cannot recompute the chain.
 *
 * Where it comes from: `TOLLGATE_AUDIT_KEY` (>= 32 bytes, hex or base64), or when unset the file
 * `<TOLLGATE_DATA_DIR>/audit.key` (mode 0600), generated on first use and read thereafter. Every
 * process writing to one database must have the same key; the database keeps its fingerprint
 * (`tollgate.audit_key`), and a process with another key refuses to start.
 *
 * How it reaches the database: PostgreSQL core has sha256() but no hmac(), so the insert trigger
 * computes HMAC(K, m) = sha256((K ^ opad) || sha256((K ^ ipad) || m)) from the two pre-derived
 * 64-byte pads. Node hands them to each pooled session as custom settings in the connection's
 * start-up `options` (`tollgate.audit_ikey`, `tollgate.audit_okey`): they appear in no query
 * text, no table and no log line, and a session without them cannot append (the trigger refuses).
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { TollgateError } from '../common/errors.ts';
import { readAuditKeyFingerprint } from '../db/queries/audit.ts';
import type { Queryable } from '../db/queryable.ts';
import type { AuditKey } from '../db/pool-key.ts';

export const MIN_KEY_BYTES = 32;
const BLOCK = 64; // SHA-256's block size
export const FINGERPRINT_LABEL = 'tollgate-audit-key-id';
export const KEY_FILE = 'audit.key';

/** Decodes a key written as hex or base64; undefined when it is neither or too short. */
export function decodeAuditKey(text: string): Buffer | undefined {
  const s = text.trim();
  let key: Buffer | undefined;
  if (/^(?:[0-9a-fA-F]{2})+$/.test(s)) key = Buffer.from(s, 'hex');
  else if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(s)) key = Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  return key && key.length >= MIN_KEY_BYTES ? key : undefined;
}

// Each key's bytes, off the object (so logging an AuditKey cannot print them).
const keyBytes = new WeakMap<AuditKey, Buffer>();

export function auditKey(key: Buffer, source: string): AuditKey {
  // HMAC's key schedule (RFC 2104): a key longer than a block is hashed first, then zero-padded.
  const k = Buffer.alloc(BLOCK);
  (key.length > BLOCK ? createHash('sha256').update(key).digest() : key).copy(k);
  const ipad = Buffer.from(k.map((b) => b ^ 0x36));
  const opad = Buffer.from(k.map((b) => b ^ 0x5c));
  const hmac = (data: Buffer | string) => createHmac('sha256', key).update(data).digest();
  const made: AuditKey = {
    hmac,
    fingerprint: hmac(FINGERPRINT_LABEL),
    pgOptions: `-c tollgate.audit_ikey=${ipad.toString('hex')} -c tollgate.audit_okey=${opad.toString('hex')}`,
    source,
  };
  keyBytes.set(made, Buffer.from(key));
  return made;
}

/** The key's bytes, to hand the key in memory to a worker thread of this process (src/worker/thread.ts). Never log them. */
export function auditKeyBytes(key: AuditKey): Buffer | undefined {
  return keyBytes.get(key);
}

/**
 * The key of this process: `TOLLGATE_AUDIT_KEY` (already validated by config.ts, as hex), or the
 * data dir's key file, created once (exclusively, so two processes starting together end up with
 * the same key) with mode 0600.
 */
export async function loadAuditKey(opts: { keyHex: string | undefined; dataDir: string }): Promise<AuditKey> {
  if (opts.keyHex) return auditKey(Buffer.from(opts.keyHex, 'hex'), 'TOLLGATE_AUDIT_KEY');
  const file = path.join(opts.dataDir, KEY_FILE);
  const existing = await readKeyFile(file);
  if (existing) return auditKey(existing, file);
  await fs.mkdir(opts.dataDir, { recursive: true });
  // Write aside, then link: link() fails if the file appeared meanwhile, and a reader never sees
  // a half-written key.
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await fs.writeFile(tmp, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  try {
    await fs.link(tmp, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  } finally {
    await fs.unlink(tmp).catch(() => {});
  }
  const created = await readKeyFile(file);
  if (!created) throw invalidFile(file);
  return auditKey(created, file);
}

/**
 * The audit key for an offline check (`audit verify --bundle`): TOLLGATE_AUDIT_KEY, else the data
 * dir's key file if it exists. Unlike loadAuditKey it never creates one: a new key would only make
 * every link fail.
 */
export async function offlineAuditKey(opts: { keyHex: string | undefined; dataDir: string }): Promise<AuditKey | undefined> {
  if (opts.keyHex) return auditKey(Buffer.from(opts.keyHex, 'hex'), 'TOLLGATE_AUDIT_KEY');
  const file = path.join(opts.dataDir, KEY_FILE);
  const key = await readKeyFile(file);
  return key && auditKey(key, file);
}

async function readKeyFile(file: string): Promise<Buffer | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const key = decodeAuditKey(text);
  if (!key) throw invalidFile(file);
  return key;
}

function invalidFile(file: string): TollgateError {
  return new TollgateError(
    'TG_AUDIT_KEY_INVALID',
    `The audit key file ${file} does not hold a key of at least ${MIN_KEY_BYTES} bytes in hex or base64. ` +
      'Restore it from your backup (events chained with it verify only with it), or set TOLLGATE_AUDIT_KEY.',
    { file },
  );
}

/** Synchronous variant for test fixtures and child processes that get the key through the environment. */
export function auditKeyFromEnv(value: string | undefined): AuditKey | undefined {
  if (!value) return undefined;
  const key = decodeAuditKey(value);
  if (!key) throw new TollgateError('TG_AUDIT_KEY_INVALID', `TOLLGATE_AUDIT_KEY must be at least ${MIN_KEY_BYTES} bytes written in hex or base64.`);
  return auditKey(key, 'TOLLGATE_AUDIT_KEY');
}

/**
 * Start-up check: the database keeps the fingerprint of the key its chain is keyed with (set by
 * migration 000011). A process with another key would write links that never verify, so it
 * refuses to start and says what to do.
 */
export async function checkAuditKeyFingerprint(q: Queryable, key: AuditKey): Promise<void> {
  const stored = await readAuditKeyFingerprint(q);
  if (!stored || stored.equals(key.fingerprint)) return;
  throw new TollgateError(
    'TG_AUDIT_KEY_MISMATCH',
    `This process's audit key (from ${key.source}, fingerprint ${key.fingerprint.toString('hex').slice(0, 16)}) is not the key ` +
      `this database's audit chain is keyed with (fingerprint ${stored.toString('hex').slice(0, 16)}). Every process must use the same key: ` +
      'set TOLLGATE_AUDIT_KEY to it on every process (or copy the audit.key file of the first one into this data dir). ' +
      'Events written with another key could never be verified.',
    { expected: stored.toString('hex').slice(0, 16), actual: key.fingerprint.toString('hex').slice(0, 16) },
  );
}
