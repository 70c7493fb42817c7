// A chat connection that stays up (the studio's): the transport of chat-transport.ts
// (WebTransport, else the WebSocket fallback; docs/chat-protocol.md) reconnected with backoff
// after a drop until `close()`. Events arrive as the protocol's JSON objects; `send` takes the
// client messages (post, delete, pin, unpin, timeout, ban, unban, slow_mode).

import { ChatTransport, ServerMessage, connectChat } from './chat-transport';

export interface ChatMessage {
  id: number;
  room: string;
  user: string;
  role: 'viewer' | 'moderator' | 'host';
  kind: 'chat' | 'link' | 'product';
  text: string;
  product?: { id: string; title: string; price?: string; currency?: string; image_url?: string };
  sent_at_ms: number;
  history?: boolean;
}

/** A server event: `welcome`, `message`, `live`, `ack`, `rejected`, `deleted`, `pinned`, `presence`, `slow_mode`. */
export type ChatEvent = ServerMessage;
export type ChatState = 'connecting' | 'open' | 'closed';

export class ChatClient {
  private transport: ChatTransport | null = null;
  private stopped = false;
  private retry = 0;

  constructor(
    private readonly room: string,
    private readonly token: string | null,
    private readonly onEvent: (event: ChatEvent) => void,
    private readonly onState: (state: ChatState, reason?: string) => void = () => {},
  ) {}

  /** Connects (and reconnects after a drop, with backoff) until `close()`. */
  connect(): void {
    this.stopped = false;
    void this.open();
  }

  send(message: Record<string, unknown>): boolean {
    if (!this.transport) return false;
    this.transport.send(message);
    return true;
  }

  close(): void {
    this.stopped = true;
    this.transport?.close();
    this.transport = null;
  }

  private async open(): Promise<void> {
    this.onState('connecting');
    try {
      const transport = await connectChat(this.room, this.token, {
        message: (event) => this.onEvent(event),
        closed: (_code, reason) => this.ended(reason),
      });
      if (this.stopped) {
        transport.close();
        return;
      }
      this.transport = transport;
      this.retry = 0;
      this.onState('open');
    } catch (e) {
      this.ended(e instanceof Error ? e.message : String(e));
    }
  }

  private ended(reason?: string): void {
    this.transport = null;
    if (this.stopped) return;
    this.onState('closed', reason);
    this.retry = Math.min(this.retry + 1, 5);
    setTimeout(() => !this.stopped && void this.open(), 500 * 2 ** this.retry);
  }
}
