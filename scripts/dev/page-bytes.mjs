// Usage: node scripts/dev/page-bytes.mjs DIST  (after scripts/serve.sh --build-only; a measurement, not a test)
// Bytes the site sends on a first and a second visit, counted by the server (bodies, per file):
// a fresh browser profile opens the page and waits for the engine and the offline copy; then the
// same profile opens it again. Prints one JSON line per visit.
import { launchChromium, serveDist } from "./dist-server.mjs";

const dist = process.argv[2];
let log = [];
const server = await serveDist(dist, null, (path, bytes) => log.push([path, bytes]));
const browser = await launchChromium();
const context = await browser.newContext();
const ready = { timeout: 600_000 };

for (const visit of ["first", "second"]) {
  log = [];
  const page = await context.newPage();
  await page.goto(server.url);
  await page.waitForFunction(() => document.body.dataset.engine === "ready" && document.body.dataset.offlineCopy, null, ready);
  // Whatever the service worker still fetches in the background.
  await page.waitForTimeout(3000);
  const files = {};
  for (const [path, bytes] of log) files[path] = [...(files[path] ?? []), bytes];
  const total = log.reduce((sum, [, bytes]) => sum + bytes, 0);
  console.log(JSON.stringify({ visit, requests: log.length, bytes: total, files }));
  await page.close();
}
await browser.close();
server.close();
