// The Grokking page's routes (lab/grokking/routes.py), through the lab's one request helper.

import { request } from "../api.js";

export const grokking = {
  series: (body) => request("POST", "/api/grokking/series", body),
  snapshot: (body) => request("POST", "/api/grokking/snapshot", body),
};
