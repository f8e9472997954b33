/**
 * Server-sent events that carry a fragment of a console page whenever what it shows changes:
 * `GET /console/runs/<id>/events` (a run's timeline, event `timeline`) and the approvals pages'
 * `…/events` (the list of approvals, event `approvals`: src/console/decide-routes.ts).
 *
 * Nothing notifies the HTTP server of changes (the worker may be another process), so each open
 * stream asks the database every `intervalMs` (500 ms) for a version of what it shows (a run's:
 * `timelineVersion`, its `updated_at` and newest event id, one index lookup) and renders the
 * fragment only when that moved. The stream holds no database connection between polls.
 *
 * `close()` ends every stream: the HTTP server's close waits for open connections, and an
 * EventSource never closes its own. It reconnects instead, possibly on the same keep-alive
 * connection, so a stream asked for after `close()` is answered 204, which stops EventSource.
 */
import type http from 'node:http';
import type pg from 'pg';
import type { Logger } from '../common/log.ts';
import { timelineVersion } from '../views/timeline-view.ts';

/** A comment line now and then keeps proxies from closing a quiet stream. */
const KEEPALIVE_MS = 15_000;

export class LiveTimelines {
  readonly #streams = new Set<() => void>();
  #closed = false;

  constructor(private readonly opts: { pool: pg.Pool; log: Logger; intervalMs?: number }) {}

  /**
   * Streams `render()` (the fragment's HTML) each time the run's version differs from the last one
   * sent, starting after `since` (the version the page was drawn from, or EventSource's Last-Event-ID).
   */
  serve(req: http.IncomingMessage, res: http.ServerResponse, runId: string, since: string | undefined, render: () => Promise<string | undefined>): void {
    this.stream(req, res, { since, event: 'timeline', version: () => timelineVersion(this.opts.pool, runId), render, logKey: { runId } });
  }

  /**
   * Streams `render()` as event `event` each time `version()` differs from the last one sent,
   * starting after `since` (the version the page was drawn from, or EventSource's Last-Event-ID).
   * An undefined version or fragment sends nothing.
   */
  stream(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    o: { since: string | undefined; event: string; version: () => Promise<string | undefined>; render: () => Promise<string | undefined>; logKey?: object },
  ): void {
    if (this.#closed) {
      // Shutting down: 204 tells EventSource to stop reconnecting, and the door closes the connection.
      res.writeHead(204).end();
      return;
    }
    const { since, render } = o;
    const interval = this.opts.intervalMs ?? 500;
    let last = since;
    let timer: NodeJS.Timeout | undefined;
    let closed = false;
    let quietSince = Date.now();

    const stop = () => {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      this.#streams.delete(stop);
      res.end();
    };
    this.#streams.add(stop);
    req.on('close', stop);

    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no', // nginx: pass each event on at once
    });
    res.write('retry: 2000\n\n');

    const tick = async () => {
      try {
        const version = await o.version();
        if (closed) return;
        if (version !== undefined && version !== last) {
          const fragment = await render();
          if (closed) return;
          if (fragment !== undefined) {
            res.write(
              `id: ${version}\nevent: ${o.event}\n${fragment
                .split('\n')
                .map((l) => `data: ${l}`)
                .join('\n')}\n\n`,
            );
            last = version;
            quietSince = Date.now();
          }
        } else if (Date.now() - quietSince >= KEEPALIVE_MS) {
          res.write(': keep-alive\n\n');
          quietSince = Date.now();
        }
      } catch (e) {
        // The database may be away for a moment; the next poll tries again.
        this.opts.log.debug({ err: e, ...o.logKey, event: o.event }, 'console: live update poll failed');
      }
      if (!closed) timer = setTimeout(() => void tick(), interval);
    };
    void tick();
  }

  /** Ends every open stream (at shutdown), and answers a stream asked for later with 204 (EventSource's "stop"). */
  close(): void {
    this.#closed = true;
    for (const stop of [...this.#streams]) stop();
  }
}
