// The page: draws and takes input. Every piece of model work (decoding, SAM 2, CLIP, heads) runs
// in the engine's Web Worker (www/worker.js through www/engine.js), so this thread never blocks.
// Nothing is sent anywhere: files are read and computed on in this tab.
//
// The shape: page/state.js holds the one mutable state; every change calls `changed()`, and the
// page is drawn from the state by `render` below, once per change. page/jobs.js runs one job at
// a time (busy bar, progress, cancel, the rule for a result that arrives for an image no longer
// shown); page/session.js owns the engine, its device and models (reloaded after every restart),
// what this browser keeps and this site's models; page/view.js keeps CLIP's view of the image in
// step; page/canvas.js draws. One module per panel in page/panels/: models, image, region,
// classify, train. Models that loaded are kept in this browser's storage (the worker's OPFS
// store) and come back on the next visit, checked; a head's recorded mask settings are used as
// recorded.
import { $ } from "./page/dom.js";
import { drawHeat, drawStage } from "./page/canvas.js";
import { renderControls } from "./page/controls.js";
import { onJob, renderBusy } from "./page/jobs.js";
import { renderClassify, wireClassify } from "./page/panels/classify.js";
import { renderImage, wireImage } from "./page/panels/image.js";
import { renderModels, wireModels } from "./page/panels/models.js";
import { renderRegion, wireRegion } from "./page/panels/region.js";
import { renderTrain, wireTrain } from "./page/panels/train.js";
import { restartEngine, showMemory } from "./page/session.js";
import { changed, focusValue, state, subscribe } from "./page/state.js";
import { syncView } from "./page/view.js";

function render() {
  const busy = renderBusy(state);
  const { stored, site } = renderModels(state);
  renderImage(state);
  drawStage(state, focusValue());
  drawHeat(state, Number($("heat-opacity").value) / 100);
  renderRegion(state);
  renderClassify(state);
  renderTrain(state);
  for (const [id, text] of Object.entries(state.notes)) $(id).textContent = text;
  renderControls(state);
  // What the state says now, for the end-to-end suite.
  Object.assign(document.body.dataset, { busy, stored, site });
  syncView();
}

subscribe(render);
onJob({
  fatal: (error) =>
    error.deviceLost
      ? restartEngine("on a new device after the GPU device was lost", "was stopped by the GPU device's loss")
      : restartEngine("after an internal error in the engine", "was stopped by an internal error"),
  done: showMemory,
});
wireModels();
wireImage();
wireRegion();
wireClassify();
wireTrain();
$("focus").addEventListener("change", changed);
$("cancel").addEventListener("click", () => state.busy && restartEngine("after a cancel", "was cancelled"));

/**
 * The page's offline copy (production builds only: the development server has no sw.js). Once it
 * controls the page, a restarted engine and a reload need no network. Resolves once it controls
 * the page, or it cannot (no service workers, a development build, a failed install: 5 s at most).
 */
async function offlineCopy() {
  if (!("serviceWorker" in navigator)) return;
  const controlled = () => Boolean(navigator.serviceWorker.controller);
  try {
    await navigator.serviceWorker.register("sw.js");
    const claimed = new Promise((resolve) => navigator.serviceWorker.addEventListener("controllerchange", resolve, { once: true }));
    await Promise.race([navigator.serviceWorker.ready.then(() => controlled() || claimed), new Promise((resolve) => setTimeout(resolve, 5000))]);
  } catch {
    // No offline copy: the page works as a plain page.
  }
  document.body.dataset.offlineCopy = controlled() ? "ready" : "none";
}

// The engine starts once the offline copy controls the page: its 45 MB wasm module is then
// fetched once, through the copy, which keeps it (otherwise the engine and the copy each fetch it).
offlineCopy().finally(() => restartEngine(null));
