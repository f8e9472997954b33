/**
 * The console's "Evidence bundle" download: `GET /console/runs/<id>/evidence` answers the run's
 * bundle (bundle.ts) as a file, `<runId>.evidence.json`. Mounted by the console's router, behind
 * the console's own guard (loopback bind or TOLLGATE_CONSOLE_TOKEN); `authorize` lets that router
 * narrow who may export which run. A run the caller may not see is answered exactly like a
 * missing one, so its existence is not disclosed.
 *
 * This handler only reads; it writes nothing and mounts nothing itself.
 */
import type http from 'node:http';
import type pg from 'pg';
import { isTollgateError } from '../common/errors.ts';
import type { WorkflowRegistry } from '../runtime/registry.ts';
import type { ToolRegistry } from '../tools/registry.ts';
import { exportEvidenceBundle } from './bundle.ts';
import type { AuditKey } from '../db/pool-key.ts';

export interface EvidenceHandlerOptions {
  pool: pg.Pool;
  registry?: WorkflowRegistry;
  tools?: ToolRegistry;
  auditKey?: AuditKey;
  /**
   * May this request export this run? Defaults to yes: the console's guard already admitted the
   * request, as `runs show` trusts whoever can reach the database. Answer false to hide the run.
   * What it returns as a string is recorded as the bundle's `exportedBy`.
   */
  authorize?: (req: http.IncomingMessage, runId: string) => Promise<boolean | string> | boolean | string;
}

export type EvidenceHandler = (req: http.IncomingMessage, res: http.ServerResponse, runId?: string) => Promise<void>;

const ROUTE = /^\/console\/runs\/([^/?#]+)\/evidence\/?$/;

/** The run id of `/console/runs/<id>/evidence`, or undefined. */
export function evidenceRunId(url: string | undefined): string | undefined {
  const pathname = (url ?? '').split('?')[0] ?? '';
  const m = ROUTE.exec(pathname);
  if (!m?.[1]) return undefined;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return undefined;
  }
}

function sendText(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }).end(`${text}\n`);
}

/** `(req, res, runId?)`: the run id from the router's match, or read from the path. */
export function evidenceBundleHandler(opts: EvidenceHandlerOptions): EvidenceHandler {
  return async (req, res, given) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const runId = given ?? evidenceRunId(req.url);
    if (!runId) {
      sendText(res, 404, 'No run named in the path: the evidence bundle of a run is at /console/runs/<run id>/evidence.');
      return;
    }
    const notFound = () => sendText(res, 404, `No run with id "${runId}".`);
    const allowed = opts.authorize ? await opts.authorize(req, runId) : true;
    if (allowed === false) return notFound();
    let body: string;
    try {
      const bundle = await exportEvidenceBundle(opts.pool, runId, {
        auditKey: opts.auditKey,
        registry: opts.registry,
        tools: opts.tools,
        exportedBy: typeof allowed === 'string' ? allowed : undefined,
      });
      body = `${JSON.stringify(bundle, null, 2)}\n`;
    } catch (e) {
      if (isTollgateError(e) && e.code === 'TG_RUN_NOT_FOUND') return notFound();
      throw e; // the server's handler logs it and answers 500
    }
    // Run ids are `run_<base32>`; anything else is kept out of the header.
    const filename = `${runId.replace(/[^A-Za-z0-9_.-]/g, '_')}.evidence.json`;
    res.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'content-disposition': `attachment; filename="${filename}"`,
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}
