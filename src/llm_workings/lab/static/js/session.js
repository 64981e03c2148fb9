// This tab's training run on the server. The run's id lives only here, in memory, so
// every tab trains its own run. Requests go one at a time, in order: a step, a step
// back and a live change never overtake each other.

import { backprop } from "./api.js";

export class Session {
  constructor({ onState, onError }) {
    this.onState = onState;
    this.onError = onError;
    this.runId = null;
    this.settings = null; // the settings the run started with (live changes are in state.changes)
    this.state = null;
    this.data = null;
    this.parameters = null;
    this.example = 0;
    this.pending = 0;
    this.tail = Promise.resolve();
    this.latencies = []; // ms per step request, as the page saw them
  }

  get busy() {
    return this.pending > 0;
  }

  // Queue `task` after every earlier request; errors go to onError and resolve to null.
  run(task) {
    this.pending++;
    const result = this.tail.then(task).then(
      (state) => {
        this.pending--;
        if (state) this.accept(state);
        return state;
      },
      (error) => {
        this.pending--;
        this.onError(error);
        return null;
      },
    );
    this.tail = result;
    return result;
  }

  accept(state) {
    if (state.data) {
      this.data = state.data;
      delete state.data;
    }
    if (state.parameters) this.parameters = state.parameters;
    this.state = state;
    this.onState(state);
  }

  // A new run; it replays `step` steps with `changes`, so a shared URL comes back exactly.
  start(settings, step = 0, changes = []) {
    return this.run(async () => {
      const state = await backprop.create({ settings, step, changes, example: this.example, history: true });
      if (this.runId) backprop.remove(this.runId);
      this.runId = state.run_id;
      this.settings = state.run_settings; // as the server applied them (it may cap the batch size)
      delete state.run_settings;
      return state;
    });
  }

  ready() {
    return this.runId !== null;
  }

  step(steps, history) {
    return this.run(async () => {
      if (!this.runId) return null;
      const t0 = performance.now();
      const state = await backprop.step(this.runId, { steps, example: this.example, history });
      this.latencies.push(performance.now() - t0);
      if (this.latencies.length > 2000) this.latencies.splice(0, 1000);
      return state;
    });
  }

  back(steps = 1) {
    return this.run(async () => (this.runId ? backprop.back(this.runId, { steps, example: this.example, history: true }) : null));
  }

  setLive(values) {
    return this.run(async () => (this.runId ? backprop.set(this.runId, { settings: values, example: this.example, history: true }) : null));
  }

  selectExample(example) {
    this.example = example;
    return this.run(async () => (this.runId ? backprop.get(this.runId, { example, history: false }) : null));
  }

  exportRun() {
    return this.run(async () => {
      if (!this.runId) return null;
      this.exported = await backprop.exportRun(this.runId);
      return null;
    }).then(() => this.exported);
  }

  close() {
    if (this.runId) backprop.remove(this.runId);
  }
}
