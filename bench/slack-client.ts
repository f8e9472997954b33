/**
 * The bench's Slack: signed requests over keep-alive connections (node:http, one socket per
 * concurrent request, opened before the measurement), as Slack's senders reuse theirs. With
 * fetch, each of 200 concurrent requests opened a connection of its own, and that alone took
 * 130-300 ms against a server that answers at once (bench/slack.ts prints that floor).
 */
import http from 'node:http';
import { signSlackRequest, type SlackRequest } from '../test/fakes/slack/requests.ts';

export interface SlackClient {
  /** Sends a signed request; resolves with its status and the ms from the first byte written to the last byte read. */
  send(req: SlackRequest): Promise<{ status: number; ms: number; body: string }>;
  /** Opens `n` connections now (concurrent GET /healthz), so a burst of `n` does not time their set-up. */
  warm(n: number): Promise<number[]>;
  close(): void;
}

export function slackClient(baseUrl: string, signingSecret: string): SlackClient {
  const url = new URL(baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  const request = (method: string, path: string, body: string | undefined, headers: Record<string, string>) =>
    new Promise<{ status: number; ms: number; body: string }>((resolve, reject) => {
      const t0 = performance.now();
      const req = http.request(
        {
          host: url.hostname,
          port: url.port,
          path,
          method,
          agent,
          headers: body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0, body: text }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  return {
    send: (req) => request('POST', '/slack/events', req.body, { 'content-type': req.contentType, ...signSlackRequest(signingSecret, req.body) }),
    warm: async (n) => (await Promise.all(Array.from({ length: n }, () => request('GET', '/healthz', undefined, {})))).map((r) => r.ms),
    close: () => agent.destroy(),
  };
}
