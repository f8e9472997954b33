/**
 * The model layer's settings, gathered from the environment (`OPENAI_*`, `TOLLGATE_MODEL*`,
 * src/config/config.ts) and the project configuration (`model.prices`, `model.redact`,
 * src/config/project-config.ts) into the one object the client is built from.
 */
import type { Config } from '../config/config.ts';
import type { ProjectConfig } from '../config/project-config.ts';
import type { ModelSettings } from './types.ts';

export function modelSettings(config: Config, project: ProjectConfig): ModelSettings {
  return Object.freeze({
    model: config.model.name,
    baseUrl: config.model.baseUrl,
    apiKey: config.model.apiKey,
    timeoutMs: config.model.timeoutMs,
    maxRetries: config.model.maxRetries,
    prices: project.model.prices,
    redact: project.model.redact,
  });
}

/** TOLLGATE_MODEL names a model, and there is a server to ask: a base URL (a local server) or an API key (OpenAI's). */
export function isModelConfigured(s: Pick<ModelSettings, 'model' | 'baseUrl' | 'apiKey'>): boolean {
  return Boolean(s.model && (s.baseUrl || s.apiKey));
}
