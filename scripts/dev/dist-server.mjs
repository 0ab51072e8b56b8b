// The built page (dist/) served on a free local port for the dev benchmarks, with the page's own
// Content Security Policy as a header (a meta tag does not reach the worker) and, given a models
// folder, that folder at /models/ as `scripts/serve.sh` serves it.
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { chromium } from "playwright-core";

const types = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };

/**
 * A static server on a free local port: `/` answers `index` (HTML), any other path the file under
 * the folder of its longest matching prefix in `roots` (`{ "/": dist, "/models/": models }`), with
 * `headers` on every answer; answers `{ url, close }`.
 */
export async function serveFiles({ index, roots, headers = {}, served = () => {} }) {
  const prefixes = Object.keys(roots).sort((a, b) => b.length - a.length);
  const server = createServer(async (request, response) => {
    // normalize() folds "..", so no path leaves its folder.
    const path = normalize(decodeURIComponent(new URL(request.url, "http://x").pathname));
    if (path === "/") {
      served(path, Buffer.byteLength(index));
      return response.writeHead(200, { "content-type": "text/html", ...headers }).end(index);
    }
    const prefix = prefixes.find((candidate) => path.startsWith(candidate));
    if (prefix === undefined) return response.writeHead(404).end();
    const file = join(roots[prefix], path.slice(prefix.length));
    try {
      const body = await readFile(file);
      served(path, body.length);
      response.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream", ...headers });
      response.end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => server.close() };
}

/** Serves `dist` (and `models` at /models/) with the page's CSP; answers `{ url, close }`.
 * `served(path, bytes)` hears of every answer with a body. */
export async function serveDist(dist, models = null, served = undefined) {
  const index = await readFile(join(dist, "index.html"), "utf8");
  const csp = /http-equiv="?Content-Security-Policy"?\s+content="([^"]+)"/.exec(index)?.[1];
  const roots = models ? { "/": dist, "/models/": models } : { "/": dist };
  return serveFiles({ index, roots, headers: csp ? { "content-security-policy": csp } : {}, served });
}

/** Debian's Chromium, headless, WebGPU on (SwiftShader where there is no GPU). */
export const launchChromium = () =>
  chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox", "--enable-unsafe-webgpu"] });

const long = { timeout: 1_800_000 };

/**
 * A fresh browser context with the page on `device` (cpu = burn's CPU backend in wasm, gpu =
 * WebGPU), its engine ready; answers `{ context, page, step, ready }`, where `step(label, key, start)`
 * times `start()` (a click, a file pick) until the page sets `dataset[key]` again and the engine
 * has reported its memory, and answers `{ outcome, seconds, memory }` (memory in MiB); `ready()`
 * waits until the page is no longer busy.
 */
export async function openEngine(browser, url, device) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  page.on("console", (message) => message.type() === "error" && console.error(`[${device}] ${message.text()}`));
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.engine === "ready", null, long);
  // Asked for by name: *auto* passes over a software WebGPU adapter (SwiftShader here).
  const backend = device === "cpu" ? "flex" : "WebGPU";
  if ((await page.evaluate(() => document.body.dataset.device)) !== backend) {
    await page.selectOption("#device-request", device);
    await page.waitForFunction((b) => document.body.dataset.device === b && document.body.dataset.engine === "ready", backend, long);
  }
  const ready = () => page.waitForFunction(() => !document.body.dataset.busy, null, long);
  const mib = () =>
    page.evaluate(() => Object.fromEntries(Object.entries(JSON.parse(document.body.dataset.memory)).map(([key, bytes]) => [key, Math.round(bytes / 1048576)])));
  async function step(label, key, start) {
    await ready();
    await page.evaluate((k) => {
      delete document.body.dataset[k];
      delete document.body.dataset.memory;
    }, key);
    const started = Date.now();
    await start();
    await page.waitForFunction((k) => document.body.dataset[k] && !document.body.dataset.busy, key, long);
    const seconds = (Date.now() - started) / 1000;
    await page.waitForFunction(() => document.body.dataset.memory, null, long);
    const outcome = await page.evaluate((k) => document.body.dataset[k], key);
    if (outcome === "error") throw new Error(`${device}: ${label} failed: ${await page.textContent("main")}`);
    const memory = await mib();
    // Progress on stderr (a run takes minutes); reports are JSON on stdout at the end.
    console.error(`[${device}] ${label} (${outcome}): ${seconds.toFixed(1)} s, memory ${JSON.stringify(memory)} MiB`);
    return { outcome, seconds, memory };
  }
  return { context, page, step, ready };
}
