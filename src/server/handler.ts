/**
 * What a route of Tollgate's HTTP server is (src/server/http.ts), in a module of its own so that
 * route modules (metrics.ts, the console, the adapters) and the server that mounts them import it
 * without importing each other.
 */
import type http from 'node:http';

/** `params`: the `:name` segments of a pattern route (empty for an exact one). */
export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, params?: Readonly<Record<string, string>>) => Promise<void> | void;
