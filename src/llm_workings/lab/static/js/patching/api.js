// The Patching page's routes (lab/patching/routes.py) and the job routes it follows, through the lab's one request helper.

import { request } from "../api.js";

export const patching = {
  schema: () => request("GET", "/api/patching/schema"),
  pair: (body) => request("POST", "/api/patching/pair", body),
  preview: (body) => request("POST", "/api/patching/preview", body),
  sweep: (body) => request("POST", "/api/patching/sweep", body),
  path: (body) => request("POST", "/api/patching/path", body),
  ablate: (body) => request("POST", "/api/patching/ablate", body),
  job: (id) => request("GET", `/api/jobs/${id}`),
  cancel: (id) => request("POST", `/api/jobs/${id}/cancel`),
};
