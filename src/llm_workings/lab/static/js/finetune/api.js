// The Fine-tuning page's routes (lab/finetune/routes.py), through the lab's one request helper.
// Starting, pausing, resuming and cancelling a run go through the job panel (/api/jobs).

import { request } from "../api.js";

export const finetune = {
  schema: () => request("GET", "/api/fine-tuning/schema"),
  runs: () => request("GET", "/api/fine-tuning/runs"),
  run: (name) => request("GET", `/api/fine-tuning/runs/${encodeURIComponent(name)}`),
  generate: (body) => request("POST", "/api/fine-tuning/generate", body),
  spectra: (run) => request("POST", "/api/fine-tuning/spectra", { run }),
  lambda: (run) => request("POST", "/api/fine-tuning/lambda", { run }),
};
