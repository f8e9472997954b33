/**
 * Every chat platform Tollgate ships, for the boot (src/app.ts): each folder beside this file
 * whose index exports `chatPlatform` (a `ChatPlatformEntry`) is one. Each configured one becomes a
 * `ChatAdapter`; unconfigured ones say what to set. A new platform is a new folder, and nothing
 * else.
 *
 * The folders are found at load time, the same way from the sources (tsx, vitest: index.ts) and
 * compiled (dist/bots: index.js), in name order so the boot is the same on every machine.
 */
import { readdirSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TollgateError, type AdapterContext, type ChatAdapter, type ChatPlatformEntry } from '../src/chat/index.ts';

export type { AdapterContext } from '../src/chat/index.ts';

/** index.ts when running the sources, index.js when running dist/. */
const INDEX = `index${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`;
const HERE = new URL('./', import.meta.url);

function platformFolders(dir: URL): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && isFile(new URL(`${d.name}/${INDEX}`, dir)))
    .map((d) => d.name)
    .sort();
}

function isFile(u: URL): boolean {
  try {
    return statSync(u).isFile();
  } catch {
    return false;
  }
}

/**
 * The platform of each folder in `dir` (a directory URL ending in `/`) that holds an index, in name
 * order. The boot reads this file's own directory; a test reads one it wrote, to show that a new
 * folder is all a new platform takes.
 */
export async function loadChatPlatforms(dir: URL): Promise<ChatPlatformEntry[]> {
  const where = basename(fileURLToPath(dir));
  const entries: ChatPlatformEntry[] = [];
  for (const folder of platformFolders(dir)) {
    const mod = (await import(new URL(`${folder}/${INDEX}`, dir).href)) as { chatPlatform?: ChatPlatformEntry };
    if (!mod.chatPlatform) {
      throw new TollgateError(
        'TG_CONFIG_INVALID',
        `${where}/${folder}/${INDEX} exports no chatPlatform; every folder under ${where}/ is a chat platform and must.`,
      );
    }
    entries.push(mod.chatPlatform);
  }
  return entries;
}

const PLATFORMS = await loadChatPlatforms(HERE);

export function createChatAdapters(ctx: AdapterContext): ChatAdapter[] {
  return PLATFORMS.map((p) => p.create(ctx)).filter((a): a is ChatAdapter => a !== undefined);
}

/**
 * Routes of platforms that are not configured, with the status and the sentence saying how to
 * turn them on.
 */
export const UNCONFIGURED_ROUTES: { path: string; message: string; platform: string; status: number }[] = PLATFORMS.map((p) => ({
  platform: p.name,
  ...p.unconfigured,
}));
