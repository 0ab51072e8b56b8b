// The image panel: a file dropped or chosen is decoded in the engine and becomes the image shown.
import { Superseded } from "../../engine.js";
import { $, acceptDrops, fill, message } from "../dom.js";
import { engine } from "../session.js";
import { changed, mark, newImage, note, state } from "../state.js";

// The example a first visitor can try without an image of their own (www/examples/README.md:
// Kermany et al. 2018, CC BY 4.0); webpack ships it with the page, and the offline copy keeps it.
const EXAMPLE = {
  url: new URL("../../examples/chest-xray-pneumonia.jpeg", import.meta.url),
  name: "example-chest-xray-pneumonia.jpeg",
  credit: "example: pediatric chest X-ray, bacterial pneumonia — Kermany, Zhang, Goldbaum (2018), Mendeley Data, doi:10.17632/rscbjbr9sj.2, CC BY 4.0",
  classes: "normal, pneumonia",
};

/** Shows the example image; the page's default classes (brain MRI) become the X-ray's. */
async function showExample() {
  note("image-error", "");
  let file;
  try {
    const response = await fetch(EXAMPLE.url);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    file = new File([await response.blob()], EXAMPLE.name, { type: "image/jpeg" });
  } catch (error) {
    note("image-error", `The example image could not be read from this site: ${message(error)}`);
    return;
  }
  const classes = $("classes");
  if (classes.value === classes.defaultValue) {
    classes.value = EXAMPLE.classes;
    classes.dispatchEvent(new Event("input"));
  }
  showImage(file, EXAMPLE.credit);
}

export async function showImage(file, credit = null) {
  const mine = newImage(file);
  note("classify-status", "");
  note("image-error", "");
  note("segment-result", "");
  state.imageInfo = [["file", file.name], ["status", state.busy ? `waiting for ${state.busy.label}, then decoding` : "decoding…"]];
  changed();
  let decoded;
  try {
    decoded = await engine.call("decode", { file });
  } catch (error) {
    if (mine !== state.generation) return;
    state.imageInfo = [];
    changed();
    // A restart while it waited: the decode is lost with the old worker; ask again.
    if (error instanceof Superseded) return showImage(file, credit);
    note("image-error", `${file.name}: ${message(error)}`);
    state.sources.image = null;
    return;
  }
  if (mine !== state.generation) return; // another image was dropped meanwhile
  state.imageInfo = [
    ["file", decoded.name],
    ["format", decoded.format],
    ["size", `${decoded.width} × ${decoded.height} px`],
    ["channels", `${decoded.channels} × ${decoded.bitsPerChannel} bit (${decoded.layout})`],
    ["content", decoded.greyContent ? "grayscale" : "colour"],
    ...(decoded.notes.length ? [["decoded", decoded.notes.join("; ")]] : []),
    ...(credit ? [["source", credit]] : []),
  ];
  state.image = {
    name: decoded.name,
    width: decoded.width,
    height: decoded.height,
    format: decoded.format,
    pixels: new ImageData(new Uint8ClampedArray(decoded.rgba.buffer), decoded.width, decoded.height),
  };
  changed();
  mark("image", `${state.image.width}x${state.image.height}`);
}

export function wireImage() {
  const drop = $("drop");
  const input = $("file-input");
  drop.addEventListener("click", () => input.click());
  drop.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      input.click();
    }
  });
  input.addEventListener("change", () => input.files[0] && showImage(input.files[0]));
  $("example-image").addEventListener("click", showExample);
  for (const target of [drop, $("canvas-stack")]) acceptDrops(target, drop, (files) => files[0] && showImage(files[0]));
}

export function renderImage({ imageInfo }) {
  fill($("image-info"), imageInfo);
}
