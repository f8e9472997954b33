/**
 * The deployment's configuration (migration 000013): `tollgate.deployment_config`, the one row
 * naming the digest of the project configuration the deployment runs with, and
 * `tollgate.deployment_config_holders`, the live processes and the digest each runs with.
 * src/config/digest.ts decides what to do with them; the evidence bundle names the digest.
 */
import type { Queryable } from '../queryable.ts';

// Serialises start-ups, so two processes with different files starting together cannot both pass.
const LOCK_KEY = "hashtext('tollgate.deployment_config')";

/** The setting paths' hashes the digest was made of (`summary.paths`). */
export interface ConfigSummary {
  paths?: Record<string, string>;
}

export interface StoredConfigRow {
  digest: string;
  summary: ConfigSummary;
  set_by: string;
}

export interface ConfigHolderRow {
  process_id: string;
  mode: string;
  hostname: string | null;
  pid: number | null;
  digest: string;
  /** Pins the pid to one process (src/common/process-stamp.ts); null for other systems and older versions. */
  process_stamp: string | null;
}

/** A live process, as it lists itself. */
export interface ConfigHolder {
  processId: string;
  digest: string;
  mode: string;
  hostname: string;
  pid: number;
  stamp: string | null;
}

/** Takes the start-up lock until the caller's transaction ends. */
export async function lockDeploymentConfig(q: Queryable): Promise<void> {
  await q.query(`SELECT pg_advisory_xact_lock(${LOCK_KEY})`);
}

/** Forgets the processes not seen for `liveForMs`. */
export async function forgetSilentHolders(q: Queryable, liveForMs: number): Promise<void> {
  await q.query(`DELETE FROM tollgate.deployment_config_holders WHERE seen_at < now() - make_interval(secs => $1::float / 1000)`, [liveForMs]);
}

export async function readStoredConfig(q: Queryable): Promise<StoredConfigRow | undefined> {
  return (await q.query<StoredConfigRow>('SELECT digest, summary, set_by FROM tollgate.deployment_config')).rows[0];
}

/** The live processes, other than `processId`, that run with another digest than `digest`, oldest first. */
export async function readHoldersOfOtherConfigs(q: Queryable, digest: string, processId: string): Promise<ConfigHolderRow[]> {
  const { rows } = await q.query<ConfigHolderRow>(
    'SELECT process_id, mode, hostname, pid, digest, process_stamp FROM tollgate.deployment_config_holders WHERE digest <> $1 AND process_id <> $2 ORDER BY started_at',
    [digest, processId],
  );
  return rows;
}

export async function insertStoredConfig(q: Queryable, digest: string, summary: ConfigSummary, setBy: string): Promise<void> {
  await q.query('INSERT INTO tollgate.deployment_config (digest, summary, set_by) VALUES ($1, $2, $3)', [digest, summary, setBy]);
}

export async function replaceStoredConfig(q: Queryable, digest: string, summary: ConfigSummary, setBy: string): Promise<void> {
  await q.query('UPDATE tollgate.deployment_config SET digest = $1, summary = $2, set_by = $3, set_at = now()', [digest, summary, setBy]);
}

/** Lists the process as live with its digest (replacing the digest it was listed with). */
export async function listHolder(q: Queryable, h: ConfigHolder): Promise<void> {
  await q.query(
    `INSERT INTO tollgate.deployment_config_holders (process_id, digest, mode, hostname, pid, process_stamp) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (process_id) DO UPDATE SET digest = EXCLUDED.digest, seen_at = now()`,
    [h.processId, h.digest, h.mode, h.hostname, h.pid, h.stamp],
  );
}

/** Keeps the process listed as live (lists it again, with its digest, if it was forgotten). */
export async function touchHolder(q: Queryable, h: ConfigHolder): Promise<void> {
  await q.query(
    `INSERT INTO tollgate.deployment_config_holders (process_id, digest, mode, hostname, pid, process_stamp) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (process_id) DO UPDATE SET seen_at = now()`,
    [h.processId, h.digest, h.mode, h.hostname, h.pid, h.stamp],
  );
}

export async function removeHolder(q: Queryable, processId: string): Promise<void> {
  await q.query('DELETE FROM tollgate.deployment_config_holders WHERE process_id = $1', [processId]);
}

/** Forgets processes known to be gone (src/common/process-stamp.ts), however recently they were seen. */
export async function removeHolders(q: Queryable, processIds: readonly string[]): Promise<void> {
  await q.query('DELETE FROM tollgate.deployment_config_holders WHERE process_id = ANY($1::text[])', [processIds]);
}

/** The deployment's digest and who set it. */
export async function readDeploymentDigest(q: Queryable): Promise<{ digest: string; set_by: string } | undefined> {
  return (await q.query<{ digest: string; set_by: string }>('SELECT digest, set_by FROM tollgate.deployment_config')).rows[0];
}

/** The deployment's digest and since when (named by the evidence bundle). */
export async function readDeploymentConfig(q: Queryable): Promise<{ digest: string; set_at: Date } | undefined> {
  return (await q.query<{ digest: string; set_at: Date }>('SELECT digest, set_at FROM tollgate.deployment_config')).rows[0];
}
