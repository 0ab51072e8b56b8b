// What the browser benchmarks share about onnxruntime-web (browser_side_by_side.mjs,
// browser_threads.mjs): the pinned version installed once outside the clone, the timed runs in
// its page, and the median they report.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export const ORT_WEB_VERSION = "1.31.1";

/** onnxruntime-web, pinned, installed once outside the clone; answers its dist folder. */
export function installOrtWeb() {
  const prefix = join(homedir(), ".cache", "medfocus", "onnxruntime-web");
  const distDir = join(prefix, "node_modules", "onnxruntime-web", "dist");
  const manifest = join(prefix, "node_modules", "onnxruntime-web", "package.json");
  let installed = null;
  if (existsSync(manifest)) installed = JSON.parse(readFileSync(manifest, "utf8")).version;
  if (installed !== ORT_WEB_VERSION) {
    console.error(`installing onnxruntime-web@${ORT_WEB_VERSION} into ${prefix}`);
    execFileSync("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", prefix, `onnxruntime-web@${ORT_WEB_VERSION}`], { stdio: "inherit" });
  }
  return distDir;
}

/**
 * In a page with onnxruntime-web (its files at /ort/): one session on `threads` threads (more than
 * one needs a cross-origin isolated page), a fixed input (the benches' pattern, scaled to about
 * ±2), the first run and `runs` more, timed. Passed to `page.evaluate`, so it uses nothing from here.
 */
export async function runOrt({ url, shape, runs, provider, level, threads = 1 }) {
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.wasmPaths = "/ort/";
  const started = performance.now();
  const session = await ort.InferenceSession.create(url, { executionProviders: [provider], graphOptimizationLevel: level });
  const loadMs = performance.now() - started;
  const size = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(size);
  for (let i = 0; i < size; i++) data[i] = ((i % 251) / 250 - 0.5) * 4;
  const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", data, shape) };
  const times = [];
  for (let run = 0; run <= runs; run++) {
    const begun = performance.now();
    const outputs = await session.run(feeds);
    // The outputs are on the CPU when run resolves (WebGPU included: read back by default).
    times.push(performance.now() - begun);
    for (const output of Object.values(outputs)) output.dispose?.();
  }
  await session.release();
  return { loadMs, times, isolated: self.crossOriginIsolated };
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
