// The Tokens page's routes (lab/tokens/routes.py), through the lab's one request helper.

import { request } from "../api.js";

export const tokens = {
  schema: () => request("GET", "/api/tokens/schema"),
  predict: (body) => request("POST", "/api/tokens/predict", body),
  reshape: (body) => request("POST", "/api/tokens/reshape", body),
  sample: (body) => request("POST", "/api/tokens/sample", body),
};
