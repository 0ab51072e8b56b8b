// Drawing, as functions of the state: the base canvas holds exactly the pixels CLIP's
// preprocessing receives (the visual prompt drawn in by wasm, the same code as classification);
// the overlay holds what only the person sees (mask outline under focus modes that leave the
// pixels alone, box, points, crop); the input canvas is CLIP's input after resize and crop.
import { $ } from "./dom.js";
import { drawsIntoPixels, needsRegion } from "./state.js";

/** The mask's border (cyan, a few pixels wide at large sizes) on a transparent layer. */
export function outlineOf(mask, width, height) {
  const outline = new ImageData(width, height);
  const words = new Uint32Array(outline.data.buffer);
  const step = Math.max(1, Math.round(width / 500));
  const cyan = 0xffffdc00; // little-endian RGBA (0, 220, 255, 255)
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      if (!mask[row + x]) continue;
      const border =
        x < step || y < step || x >= width - step || y >= height - step ||
        !mask[row + x - step] || !mask[row + x + step] || !mask[row - step * width + x] || !mask[row + step * width + x];
      if (border) words[row + x] = cyan;
    }
  }
  return outline;
}

/** A mask as a canvas of at most 96 px a side (sampled: a full-size one would block the thread). */
export function thumbnailOf(choice) {
  const scale = Math.min(1, 96 / Math.max(choice.width, choice.height));
  const width = Math.max(1, Math.round(choice.width * scale));
  const height = Math.max(1, Math.round(choice.height * scale));
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const pixels = new ImageData(width, height);
  const words = new Uint32Array(pixels.data.buffer);
  for (let y = 0; y < height; y++) {
    const row = Math.min(choice.height - 1, Math.floor(y / scale)) * choice.width;
    for (let x = 0; x < width; x++) {
      // Little-endian RGBA: opaque white inside, opaque black outside.
      words[y * width + x] = choice.mask[row + Math.min(choice.width - 1, Math.floor(x / scale))] ? 0xffffffff : 0xff000000;
    }
  }
  canvas.getContext("2d").putImageData(pixels, 0, 0);
  return canvas;
}

/** A mask as a black-and-white PNG (white = region), what `--mask` takes. */
export async function maskPng(mask) {
  if (mask.maskPng) return new Blob([mask.maskPng], { type: "image/png" });
  const canvas = new OffscreenCanvas(mask.width, mask.height);
  const pixels = new ImageData(mask.width, mask.height);
  const words = new Uint32Array(pixels.data.buffer);
  for (let i = 0; i < mask.mask.length; i++) words[i] = mask.mask[i] ? 0xffffffff : 0xff000000;
  canvas.getContext("2d").putImageData(pixels, 0, 0);
  return canvas.convertToBlob({ type: "image/png" });
}

let drawn = null; // what the canvases show now: redrawn only when one of these changed

/** The image, CLIP's input and their captions, from `state` (and the focus chosen in the form). */
export function drawStage(state, focusChosen) {
  const { image, view, generation, segmentation, region, models } = state;
  const inputs = { image, view, generation, segmentation, box: region.box?.join(","), points: JSON.stringify(region.points), focusChosen, clip: models.clip, error: state.viewError };
  if (drawn && Object.keys(inputs).every((key) => inputs[key] === drawn[key])) return;
  drawn = inputs;
  const current = image && view && view.generation === generation ? view : null;
  $("canvas-stack").classList.toggle("shown", Boolean(image));
  if (image) {
    for (const canvas of [$("image-canvas"), $("overlay-canvas")]) {
      if (canvas.width !== image.width || canvas.height !== image.height) {
        canvas.width = image.width;
        canvas.height = image.height;
      }
    }
    // The stack keeps the image's aspect within 72 % of the window's height.
    $("canvas-stack").style.maxWidth = `${(72 * image.width) / image.height}vh`;
    $("view-caption").textContent = drawImage(state, current, focusChosen);
  } else {
    $("view-caption").textContent = "";
  }
  drawInput(current, Boolean(models.clip));
}

function drawImage({ image, segmentation, region, models, viewError }, current, focusChosen) {
  const base = $("image-canvas").getContext("2d");
  // The crop focus hands the tower a smaller picture: the full image stays on the canvas, the
  // cropped one is the input thumbnail.
  const sameSize = current && current.focused.width === image.width && current.focused.height === image.height;
  base.putImageData(sameSize ? current.focused : image.pixels, 0, 0);

  const overlay = $("overlay-canvas").getContext("2d");
  overlay.clearRect(0, 0, image.width, image.height);
  const focus = current?.focus ?? focusChosen;
  const unit = Math.max(2, image.width / 300);
  if (segmentation && !(sameSize && drawsIntoPixels(focus))) {
    // putImageData ignores compositing: draw the outline through a scratch canvas.
    const scratch = new OffscreenCanvas(image.width, image.height);
    scratch.getContext("2d").putImageData(segmentation.outline, 0, 0);
    overlay.drawImage(scratch, 0, 0);
  }
  if (region.box) {
    const [left, top, right, bottom] = region.box;
    overlay.lineWidth = unit;
    overlay.strokeStyle = "#ffcc00";
    overlay.strokeRect(left, top, right - left, bottom - top);
  }
  for (const [x, y, label] of region.points) {
    overlay.beginPath();
    overlay.arc(x, y, unit * 2.5, 0, 2 * Math.PI);
    overlay.fillStyle = label ? "#23c552" : "#e5484d";
    overlay.fill();
    overlay.lineWidth = unit / 2;
    overlay.strokeStyle = "#fff";
    overlay.stroke();
  }
  if (sameSize) {
    const [left, top, right, bottom] = current.crop;
    if (left > 0.5 || top > 0.5 || right < image.width - 0.5 || bottom < image.height - 0.5) {
      overlay.setLineDash([unit * 4, unit * 3]);
      overlay.lineWidth = unit / 1.5;
      overlay.strokeStyle = "#7fd3ff";
      overlay.strokeRect(left, top, right - left, bottom - top);
      overlay.setLineDash([]);
    }
  }
  const parts = [];
  if (current && !sameSize) {
    parts.push(`The ${focus} focus hands CLIP only the region's box (grown by the margin): see CLIP's input below.`);
  } else if (current) {
    parts.push(
      drawsIntoPixels(focus)
        ? `Shown as CLIP receives it: the ${focus} focus drawn in by the same code that classifies.`
        : `Shown as CLIP receives it (the ${focus} focus leaves the pixels alone).`,
    );
    if (segmentation && !drawsIntoPixels(focus)) parts.push("The cyan outline is the mask, drawn for you only.");
    parts.push("The dashed line, when shown, is CLIP's centre crop: outside it is not seen.");
  } else if (viewError) {
    parts.push(viewError);
  } else if (models.clip && needsRegion(focusChosen) && !segmentation && !region.box) {
    parts.push(`The ${focusChosen} focus needs a region: drag a box, or segment with SAM 2.`);
  }
  return parts.join(" ");
}

function drawInput(current, clipLoaded) {
  const canvas = $("input-canvas");
  canvas.hidden = !current;
  if (!current) {
    canvas.width = canvas.height = 0;
    $("input-caption").textContent = clipLoaded ? "" : "CLIP's input appears here once a model is loaded.";
    return;
  }
  canvas.width = canvas.height = current.inputSize;
  const context = canvas.getContext("2d");
  context.putImageData(current.input, 0, 0);
  let caption = `CLIP's input: ${current.inputSize} × ${current.inputSize} px after resize and centre crop`;
  if (current.patchWeights) {
    // The attention focus: darker patches are the ones the bias turns attention away from.
    const cell = current.inputSize / current.grid;
    for (let row = 0; row < current.grid; row++) {
      for (let column = 0; column < current.grid; column++) {
        const weight = current.patchWeights[row * current.grid + column];
        context.fillStyle = `rgba(0, 0, 0, ${(0.6 * (1 - weight)).toFixed(3)})`;
        context.fillRect(column * cell, row * cell, cell, cell);
      }
    }
    caption += `; shaded: the ${current.grid}×${current.grid} patches the attention bias turns away from`;
  }
  $("input-caption").textContent = `${caption}.`;
}

let heatDrawn = null; // the explanation on the heat canvas now

/** The last result's heat-map over the image (transparent where the model saw nothing), at the
 * opacity the slider says; hidden when there is none or it belongs to another image. */
export function drawHeat({ image, lastResult }, opacity) {
  const explanation = image && lastResult?.kind !== "comparison" ? lastResult?.result?.explanation : null;
  const fits = Boolean(explanation && explanation.width === image.width && explanation.height === image.height);
  const canvas = $("heat-canvas");
  canvas.classList.toggle("shown", fits);
  canvas.style.opacity = String(opacity);
  if (!fits || heatDrawn === explanation) return;
  heatDrawn = explanation;
  canvas.width = image.width;
  canvas.height = image.height;
  const { heatRgba } = explanation;
  const pixels = new ImageData(new Uint8ClampedArray(heatRgba.buffer, heatRgba.byteOffset, heatRgba.length), image.width, image.height);
  canvas.getContext("2d").putImageData(pixels, 0, 0);
}
