// Which controls may be used now, from the state: one job at a time (the panels that could start
// another are locked meanwhile), and nothing that lacks what it needs (a model, an image, a region).
// A control that cannot be used says why (its title, which browsers show on hover and screen
// readers read), so a page full of grey buttons still tells the person what to do next.
import { $ } from "./dom.js";
import { missingFromSite } from "./session.js";
import { classesValue, focusValue, hasRegion, needsRegion } from "./state.js";

/** Enables `id` when `reason` is empty; otherwise disables it and says the reason. */
function allow(id, reason) {
  const control = $(id);
  control.disabled = Boolean(reason);
  control.title = reason || "";
}

export function renderControls(state) {
  const { busy, models, image, region, segmentation, lastResult, storage, bins, trainedHead } = state;
  const working = busy ? `wait: ${busy.label} is running (Cancel stops it)` : "";
  const noDevice = !models.device && "the engine has no device: see the device line above";
  const noClip = !models.clip && "load a CLIP model first (Models panel)";
  const noSam2 = !models.sam2 && "load a SAM 2 model first (Models panel)";
  const noImage = !image && "drop or choose an image first";
  const focus = focusValue();
  const withRegion = hasRegion();
  // The first reason that applies (a reason is a string when it applies, else false or ""),
  // the running job's first of all.
  const needs = (...reasons) => [working, ...reasons].find(Boolean) || "";

  allow("device-request", working);
  allow("device-check", needs(noDevice));
  for (const id of ["model-input", "sam2-input", "head-input"]) allow(id, needs(noDevice));
  allow("segment-prompt", needs(noSam2, noImage, !(region.box || region.points.length) && "drag a box or add points on the image first"));
  allow("segment-auto", needs(noSam2, noImage));
  allow("region-clear", needs(!(withRegion || region.points.length) && "there is no region to clear"));
  allow("region-undo", needs(!region.history.length && "nothing to undo"));
  allow("classify", needs(noClip, noImage, needsRegion(focus) && !withRegion && `the focus ${focus} needs a region: drag a box on the image or segment`));
  allow("compare", needs(noClip, noImage));
  const headNeedsRegion = models.head?.needsMask && !models.head?.automatic && !withRegion;
  allow("classify-head", needs(noClip, !models.head && "load or train a head first", noImage, headNeedsRegion && "this head was trained on regions: drag a box on the image or segment"));
  allow("export-mask", segmentation ? "" : "segment a region first");
  allow("export-result", lastResult ? "" : "classify first");
  const names = classesValue();
  const empty = names.filter((name) => !bins.get(name)?.length);
  allow(
    "train",
    needs(
      noClip,
      names.length < 2 && "name at least two classes",
      empty.length && `every class needs images; empty: ${empty.join(", ")}`,
      needsRegion(focus) && !models.sam2 && `the ${focus} focus trains on SAM 2's automatic masks: load SAM 2, or choose the focus none`,
    ),
  );
  allow("forget-models", needs(!(storage.clip || storage.sam2 || storage.head) && "nothing is kept in this browser"));
  allow("site-download", needs(noDevice, !missingFromSite().length && "nothing left to download"));
  allow("site-check", needs(noDevice));
  allow("export-head", trainedHead ? "" : "train a head first");
  // Bin and candidate buttons keep their own titles (what they add, a candidate's area).
  for (const button of document.querySelectorAll("#bins button")) button.disabled = Boolean(working) || button.dataset.empty === "1";
  for (const button of document.querySelectorAll("#candidates button")) button.disabled = Boolean(working);
}
