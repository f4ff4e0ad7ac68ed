// The operator dashboard's requests: the token from an operator's link, JSON calls with the Bearer
// header, and report downloads saved from a blob (the token never goes into a URL).

import { http, takeCode, tokenStore } from './join.js';

const HTTP_TIMEOUT = 10000;
export const tokens = tokenStore('podium.token.operator');

/**
 * The token to use: from the link's code (traded once, then kept for this tab) or from this tab.
 * @returns {Promise<{token?: string, error?: string}>} `error` is an i18n key.
 */
export async function operatorToken() {
  const code = takeCode();
  if (code) {
    const { status, data } = await http('POST', '/api/v1/join', { code });
    if (status === 200 && data && data.token) {
      if (data.role !== 'operator') return { error: 'op.wrong_role' };
      tokens.set(data.token);
      return { token: data.token };
    }
    if (status === 429) return { error: 'join.rate_limited' };
    if (status >= 500) throw new Error(`join answered ${status}`);
    return { error: 'join.bad_code' };
  }
  const token = tokens.get();
  return token ? { token } : { error: 'op.need_link' };
}

async function request(method, path, token, body) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), HTTP_TIMEOUT);
  try {
    const headers = { Authorization: `Bearer ${token}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    return await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
      signal: abort.signal,
    });
  } finally {
    clearTimeout(timer);
  }
}

/** A JSON call with the token: resolves with {status, data}; rejects on a network failure. */
export async function api(method, path, token, body) {
  const response = await request(method, path, token, body);
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = null;
  }
  return { status: response.status, data };
}

/** The name a download is saved under: the server's, else `fallback`. */
function filename(response, fallback) {
  const disposition = response.headers.get('Content-Disposition') || '';
  const match = /filename="?([\w.-]+)"?/.exec(disposition);
  return match ? match[1] : fallback;
}

/** Fetches a report with the token and saves it; resolves with the HTTP status. */
export async function download(path, token, fallback) {
  const response = await request('GET', path, token);
  if (!response.ok) return response.status;
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = filename(response, fallback);
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  return response.status;
}
