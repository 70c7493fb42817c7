// The show's chat beside the video: live over `chat-transport.ts` (history on join, pinned
// message on top, deletes and bans applied live, host links and product cards), or — in a
// replay — the stored messages of the session shown as the playhead passes their media time.
// An anonymous viewer who writes is asked to log in; the typed message is posted afterwards.

import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api } from '../shared/api';
import { useSession } from '../shared/header';
import { requireLogin } from '../shared/login';
import { session } from '../shared/session';
import { connectChat, type ChatTransport, type ServerMessage, type TransportKind } from '../shared/chat-transport';
import type { CueProduct } from './cues';
import { formatPrice } from './commerce';

export interface ChatMessage {
  id: number;
  user: string | null;
  role: 'viewer' | 'moderator' | 'host';
  kind: 'chat' | 'link' | 'product';
  text: string;
  link?: { url: string; label?: string } | null;
  product?: CueProduct | null;
  sent_at_ms: number;
  media_time_ms?: number | null;
}

interface Welcome {
  user: string | null;
  capabilities: string[];
  max_text_chars: number;
  pinned: ChatMessage | null;
}

const CLOSE_TEXT: Record<number, string> = {
  6: 'You were removed from this chat by a moderator.',
  9: 'This chat room does not exist.',
  10: 'Your login expired. Log in again to chat.',
};

function safeUrl(url: string | undefined): string | null {
  if (!url) return null;
  try {
    const parsed = new URL(url, location.href);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.href : null;
  } catch {
    return null;
  }
}

const URL_RE = /(https?:\/\/[^\s<>"']+)/g;

/** The text with its http(s) URLs as links (the server already removed links viewers may not post). */
function Linked({ text }: { text: string }) {
  const parts = text.split(URL_RE);
  return (
    <>
      {parts.map((part, i) => {
        if (i % 2 === 0) return part;
        const trimmed = part.replace(/[.,!?)]+$/, '');
        const url = safeUrl(trimmed);
        if (!url) return part;
        return (
          <>
            <a href={url} target="_blank" rel="noopener noreferrer">
              {trimmed}
            </a>
            {part.slice(trimmed.length)}
          </>
        );
      })}
    </>
  );
}

function Message({
  message,
  canDelete,
  onDelete,
  onPin,
  pinned = false,
  onProduct,
}: {
  message: ChatMessage;
  canDelete: boolean;
  onDelete(id: number): void;
  /** Hosts: pin this message (or, for the pinned one, unpin). */
  onPin?: (() => void) | null;
  pinned?: boolean;
  onProduct(product: CueProduct): void;
}) {
  const link = safeUrl(message.link?.url);
  const product = message.product;
  return (
    <div class={`chat-message role-${message.role}`} data-id={message.id}>
      <span class="chat-user">
        {message.user ?? 'anonymous'}
        {message.role !== 'viewer' ? <span class="chat-role">{message.role}</span> : null}
      </span>{' '}
      <span class="chat-text">
        <Linked text={message.text} />
      </span>
      {link ? (
        <a class="chat-link" href={link} target="_blank" rel="noopener noreferrer">
          {message.link?.label || link}
        </a>
      ) : null}
      {product ? (
        <button type="button" class="chat-product" onClick={() => onProduct(product)}>
          {product.image_url ? <img src={product.image_url} alt="" width={40} height={40} loading="lazy" /> : null}
          <span>
            <strong>{product.title ?? product.id}</strong>
            <span>{formatPrice(product.price, product.currency)}</span>
          </span>
        </button>
      ) : null}
      {onPin ? (
        <button type="button" class="button link chat-pin" onClick={onPin}>
          {pinned ? 'Unpin' : 'Pin'}
        </button>
      ) : null}
      {canDelete ? (
        <button
          type="button"
          class="button link chat-delete"
          aria-label={`Delete message from ${message.user ?? 'anonymous'}`}
          onClick={() => onDelete(message.id)}
        >
          Delete
        </button>
      ) : null}
    </div>
  );
}

export interface ChatProps {
  room: string;
  /** Replay: the recording's session; messages follow `mediaTime` (seconds). */
  replay?: { session: string | null } | null;
  mediaTime: number;
  onProduct(product: CueProduct): void;
}

export function Chat({ room, replay, mediaTime, onProduct }: ChatProps) {
  const claims = useSession();
  const [messages, setMessages] = useState<ChatMessage[]>([]);
  const [pinned, setPinned] = useState<ChatMessage | null>(null);
  const [welcome, setWelcome] = useState<Welcome | null>(null);
  const [status, setStatus] = useState('Connecting to chat…');
  const [kind, setKind] = useState<TransportKind | null>(null);
  const [draft, setDraft] = useState('');
  const [error, setError] = useState('');
  const [replayAll, setReplayAll] = useState<ChatMessage[]>([]);
  const transport = useRef<ChatTransport | null>(null);
  const pending = useRef<string | null>(null);
  const list = useRef<HTMLDivElement>(null);
  const nonce = useRef(0);

  // Live: one connection per login state (the token goes in `hello`); reconnect after drops.
  useEffect(() => {
    if (replay) return;
    let stopped = false;
    let retry: number | undefined;
    let attempt = 0;
    const connect = () => {
      connectChat(room, session.token(), {
        message: (m) => handle(m),
        closed: (code) => {
          transport.current = null;
          setKind(null);
          if (stopped) return;
          if (code !== null && CLOSE_TEXT[code]) {
            setStatus(CLOSE_TEXT[code]);
            if (code === 6 || code === 9) return;
          } else setStatus('Chat disconnected. Reconnecting…');
          schedule();
        },
      }).then(
        (t) => {
          if (stopped) {
            t.close();
            return;
          }
          attempt = 0;
          transport.current = t;
          setKind(t.kind);
          setStatus('');
        },
        () => {
          if (!stopped) {
            setStatus('Chat is unavailable. Retrying…');
            schedule();
          }
        },
      );
    };
    const schedule = () => {
      window.clearTimeout(retry);
      attempt += 1;
      retry = window.setTimeout(connect, Math.min(15000, 1000 * 2 ** Math.min(attempt, 4)));
    };
    const handle = (m: ServerMessage) => {
      switch (m.type) {
        case 'welcome': {
          const w = m as unknown as Welcome;
          setWelcome(w);
          setPinned(w.pinned ?? null);
          setMessages([]);
          // A message typed before logging in goes out now.
          const text = pending.current;
          if (text && w.user) {
            pending.current = null;
            window.setTimeout(() => post(text), 0);
          }
          break;
        }
        case 'message': {
          const msg = m as unknown as ChatMessage;
          setMessages((all) => (all.some((x) => x.id === msg.id) ? all : [...all, msg].slice(-300)));
          break;
        }
        case 'deleted': {
          const id = m.id as number;
          setMessages((all) => all.filter((x) => x.id !== id));
          setPinned((p) => (p?.id === id ? null : p));
          break;
        }
        case 'pinned':
          setPinned((m.message as ChatMessage | null) ?? null);
          break;
        case 'rejected':
          setError(String(m.reason ?? m.code ?? 'Message not sent'));
          break;
        case 'ack':
          setError('');
          break;
        default:
          break;
      }
    };
    connect();
    return () => {
      stopped = true;
      window.clearTimeout(retry);
      transport.current?.close();
      transport.current = null;
      setKind(null);
    };
  }, [room, replay ? 'replay' : 'live', claims?.sub]);

  // Replay: the session's stored chat, shown as the video reaches each message.
  useEffect(() => {
    if (!replay) return;
    setStatus('');
    const params = new URLSearchParams({ from_ms: '0', to_ms: String(7 * 24 * 3600 * 1000) });
    if (replay.session) params.set('session', replay.session);
    api<{ messages: ChatMessage[] }>(`/api/chat/${encodeURIComponent(room)}/history?${params}`)
      .then((r) => setReplayAll(r.messages ?? []))
      .catch(() => setStatus('The chat of this show is not available.'));
  }, [room, replay?.session, !!replay]);

  const shown = useMemo(() => {
    if (!replay) return messages;
    const now = mediaTime * 1000;
    return replayAll.filter((m) => typeof m.media_time_ms === 'number' && m.media_time_ms <= now);
  }, [replay, messages, replayAll, Math.floor(mediaTime * 4)]);

  // Keep the newest message in view unless the viewer scrolled up to read.
  useEffect(() => {
    const el = list.current;
    if (!el) return;
    if (el.scrollHeight - el.scrollTop - el.clientHeight < 120) el.scrollTop = el.scrollHeight;
  }, [shown.length]);

  const post = (text: string) => {
    const t = transport.current;
    if (!t) {
      pending.current = text;
      return;
    }
    nonce.current += 1;
    t.send({ type: 'post', text, nonce: `n${nonce.current}` });
  };

  const submit = async (event: Event) => {
    event.preventDefault();
    const text = draft.trim();
    if (!text) return;
    setError('');
    if (!session.claims()) {
      pending.current = text;
      setDraft('');
      const who = await requireLogin('Log in to chat with the host and other shoppers.');
      if (!who) {
        // Closed the dialog: give the text back.
        setDraft(pending.current ?? text);
        pending.current = null;
      }
      // Logged in: the connection restarts with the token and posts it on `welcome`.
      return;
    }
    setDraft('');
    post(text);
  };

  const canModerate = !!welcome?.capabilities?.includes('moderate');
  const canHost = !!welcome?.capabilities?.includes('host');
  const remove = (id: number) => transport.current?.send({ type: 'delete', id });
  const maxChars = welcome?.max_text_chars ?? 500;

  return (
    <section class="chat" aria-labelledby="chat-title" data-transport={kind ?? ''}>
      <div class="chat-head">
        <h2 id="chat-title">{replay ? 'Chat replay' : 'Live chat'}</h2>
        {kind ? <span class="chat-kind">{kind === 'webtransport' ? 'WebTransport' : 'WebSocket'}</span> : null}
      </div>
      <div class="chat-list" role="log" aria-label="Chat messages" aria-live="polite" ref={list} tabIndex={0}>
        {/* Sticky at the top of the log; inserted inside the scroller, whose scroll anchoring
            keeps the messages on screen where they were. */}
        {pinned ? (
          <div class="chat-pinned" aria-label="Pinned message">
            <span class="chat-pin-label">Pinned</span>
            <Message
              message={pinned}
              canDelete={false}
              onDelete={remove}
              onPin={canHost && !replay ? () => transport.current?.send({ type: 'unpin' }) : null}
              pinned
              onProduct={onProduct}
            />
          </div>
        ) : null}
        {shown.length === 0 && !status ? (
          <p class="chat-empty">{replay ? 'Messages appear here as the replay reaches them.' : 'No messages yet. Say hello!'}</p>
        ) : null}
        {shown.map((m) => (
          <Message
            key={m.id}
            message={m}
            canDelete={canModerate && !replay}
            onDelete={remove}
            onPin={canHost && !replay ? () => transport.current?.send({ type: 'pin', id: m.id }) : null}
            onProduct={onProduct}
          />
        ))}
      </div>
      <p class="chat-status" role="status">
        {status}
      </p>
      {replay ? null : (
        <form class="chat-form" onSubmit={submit}>
          <label class="visually-hidden" for="chat-input">
            Message
          </label>
          <input
            id="chat-input"
            name="message"
            autocomplete="off"
            enterkeyhint="send"
            maxLength={maxChars}
            placeholder={claims ? 'Say something…' : 'Log in to chat'}
            value={draft}
            onInput={(e) => setDraft((e.target as HTMLInputElement).value)}
          />
          <button type="submit" class="button primary">
            Send
          </button>
          {error ? (
            <p class="form-error chat-error" role="alert">
              {error}
            </p>
          ) : null}
        </form>
      )}
    </section>
  );
}
