// Which controls may be used now, from the state: one job at a time (the panels that could start
// another are locked meanwhile), and nothing that lacks what it needs (a model, an image, a region).
import { $ } from "./dom.js";
import { missingFromSite } from "./session.js";
import { classesValue, focusValue, hasRegion, needsRegion } from "./state.js";

export function renderControls(state) {
  const { busy, models, image, region, segmentation, lastResult, storage, bins, trainedHead } = state;
  const idle = !busy;
  const ready = Boolean(models.device);
  const focus = focusValue();
  const withRegion = hasRegion();
  $("device-request").disabled = !idle;
  $("device-check").disabled = !(idle && ready);
  for (const id of ["model-input", "sam2-input", "head-input"]) $(id).disabled = !(idle && ready);
  $("segment-prompt").disabled = !(idle && models.sam2 && image && (region.box || region.points.length));
  $("segment-auto").disabled = !(idle && models.sam2 && image);
  $("region-clear").disabled = !(idle && (withRegion || region.points.length));
  $("classify").disabled = !(idle && models.clip && image && (!needsRegion(focus) || withRegion));
  $("compare").disabled = !(idle && models.clip && image);
  const headRegion = !models.head?.needsMask || models.head?.automatic ? true : withRegion;
  $("classify-head").disabled = !(idle && models.clip && models.head && image && headRegion);
  $("export-mask").disabled = !segmentation;
  $("export-result").disabled = !lastResult;
  const names = classesValue();
  const empty = names.filter((name) => !bins.get(name)?.length);
  const trainable = names.length >= 2 && !empty.length;
  $("train").disabled = !(idle && models.clip && trainable && (!needsRegion(focus) || models.sam2));
  $("train").title = !models.clip
    ? "load a CLIP model first"
    : names.length < 2
      ? "name at least two classes"
      : empty.length
        ? `every class needs images; empty: ${empty.join(", ")}`
        : needsRegion(focus) && !models.sam2
          ? `the ${focus} focus trains on SAM 2's automatic masks: load SAM 2, or choose the focus none`
          : "";
  $("forget-models").disabled = !idle || !(storage.clip || storage.sam2 || storage.head);
  $("site-download").disabled = !(idle && ready && missingFromSite().length);
  $("site-check").disabled = !(idle && ready);
  $("export-head").disabled = !trainedHead;
  for (const button of document.querySelectorAll("#bins button")) button.disabled = !idle || button.dataset.empty === "1";
  for (const button of document.querySelectorAll("#candidates button")) button.disabled = !idle;
}
