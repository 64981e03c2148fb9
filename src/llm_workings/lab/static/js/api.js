// The lab's JSON API, as the pages and views call it. Errors keep the server's message and field.

export class ApiError extends Error {
  constructor(message, status, field) {
    super(message);
    this.status = status;
    this.field = field;
  }
}

export async function request(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(`The lab server did not answer (${e.message}). Is \`llmw lab\` still running?`, 0, null);
  }
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    throw new ApiError(`The server answered ${response.status} without JSON.`, response.status, null);
  }
  if (!response.ok) throw new ApiError(payload.error || `HTTP ${response.status}`, response.status, payload.field ?? null);
  return payload;
}

const runs = "/api/backprop/runs";

export const backprop = {
  schema: () => request("GET", "/api/backprop/schema"),
  create: (body) => request("POST", runs, body),
  step: (id, body) => request("POST", `${runs}/${id}/step`, body),
  back: (id, body) => request("POST", `${runs}/${id}/back`, body),
  set: (id, body) => request("POST", `${runs}/${id}/set`, body),
  get: (id, { example = 0, history = true } = {}) => request("GET", `${runs}/${id}?example=${example}&history=${history ? 1 : 0}`),
  exportRun: (id) => request("GET", `${runs}/${id}/export`),
  // Best effort: the tab is closing, so nobody waits for the answer.
  remove: (id) => fetch(`${runs}/${id}`, { method: "DELETE", keepalive: true }).catch(() => {}),
};
