/**
 * Holds every registered version of every workflow. New runs start on the newest version; a run
 * always continues on the version it started on, so old versions stay registered until their
 * runs finish.
 */
import { TollgateError } from '../common/errors.ts';
import type { WorkflowDefinition } from './workflow.ts';

export class WorkflowRegistry {
  readonly #byName = new Map<string, Map<number, WorkflowDefinition>>();
  /** `keys()`, kept between registrations: every advance asks for it. */
  #keys: string[] | undefined;

  register(...defs: WorkflowDefinition[]): this {
    for (const def of defs) {
      let versions = this.#byName.get(def.name);
      if (!versions) this.#byName.set(def.name, (versions = new Map<number, WorkflowDefinition>()));
      const existing = versions.get(def.version);
      if (existing && existing !== def) {
        throw new TollgateError(
          'TG_WORKFLOW_DUPLICATE',
          `Workflow "${def.name}" version ${def.version} is registered twice. Give the changed code a new version number.`,
          { workflow: def.name, version: def.version },
        );
      }
      versions.set(def.version, def);
      this.#keys = undefined;
    }
    return this;
  }

  /** The given version, or the newest when `version` is omitted. */
  get(name: string, version?: number): WorkflowDefinition {
    const versions = this.#byName.get(name);
    if (!versions || versions.size === 0) {
      const known = this.names();
      throw new TollgateError('TG_WORKFLOW_UNKNOWN', `No workflow named "${name}". Known workflows: ${known.length ? known.join(', ') : '(none)'}.`, {
        workflow: name,
      });
    }
    const v = version ?? Math.max(...versions.keys());
    const def = versions.get(v);
    if (!def) {
      throw new TollgateError(
        'TG_WORKFLOW_UNKNOWN',
        `Workflow "${name}" version ${v} is not registered (registered: ${[...versions.keys()].join(', ')}). ` +
          'Runs started on a version need that version registered until they finish.',
        { workflow: name, version: v },
      );
    }
    return def;
  }

  /** Every registered `name@version`. */
  keys(): string[] {
    this.#keys ??= [...this.#byName.entries()].flatMap(([name, versions]) => [...versions.keys()].map((v) => `${name}@${v}`));
    return this.#keys;
  }

  has(name: string): boolean {
    return this.#byName.has(name);
  }

  names(): string[] {
    return [...this.#byName.keys()].sort();
  }

  /** The newest version of each workflow. */
  latest(): WorkflowDefinition[] {
    return this.names().map((n) => this.get(n));
  }
}
