// The Induction page's routes (lab/induction/routes.py), through the lab's one request helper.

import { request } from "../api.js";

export const induction = {
  schema: () => request("GET", "/api/induction/schema"),
  series: (body) => request("POST", "/api/induction/series", body),
  snapshot: (body) => request("POST", "/api/induction/snapshot", body),
};
