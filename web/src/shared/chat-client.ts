// A minimal chat client (docs/chat-protocol.md, `cuecast-chat/1`): WebTransport to the chat's
// QUIC endpoint (the development certificate trusted by the hashes of `GET /api/chat/cert`), and
// the WebSocket fallback `GET /api/chat/{room}/ws` (one JSON object per text message) where
// WebTransport is missing or cannot connect. Events arrive as the protocol's JSON objects;
// `send` takes the client messages (post, delete, pin, unpin, timeout, ban, unban, slow_mode).

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
export type ChatEvent = { type: string } & Record<string, unknown>;
export type ChatState = 'connecting' | 'open' | 'closed';

interface CertInfo {
  port: number;
  sha256: string[];
  webtransport_path?: string;
}

interface Transport {
  send(json: string): void;
  close(): void;
}

export class ChatClient {
  private transport: Transport | null = null;
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
    this.transport.send(JSON.stringify(message));
    return true;
  }

  close(): void {
    this.stopped = true;
    this.transport?.close();
    this.transport = null;
  }

  private hello(): string {
    const hello: Record<string, unknown> = { type: 'hello', version: 1, room: this.room, backfill: 100 };
    if (this.token) hello.token = this.token;
    return JSON.stringify(hello);
  }

  private async open(): Promise<void> {
    this.onState('connecting');
    const ended = (reason?: string) => {
      this.transport = null;
      if (this.stopped) return;
      this.onState('closed', reason);
      this.retry = Math.min(this.retry + 1, 5);
      setTimeout(() => !this.stopped && void this.open(), 500 * 2 ** this.retry);
    };
    try {
      this.transport = await this.webTransport(ended);
    } catch {
      this.transport = this.webSocket(ended);
    }
  }

  private delivered(json: string): void {
    try {
      const event = JSON.parse(json) as ChatEvent;
      if (event.type === 'welcome') {
        this.retry = 0;
        this.onState('open');
      }
      this.onEvent(event);
    } catch {
      /* not JSON: ignore */
    }
  }

  private async webTransport(ended: (reason?: string) => void): Promise<Transport> {
    if (typeof WebTransport === 'undefined') throw new Error('no WebTransport');
    const info = (await (await fetch('/api/chat/cert')).json()) as CertInfo;
    const wt = new WebTransport(`https://${location.hostname}:${info.port}${info.webtransport_path ?? '/chat'}`, {
      serverCertificateHashes: info.sha256.map((hex) => ({
        algorithm: 'sha-256',
        value: Uint8Array.from(hex.match(/../g) ?? [], (b) => parseInt(b, 16)),
      })),
    });
    const timer = setTimeout(() => wt.close(), 4000);
    await wt.ready.finally(() => clearTimeout(timer));
    const stream = await wt.createBidirectionalStream();
    const writer = stream.writable.getWriter();
    const encoder = new TextEncoder();
    const write = (json: string) => {
      const body = encoder.encode(json);
      const frame = new Uint8Array(4 + body.length);
      new DataView(frame.buffer).setUint32(0, body.length);
      frame.set(body, 4);
      writer.write(frame).catch(() => {});
    };
    write(this.hello());
    void (async () => {
      const reader = stream.readable.getReader();
      const decoder = new TextDecoder();
      let buffer = new Uint8Array(0);
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          const next = new Uint8Array(buffer.length + value.length);
          next.set(buffer);
          next.set(value, buffer.length);
          buffer = next;
          while (buffer.length >= 4) {
            const length = new DataView(buffer.buffer, buffer.byteOffset).getUint32(0);
            if (buffer.length < 4 + length) break;
            this.delivered(decoder.decode(buffer.subarray(4, 4 + length)));
            buffer = buffer.slice(4 + length);
          }
        }
      } catch {
        /* the session closed */
      }
      const info = await wt.closed.catch((e: unknown) => ({ reason: String(e) }));
      ended((info as { reason?: string }).reason);
    })();
    return { send: write, close: () => wt.close() };
  }

  private webSocket(ended: (reason?: string) => void): Transport {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}/api/chat/${encodeURIComponent(this.room)}/ws`);
    ws.onopen = () => ws.send(this.hello());
    ws.onmessage = (e) => typeof e.data === 'string' && this.delivered(e.data);
    ws.onclose = (e) => ended(e.reason || undefined);
    return {
      send: (json) => ws.readyState === WebSocket.OPEN && ws.send(json),
      close: () => ws.close(),
    };
  }
}
