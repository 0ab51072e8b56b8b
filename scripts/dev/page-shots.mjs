// Usage: node scripts/dev/page-shots.mjs DIST OUT  (after scripts/serve.sh --build-only; for looking, not a test)
// The page as a person sees it, at the sizes people use (a laptop 1280×800, a portrait tablet
// 800×1000, a phone 390×844), light and dark, at each step: the first visit; the test models
// and the example image; a box segmented by SAM 2; a classification with its heat-map; the focus
// modes compared — the panel of each step scrolled into view. Writes OUT/<size>-<scheme>-<step>.png and prints, per shot, whether the page
// scrolls sideways and whether the image and the answer are both in view.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { launchChromium, serveDist } from "./dist-server.mjs";

const [dist, out] = process.argv.slice(2);
const root = new URL("../..", import.meta.url).pathname;
const fixtures = join(root, "tests", "fixtures");
const sizes = [
  ["1280x800", 1280, 800],
  ["800x1000", 800, 1000],
  ["390x844", 390, 844],
];
const long = { timeout: 600_000 };

await mkdir(out, { recursive: true });
const server = await serveDist(dist);
const browser = await launchChromium();
const facts = [];

/** What a shot shows: sideways scrolling, and whether image and results are in the viewport. */
const layout = (page) =>
  page.evaluate(() => {
    const visible = (id) => {
      const box = document.getElementById(id).getBoundingClientRect();
      return box.height > 0 && box.top < innerHeight && box.bottom > 0;
    };
    return {
      sideways: document.documentElement.scrollWidth > document.documentElement.clientWidth,
      imageInView: visible("image-canvas"),
      resultsInView: visible("results"),
    };
  });

for (const scheme of ["light", "dark"]) {
  for (const [name, width, height] of sizes) {
    const context = await browser.newContext({ viewport: { width, height }, colorScheme: scheme });
    const page = await context.newPage();
    page.on("console", (message) => message.type() === "error" && console.error(`[${name} ${scheme}] ${message.text()}`));
    const shot = async (step) => {
      await page.screenshot({ path: join(out, `${name}-${scheme}-${step}.png`) });
      facts.push({ shot: `${name}-${scheme}-${step}`, ...(await layout(page)) });
    };
    await page.goto(server.url);
    await page.waitForFunction(() => document.body.dataset.engine === "ready", null, long);
    await shot("1-first-visit");
    const idle = () => page.waitForFunction(() => !document.body.dataset.busy, null, long);
    await page.setInputFiles("#model-input", join(fixtures, "clip", "openclip-tiny"));
    await page.waitForFunction(() => document.body.dataset.model, null, long);
    await idle();
    await page.setInputFiles("#sam2-input", join(fixtures, "sam2", "sam2.1-tiny-small.int8.bpk"));
    await page.waitForFunction(() => document.body.dataset.sam2, null, long);
    await idle();
    await page.click("#example-image");
    await page.waitForFunction(() => document.body.dataset.image, null, long);
    await idle();
    await shot("2-example-image");
    await page.fill("#region", "250,150,750,600");
    await page.dispatchEvent("#region", "change");
    await page.click("#segment-prompt");
    await page.waitForFunction(() => document.body.dataset.segmented, null, long);
    await idle();
    await page.locator("#region-panel").scrollIntoViewIfNeeded();
    await shot("3-segmented");
    await page.selectOption("#focus", "overlay");
    await page.selectOption("#explain-method", "relevancy");
    await idle();
    await page.click("#classify");
    await page.waitForFunction(() => document.body.dataset.classified && document.body.dataset.explained, null, long);
    await idle();
    await page.locator("#classify-panel").scrollIntoViewIfNeeded();
    await shot("4-classified");
    await page.evaluate(() => delete document.body.dataset.classified);
    await page.click("#compare");
    await page.waitForFunction(() => document.body.dataset.classified, null, long);
    await idle();
    await page.locator("#comparison").scrollIntoViewIfNeeded();
    await shot("5-compared");
    await context.close();
  }
}
for (const fact of facts) console.log(JSON.stringify(fact));
await browser.close();
server.close();
