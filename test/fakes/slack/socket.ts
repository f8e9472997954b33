/**
 * Socket Mode for the fake Slack (PROTOCOLS.md "Socket Mode"): `apps.connections.open` answers
 * `ws://127.0.0.1:<port>/socket`; on connection the fake sends `{"type":"hello"}`; `push()` sends an
 * envelope `{type, envelope_id, payload, accepts_response_payload}` and resolves with the client's
 * acknowledgement `{envelope_id, payload?}`.
 *
 * A minimal RFC 6455 server (no dependency): handshake, unmasked text frames out, masked frames
 * in, ping → pong, close. Enough for @slack/socket-mode's client; not a general WebSocket server.
 */
import { createHash, randomUUID } from 'node:crypto';
import type http from 'node:http';
import type { Duplex } from 'node:stream';

export interface SocketAck {
  envelope_id: string;
  payload?: unknown;
}

export interface FakeSocketMode {
  /** Resolves once a client is connected and has been sent hello. */
  connected(): Promise<void>;
  push(type: string, payload: unknown, extra?: Record<string, unknown>): Promise<SocketAck>;
  close(): void;
}

function frame(opcode: number, data: Buffer): Buffer {
  const len = data.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, len]) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  if (len >= 126 && len < 65536) {
    head[0] = 0x80 | opcode;
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else if (len >= 65536) {
    head[0] = 0x80 | opcode;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([head, data]);
}

export function attachSocketMode(server: http.Server, path = '/socket'): FakeSocketMode {
  let socket: Duplex | undefined;
  let onConnected: (() => void)[] = [];
  const waiting = new Map<string, (ack: SocketAck) => void>();

  server.on('upgrade', (req: http.IncomingMessage, sock: Duplex) => {
    if ((req.url ?? '').split('?')[0] !== path) {
      sock.destroy();
      return;
    }
    const key = String(req.headers['sec-websocket-key'] ?? '');
    const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket = sock;
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (buf.length < 2) return;
        const opcode = (buf[0] as number) & 0x0f;
        const masked = ((buf[1] as number) & 0x80) !== 0;
        let len = (buf[1] as number) & 0x7f;
        let off = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          off = 4;
        } else if (len === 127) {
          if (buf.length < 10) return;
          len = Number(buf.readBigUInt64BE(2));
          off = 10;
        }
        const maskOff = off;
        if (masked) off += 4;
        if (buf.length < off + len) return;
        const data = Buffer.from(buf.subarray(off, off + len));
        if (masked) for (let i = 0; i < data.length; i++) data[i] = (data[i] as number) ^ (buf[maskOff + (i % 4)] as number);
        buf = buf.subarray(off + len);
        if (opcode === 0x1) {
          const msg = JSON.parse(data.toString('utf8')) as SocketAck;
          waiting.get(msg.envelope_id)?.(msg);
          waiting.delete(msg.envelope_id);
        } else if (opcode === 0x9) {
          sock.write(frame(0xa, data));
        } else if (opcode === 0x8) {
          sock.end(frame(0x8, Buffer.alloc(0)));
          if (socket === sock) socket = undefined;
        }
      }
    });
    sock.on('error', () => {});
    sock.write(
      frame(0x1, Buffer.from(JSON.stringify({ type: 'hello', num_connections: 1, debug_info: { host: 'fake' }, connection_info: { app_id: 'A0001' } }))),
    );
    const ready = onConnected;
    onConnected = [];
    ready.forEach((f) => f());
  });

  return {
    connected: () => (socket ? Promise.resolve() : new Promise((resolve) => onConnected.push(resolve))),
    push: (type, payload, extra = {}) =>
      new Promise((resolve, reject) => {
        if (!socket) {
          reject(new Error('no Socket Mode client is connected'));
          return;
        }
        const envelope_id = randomUUID();
        waiting.set(envelope_id, resolve);
        socket.write(frame(0x1, Buffer.from(JSON.stringify({ envelope_id, type, payload, accepts_response_payload: true, ...extra }))));
      }),
    close: () => {
      socket?.destroy();
      socket = undefined;
    },
  };
}
