// GET of the aggregator's JSON API with the bearer token.
//
// A 401 opens the token dialog once (every request waiting on it shares
// the answer), keeps the token in sessionStorage and retries.  Errors are
// ApiError with the API's own message ({"error": "..."}), for the panel
// that asked to show; nothing is logged to the console.

const TOKEN_KEY = 'flowvis.token';

export class ApiError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

function storedToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

function storeToken(t) {
  try {
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage disabled: the token lives as long as the page */
  }
}

let token = storedToken();
let pendingPrompt = null; // the open dialog's promise, shared by every 401
let declined = false; // the user cancelled the dialog: no more asking until resetTokenPrompt

// Lets the next 401 ask for a token again (after a user action).
export function resetTokenPrompt() {
  declined = false;
}

// Shows the token dialog; resolves to the token or '' when cancelled.
function askToken(wrong) {
  if (pendingPrompt) return pendingPrompt;
  if (declined) return Promise.resolve('');
  const dlg = document.querySelector('[data-dialog=token]');
  if (!dlg || typeof dlg.showModal !== 'function') return Promise.resolve('');
  const input = dlg.querySelector('[data-control=token]');
  const msg = dlg.querySelector('[data-token-message]');
  msg.textContent = wrong
    ? 'The aggregator refused this token. Enter the bearer token of its apiServer.tokenFile.'
    : "The aggregator's API needs a bearer token (apiServer.tokenFile).";
  input.value = '';
  pendingPrompt = new Promise((resolve) => {
    dlg.addEventListener(
      'close',
      () => {
        pendingPrompt = null;
        const t = dlg.returnValue === 'ok' ? input.value.trim() : '';
        declined = !t;
        resolve(t);
      },
      { once: true },
    );
  });
  dlg.returnValue = '';
  dlg.showModal();
  input.focus();
  return pendingPrompt;
}

// Fetches url (relative) as JSON.  signal aborts it (the promise then
// rejects with an AbortError, which callers ignore).
export async function getJSON(url, { signal } = {}) {
  let asked = false;
  for (;;) {
    const sent = token;
    const headers = { Accept: 'application/json' };
    if (sent) headers.Authorization = `Bearer ${sent}`;
    let res;
    try {
      res = await fetch(url, { headers, signal, cache: 'no-store', credentials: 'same-origin' });
    } catch (e) {
      if (e && e.name === 'AbortError') throw e;
      throw new ApiError(`cannot reach the aggregator (${e && e.message ? e.message : e})`);
    }
    if (res.status === 401) {
      if (res.body) await res.body.cancel().catch(() => {});
      if (token !== sent) continue; // someone entered a new token meanwhile
      const t = await askToken(asked || !!sent);
      asked = true;
      if (signal?.aborted) throw new DOMException('aborted', 'AbortError');
      if (!t) throw new ApiError('unauthorized: the API needs a bearer token (change the view or reload the page to enter it)', 401);
      token = t;
      storeToken(t);
      continue;
    }
    let body = null;
    let text = '';
    try {
      text = await res.text();
      body = JSON.parse(text);
    } catch (e) {
      if (e && e.name === 'AbortError') throw e;
      if (res.ok) throw new ApiError(`HTTP ${res.status}: the answer is not JSON`, res.status);
    }
    if (!res.ok) {
      const m = body && typeof body.error === 'string' ? body.error : `${res.status} ${res.statusText}`.trim();
      throw new ApiError(m, res.status);
    }
    return body;
  }
}

// Whether a request's error is the abort of a superseded load.
export function isAbort(e) {
  return !!e && e.name === 'AbortError';
}
