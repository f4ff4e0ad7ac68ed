// Joining a session from a page: the session id in the path, the join code in the fragment, the
// token in sessionStorage, and the small HTTP calls around them. Shared by every session page.
//
// A link is /s/<session>[/<page>]#code=<join code>. The code lives only in the fragment, which
// never reaches a server log; the page trades it for a token (POST /api/v1/join), keeps the token
// in sessionStorage for this tab only, and takes the fragment out of the address bar at once.

export const SESSION_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
const HTTP_TIMEOUT = 10000;

/** The session id of a /s/<session>/… address. */
export function sessionIdFromPath(loc = window.location) {
  try {
    return decodeURIComponent(loc.pathname.split('/')[2] || '');
  } catch (err) {
    return '';
  }
}

/**
 * Where a page keeps its token for this tab. Each page has its own key, so a display's token never
 * turns a participant's tab into a display (or the reverse).
 */
export function tokenStore(key) {
  return {
    get() {
      try {
        return window.sessionStorage.getItem(key);
      } catch (err) {
        return null;
      }
    },
    set(token) {
      try {
        if (token) window.sessionStorage.setItem(key, token);
        else window.sessionStorage.removeItem(key);
      } catch (err) {
        // Without storage the token lives in this page only; a reload asks again.
      }
    },
  };
}

/** Reads the join code from the fragment and removes the fragment from the address and history. */
export function takeCode() {
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const code = fragment.get('code');
  if (code !== null) {
    const { pathname, search } = window.location;
    window.history.replaceState(window.history.state, '', pathname + search);
  }
  return code;
}

/** A JSON request to this node: resolves with {status, data}; rejects on a network failure. */
export async function http(method, path, body) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), HTTP_TIMEOUT);
  try {
    const response = await fetch(path, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
      signal: abort.signal,
    });
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    return { status: response.status, data };
  } finally {
    clearTimeout(timer);
  }
}

/** The session as the HTTP API describes it, or null when there is no such session. */
export async function loadSession(sessionId) {
  const { status, data } = await http('GET', `/api/v1/sessions/${encodeURIComponent(sessionId)}`);
  if (status === 404) return null;
  if (status !== 200 || !data) throw new Error(`session lookup answered ${status}`);
  return data;
}

/** Trades a join code for a token: {token, role} or {error: <i18n key>}. */
export async function redeem(code, sessionId) {
  const { status, data } = await http('POST', '/api/v1/join', { code });
  if (status === 200 && data && data.token) {
    const sessions = data.sessions || [];
    if (!sessions.includes(sessionId) && !sessions.includes('*')) {
      return { error: 'join.wrong_session' };
    }
    return { token: data.token, role: data.role || '' };
  }
  if (status === 429) return { error: 'join.rate_limited' };
  if (status >= 500) throw new Error(`join answered ${status}`);
  return { error: 'join.bad_code' };
}

/** Close codes after which the token is no good any more (the person needs a new link). */
export const TOKEN_REFUSALS = new Set(['token_expired', 'unauthorized', 'session_forbidden']);

/**
 * The start of a page for one role (the console, the display): the session, then a token from the
 * link's code or from this tab's storage. Rejects on a network failure.
 *
 * @returns {Promise<{session?: object, token?: string|null, error?: string}>} `error` is an i18n
 *   key (or 'role' when the code is for a role `acceptRole` turns down).
 */
export async function sessionAndToken(sessionId, tokens, code, acceptRole = () => true) {
  if (!SESSION_ID.test(sessionId)) return { error: 'join.unknown_session' };
  const session = await loadSession(sessionId);
  if (session === null) return { error: 'join.unknown_session' };
  if (!code) return { session, token: tokens.get() };
  const result = await redeem(code, sessionId);
  if (!result.token) return { session, error: result.error };
  if (!acceptRole(result.role)) return { session, error: 'role' };
  tokens.set(result.token);
  return { session, token: result.token };
}

/**
 * What to tell a person whose connection the server closed for good: an i18n key and its
 * parameters, and whether their token is spent (so the page forgets it).
 */
export function refusal(error) {
  const code = (error && error.code) || 'closed';
  if (TOKEN_REFUSALS.has(code)) {
    const key = code === 'session_forbidden' ? 'join.wrong_session' : 'join.expired';
    return { key, spent: true };
  }
  if (code === 'unknown_session') return { key: 'join.unknown_session', spent: false };
  return { key: 'join.refused', params: { code }, spent: false, retry: true };
}
