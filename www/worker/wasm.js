// The wasm package, imported dynamically: a static import would hold the worker's message handler
// back until the module compiled, and messages posted meanwhile would be lost. `loading` settles
// once it is there (or rejects saying why not); `wasm()` is the module afterwards.
let medfocus = null;

export const loading = import("../../pkg/medfocus.js").then(
  (module) => (medfocus = module),
  (error) => {
    throw new Error(`the engine's wasm module did not load (${error?.message ?? error}); reload the page`);
  },
);

export const wasm = () => medfocus;

/** A WebAssembly abort is out of memory when the module's memory stands at its 4 GiB cap. */
export function outOfMemory() {
  try {
    const memory = medfocus?.engineMemory();
    return memory && memory.reserved >= memory.limit - (64 << 20) ? memory : null;
  } catch {
    return null;
  }
}
