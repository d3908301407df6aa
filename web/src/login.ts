// The sign-in form. Shown at start without a token, and over the page when
// a token expires: the page underneath keeps its view and state.
import { ApiError, login, type Me } from './api';
import { h } from './dom';
import { currentLang, setLang, t } from './i18n';

export function showLogin(reason?: string): Promise<Me> {
  return new Promise((resolve) => {
    const err = h('div', { class: 'login-error', role: 'alert' }, reason || '');
    const user = h('input', { name: 'username', autocomplete: 'username', required: true, placeholder: t('username') });
    const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, placeholder: t('password') });
    const button = h('button', { type: 'submit' }, t('login'));
    const form = h('form', { class: 'login-card' },
      h('div', { class: 'login-brand' }, h('span', { class: 'logo' }), h('h1', {}, t('title'))),
      h('label', {}, t('username'), user), h('label', {}, t('password'), pass), button, err,
      h('button', { type: 'button', class: 'link lang-switch',
        onclick: () => { setLang(currentLang() === 'zh' ? 'en' : 'zh'); overlay.remove(); showLogin(reason).then(resolve); } }, t('lang')));
    const overlay = h('div', { class: 'login-overlay', id: 'login' }, form);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      button.disabled = true;
      err.textContent = '';
      try {
        const me = await login(user.value.trim(), pass.value);
        overlay.remove();
        resolve(me);
      } catch (x) {
        err.textContent = x instanceof ApiError && x.status === 429 ? t('login_limited') : t('login_failed');
        pass.value = '';
        pass.focus();
      } finally {
        button.disabled = false;
      }
    });
    document.body.append(overlay);
    user.focus();
  });
}
