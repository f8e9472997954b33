/**
 * HTML for the web console, written as strings: `html` is a tagged template that escapes every
 * value it is given unless that value is already `Html` (made by `html` itself or by `raw`), so a
 * page cannot print a run's input, an error message or a principal without escaping it.
 */

export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** Markup we wrote ourselves (never data). */
export function raw(text: string): Html {
  return new Html(text);
}

type Value = Html | string | number | boolean | null | undefined | readonly Value[];

function render(v: Value): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(render).join('');
  return escapeHtml(String(v));
}

export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0] as string;
  values.forEach((v, i) => {
    out += render(v) + (strings[i + 1] as string);
  });
  return new Html(out);
}

/**
 * The hidden field every console form that changes something carries: the viewer's CSRF token
 * (`viewer.csrf`, src/console/auth.ts), checked by the guard for every POST.
 */
export function csrfField(viewer: { csrf: string }): Html {
  return html`<input type="hidden" name="csrf" value="${viewer.csrf}">`;
}

/** `2026-11-29 19:02:52 UTC`: absolute, so the same state always reads the same. */
export function formatTime(d: Date | null | undefined): string {
  if (!d) return '—';
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const min = Math.floor(ms / 60_000);
  if (min < 60) return `${min} min ${Math.round((ms % 60_000) / 1000)} s`;
  return `${Math.floor(min / 60)} h ${min % 60} min`;
}

const MAX_JSON_CHARS = 20_000;

/** A recorded value as indented JSON in a `<pre>`, cut (and saying so) past 20 000 characters. */
export function jsonBlock(value: unknown): Html {
  if (value === null || value === undefined) return html`<span class="muted">none</span>`;
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- the fallback is only for what JSON cannot show (a function, a symbol, a toJSON() giving undefined): String() is the intent there
  let text = JSON.stringify(value, null, 2) ?? String(value);
  const cut = text.length > MAX_JSON_CHARS;
  if (cut) text = text.slice(0, MAX_JSON_CHARS);
  return html`<pre>${text}</pre>${cut ? html`<p class="muted">(cut at ${MAX_JSON_CHARS} characters; <code>tollgate runs show --json</code> prints it whole)</p>` : ''}`;
}

/** A status as a coloured badge; `data-status` lets tests and people's styles find it. */
export function statusBadge(status: string, label = status): Html {
  const tone =
    status === 'succeeded' || status === 'approved' || status === 'ok'
      ? 'good'
      : status === 'failed' || status === 'rejected' || status === 'compensation_failed' || status === 'dead_letter' || status === 'broken'
        ? 'bad'
        : status === 'waiting' || status === 'pending' || status === 'running' || status === 'queued' || status === 'retrying'
          ? 'live'
          : 'plain';
  return html`<span class="badge ${tone}" data-status="${status}">${label}</span>`;
}

export const CSS = `
:root { color-scheme: light; --fg:#1d2330; --muted:#667085; --line:#e4e7ec; --bg:#f7f8fa; --good:#067647; --bad:#b42318; --live:#175cd3; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display:flex; gap:1.5rem; align-items:center; padding:.6rem 1.2rem; background:#101828; color:#fff; }
header a { color:#fff; text-decoration:none; } header a:hover { text-decoration:underline; }
header .brand { font-weight:700; letter-spacing:.02em; } header nav { display:flex; gap:1rem; flex:1; }
header .who { font-size:.9em; opacity:.9; } header form { display:inline; } header button { font-size:.85em; }
main { padding:1rem 1.2rem 3rem; max-width:1200px; }
h1 { font-size:1.35rem; margin:.2rem 0 .8rem; } h2 { font-size:1.1rem; margin:1.6rem 0 .5rem; } h3 { font-size:1rem; margin:.4rem 0; }
table { border-collapse:collapse; width:100%; background:#fff; border:1px solid var(--line); }
th, td { text-align:left; padding:.35rem .55rem; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:#f2f4f7; font-weight:600; font-size:.9em; }
pre { margin:.2rem 0; padding:.45rem .6rem; background:#f2f4f7; border-radius:4px; overflow:auto; max-height:24rem; font-size:.85em; }
code { font-size:.9em; } .muted { color: var(--muted); }
.badge { display:inline-block; padding:0 .45rem; border-radius:999px; font-size:.85em; font-weight:600; border:1px solid currentColor; }
.badge.good { color:var(--good); } .badge.bad { color:var(--bad); } .badge.live { color:var(--live); } .badge.plain { color:var(--muted); }
.card { background:#fff; border:1px solid var(--line); border-radius:6px; padding:.7rem .9rem; margin:.6rem 0; }
.error { color:var(--bad); font-weight:600; white-space:pre-wrap; }
.alert { border-left:4px solid var(--bad); background:#fef3f2; padding:.6rem .8rem; margin:.6rem 0; }
.notice { border-left:4px solid var(--good); background:#ecfdf3; padding:.6rem .8rem; margin:.6rem 0; }
.facts { display:grid; grid-template-columns: max-content 1fr; gap:.2rem 1rem; margin:.4rem 0; }
.facts dt { color:var(--muted); } .facts dd { margin:0; }
form.filters { display:flex; gap:.8rem; align-items:end; flex-wrap:wrap; margin-bottom:.8rem; }
form.filters label { display:flex; flex-direction:column; font-size:.85em; color:var(--muted); }
.actions { display:flex; gap:.6rem; align-items:center; margin:.6rem 0; } .actions form { display:inline; }
button, .button { font:inherit; padding:.3rem .8rem; border-radius:4px; border:1px solid #98a2b3; background:#fff; cursor:pointer; color:var(--fg); text-decoration:none; }
button.primary, a.button.primary { background:#175cd3; color:#fff; border-color:#175cd3; } button:disabled { opacity:.45; cursor:not-allowed; } button.danger { color:var(--bad); border-color:var(--bad); }
details > summary { cursor:pointer; color:var(--live); }
`;
