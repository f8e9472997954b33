/**
 * Shutting the HTTP door while a browser holds a keep-alive connection with a response under way,
 * the console's live updates (server-sent events) being the usual case. The server's close must
 * not wait for the client's keep-alive to lapse (65 s by default): once such a response ends, its
 * connection is closed; and an EventSource that reconnects on that connection before it goes is
 * told to stop (204), not given a new stream that would hold the door open for good.
 *
 * Each test holds one keep-alive connection of its own (an agent with maxSockets 1), as a browser would.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LiveTimelines } from '../src/console/live.ts';
import { createHttpServer, type HttpServer } from '../src/server/http.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { testLogger } from './helpers/log.ts';

/** Far longer than a drain takes, far shorter than the 65 s keep-alive a stuck drain waits for. */
const DRAIN_BOUND_MS = 5000;

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db?.close();
});

async function listening(mount: (server: HttpServer) => void): Promise<{ server: HttpServer; url: string }> {
  const server = createHttpServer({ log: testLogger(), checks: { pool: db.pool } });
  mount(server);
  const { port } = await server.listen(0, '127.0.0.1');
  return { server, url: `http://127.0.0.1:${port}` };
}

/** GET on `agent`, resolving with the status and headers as soon as they arrive, and with the body once it ends. */
function get(agent: http.Agent, url: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Promise<string> }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        const body = new Promise<string>((done) => res.on('end', () => done(text)));
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      })
      .on('error', reject);
  });
}

/** Whether `p` settles within DRAIN_BOUND_MS. */
async function settles(p: Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<false>((r) => (timer = setTimeout(() => r(false), DRAIN_BOUND_MS)));
  try {
    return await Promise.race([p.then(() => true), bound]);
  } finally {
    clearTimeout(timer);
  }
}

describe('shutting the HTTP door', () => {
  it('closes a keep-alive connection whose response was under way when the door began to shut, once that response ends', async () => {
    let finish!: () => void;
    const { server, url } = await listening((s) =>
      s.mount('GET', '/slow', (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('started ');
        finish = () => res.end('done');
      }),
    );
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const answer = await get(agent, `${url}/slow`);
      expect(answer.headers.connection).toBe('keep-alive');
      const closed = server.close();
      finish();
      expect(await answer.body).toBe('started done');
      expect(await settles(closed)).toBe(true);
    } finally {
      agent.destroy();
      server.closeAllConnections();
    }
  });

  it("ends the console's live streams, and answers a stream asked for again on the same connection with 204 so the server's close completes", async () => {
    const live = new LiveTimelines({ pool: db.pool, log: testLogger(), intervalMs: 50 });
    const { server, url } = await listening((s) =>
      s.mount('GET', '/events', (req, res) =>
        live.stream(req, res, { since: undefined, event: 'tick', version: async () => 'v1', render: async () => 'fragment' }),
      ),
    );
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const stream = await get(agent, `${url}/events`);
      expect(stream.status).toBe(200);
      expect(stream.headers['content-type']).toMatch(/^text\/event-stream/);

      live.close();
      expect(await stream.body).toContain('event: tick\ndata: fragment');
      // EventSource reconnects; with one socket in the agent, this goes over the same connection.
      const again = await get(agent, `${url}/events`);
      expect(again.status).toBe(204);
      expect(await settles(server.close())).toBe(true);
    } finally {
      agent.destroy();
      server.closeAllConnections();
    }
  });
});
