// The page's handle on the worker (www/worker.js) that does all model work: requests as
// promises, progress as callbacks, and a restart that cancels whatever runs (wasm cannot be
// interrupted mid-computation, so a cancel ends the worker and a fresh one reloads the models).

/** A request that did not finish because the engine was restarted (cancel, device switch). */
export class Superseded extends Error {
  constructor(reason) {
    super(reason);
    this.name = "Superseded";
  }
}

export class Engine {
  constructor() {
    this.pending = new Map();
    this.nextId = 1;
    // Started by the first request, not here: the page starts the engine once its offline copy
    // (www/sw.js) controls it, so that the worker and its wasm module come through the copy.
    this.worker = null;
  }

  start() {
    this.worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module", name: "medfocus-engine" });
    this.worker.onmessage = ({ data }) => this.receive(data);
    // A worker that fails to load or dies takes every request with it.
    this.worker.onerror = (event) => {
      event.preventDefault?.();
      this.failAll(new Error(`the engine stopped: ${event.message ?? "unknown error"}`));
    };
  }

  receive(message) {
    const request = this.pending.get(message.id);
    if (!request) return;
    if (message.type === "progress") {
      request.onProgress?.(message);
      return;
    }
    this.pending.delete(message.id);
    if (message.type === "done") {
      request.resolve(message.value);
    } else {
      const error = new Error(message.message);
      error.fatal = Boolean(message.fatal);
      error.deviceLost = Boolean(message.deviceLost);
      request.reject(error);
      if (error.fatal) this.onFatal?.(error);
    }
  }

  failAll(error) {
    for (const request of this.pending.values()) request.reject(error);
    this.pending.clear();
  }

  /** Runs `op` in the worker; `transfer` lists buffers handed over uncopied. */
  call(op, args = {}, { onProgress, transfer = [] } = {}) {
    const id = this.nextId++;
    if (!this.worker) this.start();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      this.worker.postMessage({ id, op, args }, transfer);
    });
  }

  /** Ends the worker (and whatever it computes) and starts a fresh one, with nothing loaded. */
  restart(reason) {
    this.worker?.terminate();
    this.failAll(new Superseded(reason));
    this.start();
  }
}
