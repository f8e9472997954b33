/**
 * One policy configuration per deployment. Every process reads its own TOLLGATE_CONFIG, and
 * groups, operators, workflow settings (thresholds, approver groups, quorum), tool settings
 * (allowlists) and retention decide what a run may do. Two processes with different files on one
 * database would decide the same run differently, depending on which one picked it up. So the
 * deployment's configuration is recorded in the database (`tollgate.deployment_config`, migration
 * 000013) and a process whose configuration differs from the one live processes run with refuses
 * to start, naming the settings that differ.
 *
 * What is compared: every setting of the project configuration, as a flat map from its path
 * (`workflows.purchase-order.approvalThreshold`; a list is one setting) to the sha256 of its value.
 * Only hashes are stored, never values (a webhook URL can be a credential). Settings in a workflow's
 * or tool's section whose name says they are secret (token, secret, password, authorization, credential, api key, headers) are
 * left out entirely, not even hashed: rotating a credential is not a policy change, and a process
 * with the new token must be able to start beside one with the old.
 *
 * The rule for a changed configuration (least surprising, no manual step): a process may start
 * when no *live* process runs with a different configuration. The first process to start after all
 * processes with the old one stopped (or went silent for the liveness window) adopts the new one,
 * and logs what changed. So "edit the file, restart every process" works, a rolling restart
 * converges once the last old process is gone (new ones are refused until then), and a stray
 * process with another file is refused while the deployment runs. One-shot CLI commands (mode
 * `none`: run, approve, cancel, …) are refused the same way but never adopt anything.
 *
 * Live processes (start, server, worker) are listed in `tollgate.deployment_config_holders`,
 * refreshed every third of the liveness window and removed on a clean stop.
 */
import { createHash } from 'node:crypto';
import os from 'node:os';
import type pg from 'pg';
import { canonicalJson } from '../approvals/hash.ts';
import {
  forgetSilentHolders,
  insertStoredConfig,
  listHolder,
  lockDeploymentConfig,
  readDeploymentDigest,
  readHoldersOfOtherConfigs,
  readStoredConfig,
  removeHolder,
  removeHolders,
  replaceStoredConfig,
  touchHolder,
  type ConfigHolder,
  type ConfigHolderRow,
} from '../db/queries/deployment-config.ts';
import type { Queryable } from '../db/queryable.ts';
import { withTransaction } from '../db/transaction.ts';
import { TollgateError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { isGoneHere, thisProcessStamp } from '../common/process-stamp.ts';
import type { ProjectConfig } from './project-config.ts';

/** Names of settings that hold credentials: left out of the comparison (see the module comment). */
const SECRET_KEY = /secret|token|password|passphrase|authori[sz]ation|credential|api[-_]?key|private[-_]?key|headers/i;

export interface ConfigDigest {
  digest: string;
  /** Setting path → sha256 of its value (canonical JSON). */
  paths: Record<string, string>;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** The policy settings of a project configuration, flattened to paths and hashed (secrets left out). */
export function configDigest(project: ProjectConfig): ConfigDigest {
  const paths: Record<string, string> = {};
  const walk = (value: unknown, path: string[]) => {
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      // Only settings inside a workflow's or tool's section can be credentials; a group or
      // workflow named "api-key-admins" is policy like any other.
      const inSection = (path[0] === 'tools' || path[0] === 'workflows') && path.length >= 2;
      const entries = Object.entries(value as Record<string, unknown>).filter(([k, v]) => v !== undefined && !(inSection && SECRET_KEY.test(k)));
      // An empty section is a setting of its own ("no groups"), so removing the last group shows.
      if (entries.length === 0 && path.length > 0) paths[path.join('.')] = sha256('{}');
      for (const [k, v] of entries) walk(v, [...path, k]);
      return;
    }
    paths[path.join('.')] = sha256(canonicalJson(value));
  };
  walk(project, []);
  return { digest: sha256(canonicalJson(paths)), paths };
}

/**
 * The live processes with another configuration. A process on this machine that is certainly
 * gone (killed: its pid is free, or taken by a later process; src/common/process-stamp.ts) is
 * forgotten now, so a restart after a crash may adopt a changed configuration at once instead of
 * after the liveness window.
 */
async function liveHoldersOfOtherConfigs(q: Queryable, digest: string, processId: string, log: Logger): Promise<ConfigHolderRow[]> {
  const others = await readHoldersOfOtherConfigs(q, digest, processId);
  const gone = others.filter((h) => isGoneHere({ hostname: h.hostname, pid: h.pid, stamp: h.process_stamp }));
  if (gone.length === 0) return others;
  await removeHolders(
    q,
    gone.map((h) => h.process_id),
  );
  log.info(
    { processes: gone.map((h) => `${h.mode} ${h.hostname ?? '?'}:${h.pid ?? '?'} (${h.process_id})`) },
    'forgot processes of this machine that are gone',
  );
  return others.filter((h) => !gone.includes(h));
}

/** The setting paths whose values differ between two digests, sorted. */
export function differingPaths(a: Record<string, string>, b: Record<string, string>): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => a[k] !== b[k]).sort();
}

export interface HoldOptions {
  pool: pg.Pool;
  project: ProjectConfig;
  log: Logger;
  /** `none` (one-shot CLI commands) checks only: it neither adopts nor is listed as live. */
  mode: 'all' | 'server' | 'worker' | 'none';
  /** A process not seen for this long is gone (default 8 s, WORKER_DEAD_AFTER_MS's default, like a worker's heartbeat). */
  liveForMs?: number;
  processId?: string;
}

export interface ConfigHold {
  readonly digest: string;
  /** Stops refreshing and removes this process from the live list. */
  stop(): Promise<void>;
}

/**
 * Checks this process's configuration against the deployment's (see the module comment) and, for
 * long-running modes, records this process as live with it. Throws TG_CONFIG_CONFLICT naming the
 * differing settings when a live process runs with another configuration.
 */
export async function holdDeploymentConfig(o: HoldOptions): Promise<ConfigHold> {
  const mine = configDigest(o.project);
  const liveForMs = o.liveForMs ?? 8000;
  const processId = o.processId ?? `${os.hostname()}-${process.pid}-${Math.random().toString(16).slice(2, 10)}`;
  const me = `${o.mode} ${os.hostname()}:${process.pid} (${processId})`;
  const log = o.log.child({ component: 'config-digest' });

  const holder: ConfigHolder = { processId, digest: mine.digest, mode: o.mode, hostname: os.hostname(), pid: process.pid, stamp: thisProcessStamp() };

  await withTransaction(o.pool, async (q) => {
    await lockDeploymentConfig(q);
    await forgetSilentHolders(q, liveForMs);
    const stored = await readStoredConfig(q);
    const others = await liveHoldersOfOtherConfigs(q, mine.digest, processId, log);
    if (others.length > 0) {
      // The live configuration is the stored one (the live processes adopted or matched it).
      const theirs = stored?.summary.paths ?? {};
      const paths = differingPaths(mine.paths, theirs);
      const who = others
        .slice(0, 3)
        .map((p) => `${p.mode} on ${p.hostname ?? '?'}:${p.pid ?? '?'}`)
        .join(', ');
      throw new TollgateError(
        'TG_CONFIG_CONFLICT',
        `This process's project configuration (TOLLGATE_CONFIG) differs from the one ${others.length} live process(es) of this deployment run with (${who}${others.length > 3 ? ', …' : ''}), ` +
          `at: ${paths.slice(0, 10).join(', ')}${paths.length > 10 ? `, and ${paths.length - 10} more` : ''}. ` +
          'Give every process the same configuration; to change it, stop every process and start them with the new one (the first to start adopts it).',
        { differing: paths, live: others.map((p) => p.process_id) },
      );
    }
    if (o.mode === 'none') return;
    if (!stored) {
      await insertStoredConfig(q, mine.digest, { paths: mine.paths }, me);
      log.info({ digest: mine.digest }, 'recorded the deployment configuration (first process)');
    } else if (stored.digest !== mine.digest) {
      const paths = differingPaths(mine.paths, stored.summary.paths ?? {});
      await replaceStoredConfig(q, mine.digest, { paths: mine.paths }, me);
      log.warn(
        { digest: mine.digest, previous: stored.digest, previousSetBy: stored.set_by, changed: paths },
        `adopted a new deployment configuration; changed: ${paths.join(', ')}`,
      );
    }
    await listHolder(q, holder);
  });

  if (o.mode === 'none') return { digest: mine.digest, stop: async () => {} };

  // Stay listed as live. A process that was silent longer than the window (and so may have been
  // outvoted by a new configuration meanwhile) says so loudly instead of deciding silently.
  let stopped = false;
  const refresh = async () => {
    if (stopped) return;
    await touchHolder(o.pool, holder);
    const deployment = await readDeploymentDigest(o.pool);
    if (deployment && deployment.digest !== mine.digest) {
      log.error(
        { digest: mine.digest, deployment: deployment.digest, setBy: deployment.set_by },
        "this process runs with a configuration that is no longer the deployment's; restart it with the current TOLLGATE_CONFIG",
      );
    }
  };
  let inflight: Promise<void> = Promise.resolve();
  const timer = setInterval(
    () => {
      inflight = refresh().catch((e: unknown) => log.warn({ err: (e as Error).message }, 'deployment configuration refresh failed; retrying on the next one'));
    },
    Math.max(100, Math.floor(liveForMs / 3)),
  );
  timer.unref();
  return {
    digest: mine.digest,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await inflight; // a refresh under way must not list this process again after it left
      await removeHolder(o.pool, processId).catch(() => {});
    },
  };
}
