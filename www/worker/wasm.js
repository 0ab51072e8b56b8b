// The wasm package, imported dynamically: a static import would hold the worker's message handler
// back until the module compiled, and messages posted meanwhile would be lost. `loading` settles
// once it is there (or rejects saying why not); `wasm()` is the module afterwards.
let medfocus = null;

export const loading = import("../../pkg/medfocus.js").then(
  // Also `self.medfocus`: the engine's module, for diagnostics in the worker's console and for
  // the end-to-end test that loses the GPU device on purpose.
  (module) => (medfocus = self.medfocus = module),
  (error) => {
    throw new Error(`the engine's wasm module did not load (${error?.message ?? error}); reload the page`);
  },
);

export const wasm = () => medfocus;

/** Why the GPU device was lost, if it was (null otherwise, or when the module cannot say). */
export function deviceLost() {
  try {
    return medfocus?.deviceLost() ?? null;
  } catch {
    return null;
  }
}

/** A WebAssembly abort is out of memory when the module's memory stands at its 4 GiB cap. */
export function outOfMemory() {
  try {
    const memory = medfocus?.engineMemory();
    return memory && memory.reserved >= memory.limit - (64 << 20) ? memory : null;
  } catch {
    return null;
  }
}
