// Jobs: one at a time, with progress, elapsed time and a cancel; and the one rule for a result
// that arrives for an image no longer shown.
import { Superseded } from "../engine.js";
import { $, megabytes, message } from "./dom.js";
import { changed, mark, note, state } from "./state.js";

let jobSettled = Promise.resolve(); // settles when the running job has cleaned up
const hooks = { fatal: () => {}, done: () => {} };

/** What the page does when a job's engine died (restart it) and after every job (memory). */
export function onJob({ fatal, done }) {
  Object.assign(hooks, { fatal, done });
}

/** Settles once the running job (if any) has cleaned up. */
export const settled = () => jobSettled;

function progress(report) {
  if (!state.busy) return;
  const { stage, done, total, bytes } = report;
  Object.assign(state.busy, { stage, done, total, bytes });
  changed();
}

/** Runs `work(progress)` as the one job; resolves to `{value, stale}` (stale: the image changed). */
export async function job(label, panel, work) {
  if (state.busy) throw new Error(`busy: ${state.busy.label}`);
  const startedFor = state.generation;
  let release;
  jobSettled = new Promise((resolve) => (release = resolve));
  state.busy = { label, started: performance.now(), panel };
  changed();
  try {
    const value = await work(progress);
    return { value, stale: startedFor !== state.generation };
  } catch (error) {
    if (error.fatal) setTimeout(() => hooks.fatal(error), 0);
    throw error;
  } finally {
    state.busy = null;
    changed();
    release();
    hooks.done(); // the memory peak moves with the work, not only with the models
  }
}

/**
 * Runs `work` as the one job for the image shown now and says what became of it: resolves to its
 * value, or to null when it was discarded (the image changed meanwhile, finished or failed),
 * cancelled (the engine restarted) or failed. `say` holds the words: `done` (a noun phrase for
 * the stale case, "A result for"), `what` (a segmentation), `status`/`error` (the lines' ids),
 * `marker` (the end-to-end marker) and `how` (what the marker records on success).
 */
export async function forCurrentImage(say, label, panel, work) {
  note(say.error, "");
  const name = state.image.name;
  const startedFor = state.generation;
  try {
    const { value, stale } = await job(label, panel, work);
    if (stale) {
      note(say.status, `${say.done} ${name} finished after another image was chosen; it was discarded.`);
      mark(say.marker, "discarded");
      return null;
    }
    mark(say.marker, `${name}:${say.how}`);
    return value;
  } catch (error) {
    if (error instanceof Superseded) {
      note(say.status, `${say.what[0].toUpperCase()}${say.what.slice(1)} ${message(error)}.`);
      mark(say.marker, "cancelled");
      return null;
    }
    if (startedFor !== state.generation) {
      note(say.status, `A ${say.what} of ${name} that failed after another image was chosen was discarded.`);
      mark(say.marker, "discarded");
      return null;
    }
    note(say.status, "");
    note(say.error, message(error));
    mark(say.marker, "error");
    return null;
  }
}

let ticker = null;

/** The busy bar: what runs, its stage and progress, for how long; the panel it locks. */
export function renderBusy({ busy }) {
  $("busy").classList.toggle("shown", Boolean(busy));
  for (const section of document.querySelectorAll("section")) section.removeAttribute("aria-busy");
  clearInterval(ticker);
  ticker = null;
  if (!busy) return "";
  $(busy.panel)?.setAttribute("aria-busy", "true");
  let label = busy.stage ? `${busy.label}: ${busy.stage}` : busy.label;
  const bar = $("busy-progress");
  bar.hidden = !busy.total;
  bar.title = "";
  if (busy.total) {
    bar.max = busy.total;
    bar.value = busy.done ?? 0;
    // Files: how many bytes of how many (downloads, and reading models from storage).
    if (busy.bytes || busy.total > 1 << 20) {
      bar.title = `${megabytes(busy.done ?? 0)} of ${megabytes(busy.total)}`;
      label += ` — ${bar.title}`;
    }
  }
  $("busy-label").textContent = label;
  const tick = () => ($("busy-time").textContent = `${((performance.now() - busy.started) / 1000).toFixed(1)} s`);
  tick();
  ticker = setInterval(tick, 250);
  return "1";
}
