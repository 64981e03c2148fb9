// The "Inside a transformer" page's routes (lab/inside/routes.py), through the lab's one request helper.

import { request } from "../api.js";

export const inside = {
  schema: () => request("GET", "/api/inside/schema"),
  walk: (body) => request("POST", "/api/inside/walk", body),
};
