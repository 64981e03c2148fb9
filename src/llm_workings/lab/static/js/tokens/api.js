// The Tokens page's routes (lab/tokens/routes.py). Errors keep the server's message and field.

import { ApiError } from "../api.js";

async function post(path, body) {
  let response;
  try {
    response = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(`The lab server did not answer (${e.message}). Is \`llmw lab\` still running?`, 0, null);
  }
  let payload;
  try {
    payload = await response.json();
  } catch {
    throw new ApiError(`The server answered ${response.status} without JSON.`, response.status, null);
  }
  if (!response.ok) throw new ApiError(payload.error || `HTTP ${response.status}`, response.status, payload.field ?? null);
  return payload;
}

export const tokens = {
  async schema() {
    const response = await fetch("/api/tokens/schema");
    if (!response.ok) throw new ApiError(`The schema did not load (HTTP ${response.status}).`, response.status, null);
    return response.json();
  },
  predict: (body) => post("/api/tokens/predict", body),
  reshape: (body) => post("/api/tokens/reshape", body),
  sample: (body) => post("/api/tokens/sample", body),
};
