// The chat's wire (docs/chat-protocol.md): WebTransport to the QUIC endpoint first (one
// bidirectional stream, frames = u32 big-endian length + JSON), the WebSocket fallback on the
// HTTP port (`/api/chat/{room}/ws`, one JSON object per text message) when the browser has no
// WebTransport or no `welcome` arrives within ~3 s. `?chat=ws` in the page URL, or
// localStorage `cuecast.chat` = `ws`, forces the fallback. Both sides speak the same messages;
// the page above sees one `ChatTransport`.

export type TransportKind = 'webtransport' | 'websocket';

/** A protocol message from the server (`type` + fields). */
export interface ServerMessage {
  type: string;
  [field: string]: unknown;
}

export interface ChatTransport {
  readonly kind: TransportKind;
  /** Sends one protocol message (`hello` is sent by `connectChat`). */
  send(message: Record<string, unknown>): void;
  close(): void;
}

export interface TransportHandlers {
  message(message: ServerMessage): void;
  /** The connection ended; `code` is the chat close code when the server gave one. */
  closed(code: number | null, reason: string): void;
}

const WELCOME_TIMEOUT_MS = 3000;
const MAX_FRAME = 4 * 1024 * 1024;

interface CertInfo {
  sha256: string[];
  port: number;
  webtransport_path: string;
}

/** Whether the page asked for the WebSocket fallback. */
export function forcedWebSocket(): boolean {
  if (new URLSearchParams(location.search).get('chat') === 'ws') return true;
  try {
    return localStorage.getItem('cuecast.chat') === 'ws';
  } catch {
    return false;
  }
}

/** Connects to `room`, sends `hello`, resolves once `welcome` arrived (messages flow to `on`). */
export async function connectChat(room: string, token: string | null, on: TransportHandlers): Promise<ChatTransport> {
  const hello = { type: 'hello', version: 1, room, ...(token ? { token } : {}) };
  if (!forcedWebSocket() && 'WebTransport' in window) {
    try {
      return await withWelcome((handlers) => openWebTransport(hello, handlers), on);
    } catch {
      /* no QUIC on this network, or no answer in time: the WebSocket below */
    }
  }
  return withWelcome((handlers) => openWebSocket(room, hello, handlers), on);
}

/**
 * Opens a transport and waits for its `welcome`; rejects (and closes it) when none comes in time
 * or it closes first. Messages before the welcome are delivered too (the welcome is first).
 */
function withWelcome(
  open: (handlers: TransportHandlers) => Promise<ChatTransport>,
  on: TransportHandlers,
): Promise<ChatTransport> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let transport: ChatTransport | null = null;
    const timer = window.setTimeout(() => fail(new Error('no welcome')), WELCOME_TIMEOUT_MS);
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      window.clearTimeout(timer);
      transport?.close();
      reject(error);
    };
    // Messages that arrive before `open` returned the transport wait here.
    const early: ServerMessage[] = [];
    const deliver = (message: ServerMessage) => {
      if (!settled && message.type === 'welcome' && transport) {
        settled = true;
        window.clearTimeout(timer);
        resolve(transport);
      }
      if (settled) on.message(message);
    };
    open({
      message(message) {
        if (transport) deliver(message);
        else early.push(message);
      },
      closed(code, reason) {
        if (!settled) {
          // A refusal the server meant (banned, unknown room): say it, do not fall back.
          if (code !== null && code !== 0) {
            settled = true;
            window.clearTimeout(timer);
            on.closed(code, reason);
            reject(new Error(reason || `closed ${code}`));
            return;
          }
          fail(new Error(reason || 'closed'));
        } else on.closed(code, reason);
      },
    }).then(
      (t) => {
        transport = t;
        if (settled) t.close();
        else early.splice(0).forEach(deliver);
      },
      (e: Error) => fail(e),
    );
  });
}

async function openWebTransport(hello: object, on: TransportHandlers): Promise<ChatTransport> {
  const response = await fetch('/api/chat/cert');
  if (!response.ok) throw new Error(`chat cert: ${response.status}`);
  const cert = (await response.json()) as CertInfo;
  const url = `https://${location.hostname}:${cert.port}${cert.webtransport_path || '/chat'}`;
  const wt = new WebTransport(url, {
    serverCertificateHashes: cert.sha256.map((hex) => ({
      algorithm: 'sha-256',
      value: Uint8Array.from(hex.match(/../g) ?? [], (b) => parseInt(b, 16)),
    })),
  });
  // Swallow the promise's rejection; `closed` below reports it.
  wt.closed.catch(() => {});
  await wt.ready;
  const stream = await wt.createBidirectionalStream();
  const writer = stream.writable.getWriter();
  const encoder = new TextEncoder();
  let open = true;
  const send = (message: object) => {
    if (!open) return;
    const body = encoder.encode(JSON.stringify(message));
    const frame = new Uint8Array(4 + body.length);
    new DataView(frame.buffer).setUint32(0, body.length);
    frame.set(body, 4);
    writer.write(frame).catch(() => {});
  };
  send(hello);
  const finish = (code: number | null, reason: string) => {
    if (!open) return;
    open = false;
    on.closed(code, reason);
  };
  wt.closed.then(
    (info) => finish(info.closeCode ?? null, info.reason ?? ''),
    (e: Error) => finish(null, e.message),
  );
  void readFrames(stream.readable, on).then(
    () => finish(null, 'stream ended'),
    (e: Error) => finish(null, e.message),
  );
  return {
    kind: 'webtransport',
    send,
    close() {
      open = false;
      try {
        wt.close();
      } catch {
        /* already closed */
      }
    },
  };
}

async function readFrames(readable: ReadableStream<Uint8Array>, on: TransportHandlers): Promise<void> {
  const reader = readable.getReader();
  const decoder = new TextDecoder();
  let buffer = new Uint8Array(0);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    const joined = new Uint8Array(buffer.length + value.length);
    joined.set(buffer);
    joined.set(value, buffer.length);
    buffer = joined;
    while (buffer.length >= 4) {
      const length = new DataView(buffer.buffer, buffer.byteOffset).getUint32(0);
      if (length === 0 || length > MAX_FRAME) throw new Error('malformed frame');
      if (buffer.length < 4 + length) break;
      const text = decoder.decode(buffer.subarray(4, 4 + length));
      buffer = buffer.slice(4 + length);
      try {
        on.message(JSON.parse(text) as ServerMessage);
      } catch {
        /* not JSON: ignore the frame */
      }
    }
  }
}

function openWebSocket(room: string, hello: object, on: TransportHandlers): Promise<ChatTransport> {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${scheme}://${location.host}/api/chat/${encodeURIComponent(room)}/ws`);
  let open = true;
  const finish = (code: number | null, reason: string) => {
    if (!open) return;
    open = false;
    on.closed(code, reason);
  };
  ws.addEventListener('message', (event) => {
    if (typeof event.data !== 'string') return;
    try {
      on.message(JSON.parse(event.data) as ServerMessage);
    } catch {
      /* not JSON */
    }
  });
  // Server close codes are 4000 + the chat close code (contract.md).
  ws.addEventListener('close', (event) => finish(event.code >= 4000 ? event.code - 4000 : null, event.reason));
  const transport: ChatTransport = {
    kind: 'websocket',
    send(message) {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
    },
    close() {
      open = false;
      ws.close();
    },
  };
  return new Promise((resolve, reject) => {
    ws.addEventListener('open', () => {
      ws.send(JSON.stringify(hello));
      resolve(transport);
    });
    ws.addEventListener('error', () => reject(new Error('websocket failed')));
  });
}
