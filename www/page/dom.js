// Small helpers for the page's DOM and its words; no state.

export const $ = (id) => document.getElementById(id);

/** Fills a <dl> with [term, value, class?] entries. */
export function fill(list, entries) {
  list.replaceChildren();
  for (const [term, value, cls] of entries) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    if (cls) dd.className = cls;
    list.append(dt, dd);
  }
}

/** Files dropped on `target` go to `take`; `highlighted` shows that a drop would land. */
export function acceptDrops(target, highlighted, take) {
  target.addEventListener("dragover", (event) => {
    event.preventDefault();
    highlighted.classList.add("over");
  });
  target.addEventListener("dragleave", () => highlighted.classList.remove("over"));
  target.addEventListener("drop", (event) => {
    event.preventDefault();
    highlighted.classList.remove("over");
    take(event.dataTransfer.files);
  });
}

/** Hands `blob` to the browser as a download named `name` (nothing leaves the machine). */
export function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export const mib = (bytes) => `${Math.round(bytes / 1048576)} MiB`;
export const megabytes = (bytes) => (bytes < 1e5 ? `${(bytes / 1e3).toFixed(1)} kB` : `${(bytes / 1e6).toFixed(1)} MB`);
export const message = (error) => error?.message ?? String(error);
export const kindNames = { clip: "CLIP", sam2: "SAM 2", head: "head" };
