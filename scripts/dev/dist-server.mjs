// The built page (dist/) served on a free local port for the dev benchmarks, with the page's own
// Content Security Policy as a header (a meta tag does not reach the worker) and, given a models
// folder, that folder at /models/ as `scripts/serve.sh` serves it.
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { chromium } from "playwright-core";

const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };

/** Serves `dist` (and `models` at /models/); answers `{ url, close }`. */
export async function serveDist(dist, models = null) {
  const html = await readFile(join(dist, "index.html"), "utf8");
  const csp = /http-equiv="?Content-Security-Policy"?\s+content="([^"]+)"/.exec(html)?.[1];
  const server = createServer(async (request, response) => {
    const path = normalize(decodeURIComponent(new URL(request.url, "http://x").pathname));
    const file = models && path.startsWith("/models/") ? join(models, path.slice("/models/".length)) : join(dist, path === "/" ? "index.html" : path);
    try {
      const body = await readFile(file);
      const headers = { "content-type": types[extname(file)] ?? "application/octet-stream" };
      if (csp) headers["content-security-policy"] = csp;
      response.writeHead(200, headers);
      response.end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => server.close() };
}

/** Debian's Chromium, headless, WebGPU on (SwiftShader where there is no GPU). */
export const launchChromium = () =>
  chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox", "--enable-unsafe-webgpu"] });
