/**
 * A browser reduced to what a sign-in needs, for tests that do not need Chromium: `fetch` with
 * redirects followed by hand and one cookie jar (by name; the console's and the provider's cookies
 * never share a name, and both live on 127.0.0.1). `follow` can stop before a URL (the callback),
 * so a test can send it twice, or change it.
 */
export class HttpBrowser {
  readonly cookies = new Map<string, string>();

  /** The Cookie header this browser sends. */
  get cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  /** One request, no redirect followed; Set-Cookie headers go into the jar. */
  async request(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size > 0) headers.set('cookie', this.cookieHeader);
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const [pair = '', ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const gone = !value || attrs.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=Thu, 01 Jan 1970/i.test(a));
      if (gone) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }

  /**
   * GETs `url` and follows redirects; stops at the first response that is not a redirect, or before
   * requesting a URL for which `stopBefore` is true (then `stoppedAt` is that URL).
   */
  async follow(url: string, stopBefore?: (u: URL) => boolean): Promise<{ res?: Response; url: string; stoppedAt?: string }> {
    let at = url;
    for (let hops = 0; hops < 20; hops++) {
      if (stopBefore?.(new URL(at))) return { url: at, stoppedAt: at };
      const res = await this.request(at);
      const location = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || !location) return { res, url: at };
      await res.arrayBuffer();
      at = new URL(location, at).href;
    }
    throw new Error(`more than 20 redirects from ${url}`);
  }
}
