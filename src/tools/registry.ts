/** The tools a process knows, by name. Workflows still list which of them they may call. */
import { TollgateError } from '../common/errors.ts';
import type { ToolDefinition } from './define.ts';

export class ToolRegistry {
  readonly #byName = new Map<string, ToolDefinition>();

  register(...tools: ToolDefinition[]): this {
    for (const t of tools) {
      const existing = this.#byName.get(t.name);
      if (existing && existing !== t) throw new TollgateError('TG_TOOL_DUPLICATE', `Tool "${t.name}" is registered twice; give each tool a unique name.`);
      this.#byName.set(t.name, t);
    }
    return this;
  }

  get(name: string): ToolDefinition {
    const t = this.#byName.get(name);
    if (!t) {
      throw new TollgateError('TG_TOOL_UNKNOWN', `No tool named "${name}". Known tools: ${this.names().join(', ') || '(none)'}.`, { tool: name });
    }
    return t;
  }

  has(name: string): boolean {
    return this.#byName.has(name);
  }

  names(): string[] {
    return [...this.#byName.keys()].sort();
  }
}
