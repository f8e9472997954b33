/**
 * An in-memory chat platform, named `memory`: a third `ChatPlatform` beside Slack and Teams,
 * written against src/chat/platform.ts only, to show that the core needs nothing of a platform but
 * that interface (the errbot test backend, the bottender ConsoleConnector).
 *
 * - `render` keeps the neutral view itself as the body, so tests read exactly what each copy was
 *   told (its `kind`, the run or approval view) instead of parsing a platform's JSON.
 * - Messages are kept per conversation (`messagesIn`, `message`), updated in place; DMs open as
 *   `dm:<user>`. Every call is recorded (`calls`).
 * - Failures on demand: `failNext('post' | 'update', {transient | permanent, times})`, or
 *   `down(true)` to refuse every call as transient until `down(false)`.
 */
// Only the chat layer's entry point, like a platform under bots/: the seam suffices.
import type { ChatPlatform, ChatView, DeliveryFailure, Destination, HomeView, Posted, Principal, Rendered } from '../../src/chat/index.ts';

export interface MemoryMessage {
  conversation: string;
  id: string;
  thread: string | null;
  visibleTo: string | null;
  view: ChatView;
  text: string;
  updates: number;
}

class MemoryError extends Error {
  constructor(
    message: string,
    readonly transient: boolean,
  ) {
    super(message);
  }
}

export interface MemoryPlatform extends ChatPlatform {
  readonly calls: { op: string; conversation: string; at: number }[];
  readonly homes: Map<string, HomeView>;
  messagesIn(conversation: string): MemoryMessage[];
  message(conversation: string, id: string): MemoryMessage | undefined;
  failNext(op: 'post' | 'update', f: { kind: 'transient' | 'permanent'; times?: number }): void;
  down(isDown: boolean): void;
}

export function memoryPlatform(name = 'memory'): MemoryPlatform {
  const messages = new Map<string, MemoryMessage>();
  const calls: { op: string; conversation: string; at: number }[] = [];
  const homes = new Map<string, HomeView>();
  const failures: { op: string; kind: 'transient' | 'permanent'; times: number }[] = [];
  let isDown = false;
  let seq = 0;

  const maybeFail = (op: string) => {
    if (isDown) throw new MemoryError(`${name} is down`, true);
    const f = failures.find((x) => x.op === op);
    if (!f) return;
    if (--f.times <= 0) failures.splice(failures.indexOf(f), 1);
    throw new MemoryError(`${op} failed (${f.kind})`, f.kind === 'transient');
  };
  const body = (m: Rendered) => m.body as ChatView;

  return {
    name,
    calls,
    homes,
    render: (view: ChatView): Rendered => ({ text: `${view.kind}`, body: JSON.parse(JSON.stringify(view)) as unknown }),
    async post(to: Destination, m: Rendered): Promise<Posted> {
      calls.push({ op: 'post', conversation: to.conversation, at: Date.now() });
      maybeFail('post');
      const id = `m${++seq}`;
      const visibleTo = to.visibleTo ? `${to.visibleTo.platform}:${to.visibleTo.tenant}:${to.visibleTo.user}` : null;
      messages.set(`${to.conversation}/${id}`, { conversation: to.conversation, id, thread: to.thread, visibleTo, view: body(m), text: m.text, updates: 0 });
      return { messageId: id };
    },
    async update(to, m) {
      calls.push({ op: 'update', conversation: to.conversation, at: Date.now() });
      maybeFail('update');
      const msg = messages.get(`${to.conversation}/${to.messageId}`);
      if (!msg) throw new MemoryError(`no message ${to.messageId} in ${to.conversation}`, false);
      msg.view = body(m);
      msg.text = m.text;
      msg.updates++;
    },
    async openDm(to: Principal) {
      calls.push({ op: 'openDm', conversation: `dm:${to.user}`, at: Date.now() });
      if (isDown) throw new MemoryError(`${name} is down`, true);
      return { conversation: `dm:${to.user}` };
    },
    classify: (e: unknown): DeliveryFailure =>
      e instanceof MemoryError && !e.transient ? { kind: 'permanent', code: 'refused', reason: e.message } : { kind: 'retry', reason: (e as Error).message },
    async publishHome(to: Principal, home: HomeView) {
      calls.push({ op: 'publishHome', conversation: to.user, at: Date.now() });
      homes.set(`${to.platform}:${to.tenant}:${to.user}`, home);
    },
    messagesIn: (conversation) => [...messages.values()].filter((m) => m.conversation === conversation),
    message: (conversation, id) => messages.get(`${conversation}/${id}`),
    failNext: (op, f) => failures.push({ op, kind: f.kind, times: f.times ?? 1 }),
    down: (d) => {
      isDown = d;
    },
  };
}
