/**
 * Socket Mode with acknowledgement after the intent is recorded (invariant 8).
 *
 * Bolt's SocketModeReceiver sends an envelope's ack the moment a listener calls `ack()`, and Bolt
 * acks Events API envelopes itself before the listeners run. Over HTTP, `processBeforeResponse`
 * holds the response until the listeners finish; this receiver gives Socket Mode the same rule:
 * `ack()` only stores the response, which is sent once `app.processEvent` has finished. If the
 * listeners fail (the database is down), no ack is sent, so Slack re-sends the envelope instead
 * of believing it was handled.
 */
import { SocketModeReceiver, type App, type ReceiverEvent, type SocketModeReceiverOptions } from '@slack/bolt';
import { TollgateError } from '../../src/chat/index.ts';
import { isUnattributedInteraction } from './identity.ts';

interface SlackEventArgs {
  ack: (response?: unknown) => Promise<void>;
  body: ReceiverEvent['body'];
  retry_num?: number;
  retry_reason?: string;
}

export class AckAfterRecordSocketModeReceiver extends SocketModeReceiver {
  #bolt: App | undefined;
  readonly #logger: SocketModeReceiverOptions['logger'];

  constructor(options: SocketModeReceiverOptions) {
    super(options);
    this.#logger = options.logger;
    // Replace Bolt's dispatcher with one that defers the ack.
    this.client.removeAllListeners('slack_event');
    this.client.on('slack_event', (args: SlackEventArgs) => {
      void this.#dispatch(args);
    });
  }

  override init(app: App): void {
    super.init(app);
    this.#bolt = app;
  }

  async #dispatch(args: SlackEventArgs): Promise<void> {
    if (isUnattributedInteraction(args.body)) {
      this.#logger?.warn('Dropped a Socket Mode interaction that names no user or workspace.');
      await args.ack().catch(() => {});
      return;
    }
    let acked = false;
    let stored: unknown;
    const event: ReceiverEvent = {
      body: args.body,
      retryNum: args.retry_num,
      retryReason: args.retry_reason,
      customProperties: {},
      ack: async (response?: unknown) => {
        if (acked) return;
        acked = true;
        stored = response;
      },
    };
    try {
      if (!this.#bolt) throw new TollgateError('TG_INTERNAL', 'The Socket Mode receiver was used before Bolt initialised it.');
      await this.#bolt.processEvent(event);
    } catch (e) {
      // Not acknowledged: Slack will deliver it again (Events API) or show the person an error.
      this.#logger?.error(`A Socket Mode envelope failed and was not acknowledged: ${(e as Error).message}`);
      return;
    }
    await args.ack(acked ? stored : undefined).catch((e: unknown) => {
      this.#logger?.warn(`Could not acknowledge a Socket Mode envelope: ${(e as Error).message}`);
    });
  }
}
