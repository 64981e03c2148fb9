// The Attention heads page's routes (lab/heads/routes.py), through the lab's one request helper.

import { request } from "../api.js";

export const heads = {
  schema: () => request("GET", "/api/heads/schema"),
  grid: (body) => request("POST", "/api/heads/grid", body),
  head: (body) => request("POST", "/api/heads/head", body),
  positions: (body) => request("POST", "/api/heads/positions", body),
  repeated: (body) => request("POST", "/api/prompts/repeated", body),
};
