// The engine: every piece of model work runs here, in a dedicated Web Worker, so that the page's
// thread only draws and stays responsive while SAM 2 or CLIP compute for seconds. It owns the
// wasm module, the device, the models, the current image and the stored model files (OPFS); the
// page talks to it by messages (see www/engine.js): {id, op, args} in; {id, type: "progress" |
// "done" | "error", …} out.
// Messages are handled strictly one at a time: wasm-side state (the models, SAM 2's last image
// embedding) must never be entered by a second request while the first awaits the device.
//
// The parts: worker/wasm.js (the module), worker/io.js (reading Files), worker/store.js (the
// OPFS model store), worker/site.js (this site's models), worker/ops.js (the operations).
import { ops } from "./worker/ops.js";
import { deviceLost, loading, outOfMemory } from "./worker/wasm.js";

let queue = Promise.resolve();

self.onmessage = ({ data: { id, op, args } }) => {
  queue = queue.then(async () => {
    const progress = (report) => self.postMessage({ id, type: "progress", ...report });
    try {
      // A module that failed to load fails every request, saying why, instead of leaving it unanswered.
      await loading;
      // A lost device fails whatever runs next, or hangs it: refuse at once instead.
      if (deviceLost()) throw new Error("the request was not started");
      const handler = ops[op];
      if (!handler) throw new Error(`unknown operation ${op}`);
      const answer = await handler(args ?? {}, progress);
      // An op returns either a plain value or {value, transfer} to hand buffers over uncopied.
      if (answer && typeof answer === "object" && "transfer" in answer && "value" in answer) {
        self.postMessage({ id, type: "done", value: answer.value }, answer.transfer);
      } else {
        self.postMessage({ id, type: "done", value: answer });
      }
    } catch (error) {
      // A Rust panic aborts the wasm module (a RuntimeError): nothing in it can be trusted any
      // more, and the page must start a fresh engine. So too when the GPU device was lost (a
      // driver reset, the browser reclaiming the GPU): every later use of it fails, and only a
      // fresh engine opens a new one.
      const lost = deviceLost();
      const fatal = error instanceof WebAssembly.RuntimeError || Boolean(lost);
      let message = error?.message ?? String(error);
      if (lost) message = `${lost}; the engine restarts on a new device (${message})`;
      const memory = fatal && outOfMemory();
      if (memory) {
        message = `the engine ran out of memory: its WebAssembly memory reached ${Math.round(memory.reserved / 1048576)} MiB, the browser's cap for a page (${message}); the engine restarts — load fewer or smaller models`;
      }
      self.postMessage({ id, type: "error", message, fatal, deviceLost: Boolean(lost) });
    }
  });
};
