/** The model layer's public API (issue 8): see types.ts for the shapes and client.ts for the behaviour. */
export type * from './types.ts';
export { createModelClient } from './client.ts';
export { splitExtraFields } from './answers.ts';
export { ModelCallError, isModelCallError, type ModelCallErrorCode } from './errors.ts';
export { createRedactor, WITHHELD, type Redactor, type Vault } from './redact.ts';
export { listModelCalls, MODEL_CALLED, recordModelCall, type ModelCallAt } from './record.ts';
export { modelSchemaFor, withoutNulls } from './schema.ts';
export { isModelConfigured, modelSettings } from './settings.ts';
