// The image panel: a file dropped or chosen is decoded in the engine and becomes the image shown.
import { Superseded } from "../../engine.js";
import { $, acceptDrops, fill, message } from "../dom.js";
import { engine } from "../session.js";
import { changed, mark, newImage, note, state } from "../state.js";

export async function showImage(file) {
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
    if (error instanceof Superseded) return showImage(file);
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
  for (const target of [drop, $("canvas-stack")]) acceptDrops(target, drop, (files) => files[0] && showImage(files[0]));
}

export function renderImage({ imageInfo }) {
  fill($("image-info"), imageInfo);
}
