// The Train page's routes (lab/train/routes.py) and the job API it starts runs with, through the
// lab's one request helper.

import { request } from "../api.js";

export const train = {
  schema: () => request("GET", "/api/train/schema"),
  check: (body) => request("POST", "/api/train/check", body),
  runs: () => request("GET", "/api/train/runs"),
  history: (name) => request("GET", `/api/train/runs/${encodeURIComponent(name)}/history`),
  jobs: () => request("GET", "/api/jobs"),
  model: (id) => request("GET", `/api/models/${encodeURIComponent(id)}`),
};
