/** Whether a host name or address names this machine only (loopback): the console's bind rule and its OpenID issuer rule use it. */
import { isIP } from 'node:net';

/** Whether `host` (a HOST value, a request's Host header without the port, or a URL's hostname) is loopback only. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(h);
  return false;
}
