// The show's chat in the studio, with moderation inline: delete, time out, ban, pin a message,
// slow mode; the host can post (and pin) product cards. Large readable text.

import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ChatClient, ChatEvent, ChatMessage, ChatState } from '../shared/chat-client';
import { session } from '../shared/session';
import { Product, cueProduct } from './model';

const SLOW = [0, 5, 10, 30, 60, 120];
const TIMEOUT_S = 300;

export function useChat(room: string) {
  const [messages, setMessages] = useState<ChatMessage[]>([]);
  const [pinned, setPinned] = useState<ChatMessage | null>(null);
  const [slowMode, setSlowMode] = useState(0);
  const [presence, setPresence] = useState<number | null>(null);
  const [state, setState] = useState<ChatState>('connecting');
  const [reason, setReason] = useState('');
  const [notice, setNotice] = useState('');
  const [caps, setCaps] = useState<string[]>([]);
  const pending = useRef(new Map<string, { resolve: (id: number) => void; reject: (e: Error) => void }>());
  const client = useMemo(() => {
    const onEvent = (e: ChatEvent) => {
      switch (e.type) {
        case 'welcome':
          setMessages([]);
          setSlowMode(Number(e.slow_mode_s) || 0);
          setPresence(Number(e.presence) || 0);
          setPinned((e.pinned as ChatMessage | null) ?? null);
          setCaps((e.capabilities as string[]) ?? []);
          break;
        case 'message':
          setMessages((all) => [...all.slice(-299), e as unknown as ChatMessage]);
          break;
        case 'deleted':
          setMessages((all) => all.filter((m) => m.id !== e.id));
          setPinned((p) => (p && p.id === e.id ? null : p));
          break;
        case 'pinned':
          setPinned((e.message as ChatMessage | null) ?? null);
          break;
        case 'presence':
          setPresence(Number(e.count) || 0);
          break;
        case 'slow_mode':
          setSlowMode(Number(e.seconds) || 0);
          break;
        case 'ack': {
          const p = pending.current.get(String(e.nonce));
          pending.current.delete(String(e.nonce));
          p?.resolve(Number(e.id));
          break;
        }
        case 'rejected': {
          const p = pending.current.get(String(e.nonce));
          pending.current.delete(String(e.nonce));
          const why = String(e.reason ?? e.code);
          if (p) p.reject(new Error(why));
          else setNotice(`Chat refused that: ${why}`);
          break;
        }
      }
    };
    return new ChatClient(room, session.token(), onEvent, (s, r) => {
      setState(s);
      setReason(r ?? '');
    });
  }, [room]);
  useEffect(() => {
    client.connect();
    return () => client.close();
  }, [client]);
  let n = 0;
  const post = (body: Record<string, unknown>) =>
    new Promise<number>((resolve, reject) => {
      const nonce = `s${Date.now()}-${n++}`;
      pending.current.set(nonce, { resolve, reject });
      if (!client.send({ type: 'post', nonce, ...body })) {
        pending.current.delete(nonce);
        reject(new Error('the chat is not connected'));
      }
      setTimeout(() => {
        if (pending.current.delete(nonce)) reject(new Error('no answer from the chat'));
      }, 5000);
    });
  return {
    messages,
    pinned,
    slowMode,
    presence,
    state,
    reason,
    notice,
    setNotice,
    caps,
    canPost: state === 'open' && caps.includes('host'),
    send: (m: Record<string, unknown>) => client.send(m),
    post,
    postProduct: (p: Product) => post({ text: p.title, product: cueProduct(p) }),
  };
}

type Chat = ReturnType<typeof useChat>;

export function ChatPanel({ chat }: { chat: Chat }) {
  const [text, setText] = useState('');
  const [error, setError] = useState('');
  const log = useRef<HTMLDivElement>(null);
  const me = session.claims()?.sub;
  const moderate = chat.caps.includes('moderate');
  const host = chat.caps.includes('host');
  useEffect(() => {
    const el = log.current;
    if (el && el.scrollHeight - el.scrollTop - el.clientHeight < 120) el.scrollTop = el.scrollHeight;
  }, [chat.messages.length]);
  const act = (message: Record<string, unknown>, done: string) => {
    chat.setNotice(chat.send(message) ? done : 'The chat is not connected.');
  };
  const submit = async (event: Event) => {
    event.preventDefault();
    if (!text.trim()) return;
    setError('');
    try {
      await chat.post({ text: text.trim() });
      setText('');
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  };
  return (
    <section class="card chat-panel" aria-labelledby="chat-title">
      <div class="section-head">
        <h2 id="chat-title">Chat</h2>
        <span class={`badge ${chat.state === 'open' ? 'ok' : ''}`}>
          {chat.state === 'open' ? `${chat.presence ?? 0} in chat` : chat.state === 'connecting' ? 'connecting…' : 'reconnecting…'}
        </span>
      </div>
      <div class="chat-tools">
        <label class="inline" for="slow-mode">
          Slow mode
        </label>
        <select
          id="slow-mode"
          value={chat.slowMode}
          disabled={!moderate || chat.state !== 'open'}
          onChange={(e) => {
            const seconds = Number(e.currentTarget.value);
            act({ type: 'slow_mode', seconds }, seconds ? `Slow mode: one message every ${seconds} s.` : 'Slow mode off.');
          }}
        >
          {SLOW.includes(chat.slowMode) ? null : <option value={chat.slowMode}>{chat.slowMode} s</option>}
          {SLOW.map((s) => (
            <option key={s} value={s}>
              {s ? `${s} s` : 'off'}
            </option>
          ))}
        </select>
      </div>
      {chat.pinned ? (
        <div class="pinned">
          <span class="badge">Pinned</span> <strong>{chat.pinned.user}</strong> {chat.pinned.text}
          {host ? (
            <button type="button" class="button link" onClick={() => act({ type: 'unpin' }, 'Unpinned.')}>
              Unpin
            </button>
          ) : null}
        </div>
      ) : null}
      <div class="chat-log" role="log" aria-label="Chat messages" aria-live="polite" ref={log} tabIndex={0}>
        {chat.messages.map((m) => (
          <div key={m.id} class={`chat-message role-${m.role}`} data-id={m.id}>
            <span class="chat-text">
              <strong class="chat-user">{m.user}</strong>
              {m.role !== 'viewer' ? <span class="badge">{m.role}</span> : null} {m.text}
              {m.product ? <span class="chat-card"> · {m.product.price ? `${m.product.price} ${m.product.currency ?? ''}` : 'product'}</span> : null}
            </span>
            <span class="chat-actions">
              {host ? (
                <button type="button" class="button small" aria-label={`Pin message from ${m.user}`} onClick={() => act({ type: 'pin', id: m.id }, 'Pinned.')}>
                  Pin
                </button>
              ) : null}
              {moderate ? (
                <button type="button" class="button small" aria-label={`Delete message from ${m.user}`} onClick={() => act({ type: 'delete', id: m.id }, 'Message deleted.')}>
                  Delete
                </button>
              ) : null}
              {moderate && m.user !== me && m.role === 'viewer' ? (
                <>
                  <button
                    type="button"
                    class="button small"
                    aria-label={`Time out ${m.user} for 5 minutes`}
                    onClick={() => act({ type: 'timeout', user: m.user, seconds: TIMEOUT_S }, `${m.user} is timed out for 5 minutes.`)}
                  >
                    Time out
                  </button>
                  <button
                    type="button"
                    class="button small danger"
                    aria-label={`Ban ${m.user}`}
                    onClick={() => {
                      if (confirm(`Ban ${m.user} from this chat?`)) act({ type: 'ban', user: m.user }, `${m.user} is banned.`);
                    }}
                  >
                    Ban
                  </button>
                </>
              ) : null}
            </span>
          </div>
        ))}
        {chat.messages.length === 0 ? <p class="muted">No messages yet.</p> : null}
      </div>
      {!moderate && chat.state === 'open' ? (
        <p class="hint">Your account has no moderate capability: you can pin, but not delete or time out.</p>
      ) : null}
      <form class="chat-form" onSubmit={submit}>
        <label for="chat-input" class="visually-hidden">
          Message as host
        </label>
        <input
          id="chat-input"
          value={text}
          maxLength={2000}
          placeholder="Write to your viewers…"
          autocomplete="off"
          onInput={(e) => setText(e.currentTarget.value)}
        />
        <button type="submit" class="button primary" disabled={chat.state !== 'open'}>
          Send
        </button>
      </form>
      <p class="hint" role="status" id="chat-status">
        {error || chat.notice || (chat.state === 'closed' && chat.reason ? `Chat: ${chat.reason}` : '')}
      </p>
    </section>
  );
}
