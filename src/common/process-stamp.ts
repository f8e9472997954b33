/**
 * Is the process a row names gone? A worker heartbeat and a configuration holder name their host
 * and pid; a process on the same machine can often tell at once that the process is gone, instead
 * of waiting out the liveness window (WORKER_DEAD_AFTER_MS): the usual local-first case, one
 * machine and one data dir, restarted after a crash.
 *
 * The stamp (`thisProcessStamp`) pins a pid to one process: on Linux, the boot id, the pid
 * namespace and the process's start time (`/proc/<pid>/stat`, field 22, in clock ticks since
 * boot), as `<boot id>/<pid namespace>/<start>`. A row is gone here when it names this host and:
 * - with a stamp: the same boot and the same pid namespace as this process (so the pid means the
 *   same thing here), and either no process has that pid (ESRCH) or the one that has it started at
 *   another time (the pid was reused);
 * - without a stamp on either side (a system without /proc): no process has that pid.
 * Anything else (another host, another container with the same host name, a stamp this process
 * cannot check, a row stamped while this process has none) answers false: the caller keeps the
 * timeout. No false alarms: a live process is never declared gone.
 */
import fs from 'node:fs';
import os from 'node:os';

/** `<boot id>/<pid namespace>/<start time>` of process `pid` on Linux; null where it cannot be read. */
function stampOf(pid: number | 'self'): string | null {
  try {
    const boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const ns = fs.readlinkSync(`/proc/${pid}/ns/pid`);
    const start = startTime(pid);
    return boot && ns && start ? `${boot}/${ns}/${start}` : null;
  } catch {
    return null;
  }
}

/** Fields of /proc/<pid>/stat from field 3 (state) on (the command before them may hold spaces and parentheses). */
function statFields(pid: number | 'self'): string[] {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot. */
function startTime(pid: number | 'self'): string | null {
  return statFields(pid)[22 - 3] ?? null;
}

let mine: string | null | undefined;

/** This process's stamp (read once), or null where it cannot be made. */
export function thisProcessStamp(): string | null {
  if (mine === undefined) mine = stampOf('self');
  return mine;
}

/** True when no process has `pid` on this machine (ESRCH); false when one has, or when it cannot be told. */
function noSuchPid(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Whether the process a row names (`hostname`, `pid`, `stamp`) is certainly gone (see the module comment). */
export function isGoneHere(row: { hostname: string | null; pid: number | null; stamp: string | null }): boolean {
  const { hostname, pid, stamp } = row;
  if (hostname !== os.hostname() || pid === null || pid <= 0) return false;
  const here = thisProcessStamp();
  if (stamp === null || here === null) return stamp === null && here === null && pid !== process.pid && noSuchPid(pid);
  const [boot, ns, start] = stamp.split('/');
  const [myBoot, myNs] = here.split('/');
  if (boot !== myBoot || ns !== myNs || !start) return false;
  if (noSuchPid(pid)) return true;
  let fields: string[];
  try {
    fields = statFields(pid);
  } catch {
    return false; // it exists, and its start cannot be read: keep the timeout
  }
  // A zombie (killed, not yet reaped by its parent) still has its pid, and runs nothing.
  if (fields[0] === 'Z') return true;
  const now = fields[22 - 3];
  return now !== undefined && now !== start;
}
