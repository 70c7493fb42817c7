// The login / sign-up dialog, over whatever page asked for it (a viewer who tries to chat or buy,
// a host opening the studio). `requireLogin` resolves with the session once the person has logged
// in or signed up, so the action they tried can go through without starting over; it resolves
// null if they close the dialog. A native <dialog> (modal: focus stays inside, Escape closes).

import { api, ApiError } from './api';
import { Claims, session } from './session';

interface TokenBody {
  token: string;
}

let open: Promise<Claims | null> | null = null;

/** The session, asking the person to log in first when there is none. */
export function requireLogin(reason: string): Promise<Claims | null> {
  const claims = session.claims();
  if (claims) return Promise.resolve(claims);
  if (!open) {
    open = showDialog(reason).finally(() => {
      open = null;
    });
  }
  return open;
}

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> & Record<string, unknown> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key.startsWith('aria-') || key === 'role' || key === 'for') node.setAttribute(key, String(value));
    else (node as unknown as Record<string, unknown>)[key] = value;
  }
  node.append(...children);
  return node;
}

function showDialog(reason: string): Promise<Claims | null> {
  return new Promise((resolve) => {
    let mode: 'login' | 'signup' = 'login';
    const title = element('h2', { id: 'login-title', className: 'dialog-title' });
    const why = element('p', { className: 'dialog-reason' }, reason);
    const user = element('input', {
      id: 'login-username',
      name: 'username',
      autocomplete: 'username',
      required: true,
      maxLength: 32,
      autocapitalize: 'none',
      spellcheck: false,
    });
    const pass = element('input', {
      id: 'login-password',
      name: 'password',
      type: 'password',
      required: true,
      minLength: 8,
      maxLength: 256,
    });
    const error = element('p', { className: 'form-error', role: 'alert' });
    const submit = element('button', { type: 'submit', className: 'button primary' });
    const switcher = element('button', { type: 'button', className: 'button link' });
    const close = element('button', {
      type: 'button',
      className: 'button icon dialog-close',
      'aria-label': 'Close',
    }, '×');
    const form = element(
      'form',
      { className: 'login-form', noValidate: false },
      element('label', { for: 'login-username' }, 'Username'),
      user,
      element('label', { for: 'login-password' }, 'Password'),
      pass,
      error,
      submit,
      switcher,
    );
    const dialog = element(
      'dialog',
      { className: 'dialog login-dialog', 'aria-labelledby': 'login-title' },
      close,
      title,
      why,
      form,
    );

    const render = () => {
      title.textContent = mode === 'login' ? 'Log in' : 'Create an account';
      submit.textContent = mode === 'login' ? 'Log in' : 'Sign up';
      switcher.textContent = mode === 'login' ? 'New here? Create an account' : 'Have an account? Log in';
      pass.autocomplete = mode === 'login' ? 'current-password' : 'new-password';
      error.textContent = '';
    };
    let result: Claims | null = null;
    switcher.addEventListener('click', () => {
      mode = mode === 'login' ? 'signup' : 'login';
      render();
    });
    close.addEventListener('click', () => dialog.close());
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(result);
    });
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      error.textContent = '';
      submit.disabled = true;
      try {
        const body = { username: user.value.trim(), password: pass.value };
        const { token } = await api<TokenBody>(mode === 'login' ? '/api/login' : '/api/signup', {
          body,
          auth: false,
        });
        result = session.set(token);
        if (!result) throw new ApiError(500, 'the server sent a token this page cannot read');
        dialog.close();
      } catch (e) {
        error.textContent = e instanceof ApiError ? e.message : 'Could not reach the server. Try again.';
        (e instanceof ApiError && e.field === 'password' ? pass : user).focus();
      } finally {
        submit.disabled = false;
      }
    });
    render();
    document.body.append(dialog);
    dialog.showModal();
    user.focus();
  });
}
