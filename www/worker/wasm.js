// The wasm package, imported dynamically: a static import would hold the worker's message handler
// back until the module compiled, and messages posted meanwhile would be lost. `loading` settles
// once it is there (or rejects saying why not); `wasm()` is the module afterwards.
let medfocus = null;
/** The threaded CPU module, once `useThreads` has started it. */
let threadedModule = null;

export const loading = import("../../pkg/medfocus.js").then(
  // Also `self.medfocus`: the engine's module, for diagnostics in the worker's console and for
  // the end-to-end test that loses the GPU device on purpose.
  (module) => (medfocus = self.medfocus = module),
  (error) => {
    throw new Error(`the engine's wasm module did not load (${error?.message ?? error}); reload the page`);
  },
);

export const wasm = () => medfocus;

/**
 * All of this computer's cores for the CPU backend: where the page is cross-origin isolated (its
 * host sends COOP and COEP, so SharedArrayBuffer exists) and the engine computes on the CPU, the
 * threaded CPU module (pkg-threads/, scripts/build-threads.sh: burn's CPU backend with its thread
 * pool on Web Workers, no WebGPU) takes over from the main one. Answers `{threads, why}`: the
 * threads it runs on, and why only one where that is so; a module that fails to load rejects,
 * and the main one stays.
 */
export async function useThreads() {
  if (!self.crossOriginIsolated) return { threads: 1, why: "the page is not cross-origin isolated (its host sends no COOP/COEP headers)" };
  const threads = Math.min(navigator.hardwareConcurrency ?? 1, 16);
  if (threads < 2) return { threads: 1, why: "this computer reports one core" };
  // Once per worker: a thread pool cannot be started twice.
  if (threadedModule) return { threads, why: null };
  const threaded = await import("../../pkg-threads/medfocus.js");
  await threaded.default();
  await threaded.initThreadPool(threads);
  await threaded.initDevice("cpu");
  medfocus = self.medfocus = threadedModule = threaded;
  return { threads, why: null };
}

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
