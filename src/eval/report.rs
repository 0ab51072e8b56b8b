//! The evaluation's report folder:
//!
//! | file | what |
//! |---|---|
//! | `manifests/*.json` | each run's images (see [`super::protocol`]) |
//! | `runs.jsonl` | one line per finished run: its identity, every metric, the chosen hyper-parameters |
//! | `predictions.jsonl` | one line per test image per run: truth, probabilities, mask source |
//! | `runs.csv` | `runs.jsonl` as a table |
//! | `masks.jsonl` | per image with a ground-truth mask: Dice and IoU of SAM 2's region against it |
//! | `localisation.jsonl` | per image with a ground-truth lesion, focus and explanation method: the heat-map's energy inside it and the pointing game (`--localisation`) |
//! | `report.md` | tables laid out like the paper's: rows = focus × head, columns = protocol points, cells = mean ± std over seeds |
//! | `accuracy.png` | accuracy against the protocol points per focus × head, error bars over seeds ([`super::plots`]) |
//! | `confusion.png` | the confusion matrices at the largest protocol point, summed over seeds |
//!
//! A run's predictions are appended before its line in `runs.jsonl`, so a run is recorded only
//! once everything it produced is on disk; a killed evaluation leaves at most a torn last line
//! and orphan predictions, both dropped when the folder is opened again. Every figure in
//! `report.md` and `runs.csv` is computed from the runs' records, which come from the same
//! predictions that `predictions.jsonl` holds.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use super::metrics::mean_std;
use super::plots;
use super::protocol::{Manifest, Protocol};
use super::records::{EvalError, LocalisationRecord, MaskRecord, PredictionRecord, RunRecord};
use super::summary::{ReportContext, summed_confusions};
use crate::heads::train::cache;

pub const RUNS: &str = "runs.jsonl";
pub const PREDICTIONS: &str = "predictions.jsonl";
pub const RUNS_CSV: &str = "runs.csv";
pub const REPORT: &str = "report.md";
pub const MANIFESTS: &str = "manifests";
pub const MASKS: &str = "masks.jsonl";
pub const LOCALISATION: &str = "localisation.jsonl";
pub const ACCURACY_PLOT: &str = "accuracy.png";
pub const CONFUSION_PLOT: &str = "confusion.png";

fn output_error(path: &Path, error: impl std::fmt::Display) -> EvalError {
    EvalError::Output(format!("{}: {error}", path.display()))
}

/// Never half a file (see [`cache::write_atomic`]).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), EvalError> {
    cache::write_atomic(path, bytes).map_err(|error| output_error(path, error))
}

pub struct ReportFolder {
    dir: PathBuf,
}

impl ReportFolder {
    /// Opens (creating) `dir` and returns the runs it already records; `fresh` discards them.
    pub fn open(dir: &Path, fresh: bool) -> Result<(Self, Vec<RunRecord>), EvalError> {
        fs::create_dir_all(dir.join(MANIFESTS)).map_err(|error| output_error(dir, error))?;
        let folder = Self {
            dir: dir.to_path_buf(),
        };
        if fresh {
            for name in [RUNS, PREDICTIONS, RUNS_CSV, REPORT, MASKS] {
                let path = dir.join(name);
                if path.exists() {
                    fs::remove_file(&path).map_err(|error| output_error(&path, error))?;
                }
            }
        }
        let runs = folder.read_lines::<RunRecord>(RUNS, &|_| true)?;
        let recorded: BTreeSet<String> = runs.iter().map(|run| run.run.clone()).collect();
        // Predictions of a run that never got its line (killed in between) are dropped.
        folder.read_lines::<PredictionRecord>(PREDICTIONS, &|prediction| {
            recorded.contains(&prediction.run)
        })?;
        Ok((folder, runs))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The records of `name` that parse and `keep` accepts; the file is rewritten to exactly
    /// those when anything was dropped (a torn line, an orphan).
    fn read_lines<T: serde::de::DeserializeOwned + serde::Serialize>(
        &self,
        name: &str,
        keep: &dyn Fn(&T) -> bool,
    ) -> Result<Vec<T>, EvalError> {
        let path = self.dir.join(name);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(output_error(&path, error)),
        };
        let mut kept = Vec::new();
        let mut kept_lines = String::new();
        let mut dropped = false;
        for line in BufReader::new(file).lines() {
            let line = line.map_err(|error| output_error(&path, error))?;
            match serde_json::from_str::<T>(&line) {
                Ok(record) if keep(&record) => {
                    kept_lines.push_str(&line);
                    kept_lines.push('\n');
                    kept.push(record);
                }
                _ => dropped = true,
            }
        }
        if dropped {
            write_atomic(&path, kept_lines.as_bytes())?;
        }
        Ok(kept)
    }

    fn append_lines(&self, name: &str, lines: &str) -> Result<(), EvalError> {
        let path = self.dir.join(name);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|error| output_error(&path, error))?;
        file.write_all(lines.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|error| output_error(&path, error))
    }

    /// Records one finished run: its predictions, then its line.
    pub fn append(
        &self,
        record: &RunRecord,
        predictions: &[PredictionRecord],
    ) -> Result<(), EvalError> {
        let mut lines = String::new();
        for prediction in predictions {
            lines.push_str(
                &serde_json::to_string(prediction).map_err(|e| EvalError::Output(e.to_string()))?,
            );
            lines.push('\n');
        }
        self.append_lines(PREDICTIONS, &lines)?;
        let mut line =
            serde_json::to_string(record).map_err(|e| EvalError::Output(e.to_string()))?;
        line.push('\n');
        self.append_lines(RUNS, &line)
    }

    /// `manifests/<protocol>-seed-<seed>.json`; returns the path.
    pub fn write_manifest(&self, manifest: &Manifest) -> Result<PathBuf, EvalError> {
        let path = self.dir.join(MANIFESTS).join(manifest.file_name());
        write_atomic(&path, &manifest.to_bytes())?;
        Ok(path)
    }

    /// `runs.csv`, `report.md` and the plots from every recorded run.
    pub fn write_summary(
        &self,
        runs: &[RunRecord],
        context: &ReportContext,
    ) -> Result<(), EvalError> {
        write_atomic(&self.dir.join(RUNS_CSV), &runs_csv(runs)?)?;
        if !context.mask_quality.is_empty() {
            write_atomic(&self.dir.join(MASKS), &json_lines(&context.mask_quality)?)?;
        }
        if !context.localisation.is_empty() {
            write_atomic(
                &self.dir.join(LOCALISATION),
                &json_lines(&context.localisation)?,
            )?;
        }
        let columns = columns(runs);
        let plot_error = |name: &str, error: String| EvalError::Output(format!("{name}: {error}"));
        if let Some(png) = plots::accuracy_plot(runs, context, &columns)
            .map_err(|error| plot_error(ACCURACY_PLOT, error))?
        {
            write_atomic(&self.dir.join(ACCURACY_PLOT), &png)?;
        }
        if let Some(column) = columns.last()
            && let Some(png) = plots::confusion_plot(runs, context, column)
                .map_err(|error| plot_error(CONFUSION_PLOT, error))?
        {
            write_atomic(&self.dir.join(CONFUSION_PLOT), &png)?;
        }
        write_atomic(
            &self.dir.join(REPORT),
            report_markdown(runs, context).as_bytes(),
        )
    }
}

/// One JSON object per line.
fn json_lines<T: serde::Serialize>(records: &[T]) -> Result<Vec<u8>, EvalError> {
    let mut lines = String::new();
    for record in records {
        lines.push_str(
            &serde_json::to_string(record).map_err(|e| EvalError::Output(e.to_string()))?,
        );
        lines.push('\n');
    }
    Ok(lines.into_bytes())
}

fn runs_csv(runs: &[RunRecord]) -> Result<Vec<u8>, EvalError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let csv_error = |error: csv::Error| EvalError::Output(format!("runs.csv: {error}"));
    writer
        .write_record([
            "run",
            "manifest",
            "manifest_sha256",
            "protocol",
            "seed",
            "head",
            "focus",
            "masks",
            "model",
            "train_images",
            "val_images",
            "test_images",
            "accuracy",
            "balanced_accuracy",
            "macro_f1",
            "kappa",
            "auroc",
            "log_loss",
            "ece",
            "seconds",
        ])
        .map_err(csv_error)?;
    for run in runs {
        let m = &run.metrics;
        writer
            .write_record([
                run.run.clone(),
                run.manifest.clone(),
                run.manifest_sha256.clone(),
                run.protocol.clone(),
                run.seed.to_string(),
                run.head.clone(),
                run.focus.clone(),
                run.masks.clone(),
                run.model.clone(),
                run.train_images.to_string(),
                run.val_images.to_string(),
                run.test_images.to_string(),
                m.accuracy.to_string(),
                m.balanced_accuracy.to_string(),
                m.macro_f1.to_string(),
                m.kappa.to_string(),
                m.auroc.map(|v| v.to_string()).unwrap_or_default(),
                m.log_loss.to_string(),
                m.ece.to_string(),
                format!("{:.3}", run.seconds),
            ])
            .map_err(csv_error)?;
    }
    writer
        .into_inner()
        .map_err(|error| EvalError::Output(format!("runs.csv: {error}")))
}

/// Protocol labels in column order (fractions, then shots, ascending).
fn columns(runs: &[RunRecord]) -> Vec<String> {
    let mut labels: Vec<&str> = Vec::new();
    for run in runs {
        if !labels.contains(&run.protocol.as_str()) {
            labels.push(&run.protocol);
        }
    }
    // A label this version does not know sorts last.
    let order = |label: &str| Protocol::from_label(label).map_or((2, 0.0), |p| p.order_key());
    labels.sort_by(|a, b| {
        order(a)
            .partial_cmp(&order(b))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    labels.into_iter().map(str::to_string).collect()
}

type Metric = (&'static str, fn(&RunRecord) -> Option<f64>);

const METRICS: [Metric; 5] = [
    ("Accuracy", |run| Some(run.metrics.accuracy)),
    ("Balanced accuracy", |run| {
        Some(run.metrics.balanced_accuracy)
    }),
    ("Macro-F1", |run| Some(run.metrics.macro_f1)),
    ("AUROC (one-vs-rest, macro)", |run| run.metrics.auroc),
    (
        "Expected calibration error (15 bins; lower is better)",
        |run| Some(run.metrics.ece),
    ),
];

/// Not split: the report's sections in reading order, each a few `writeln!`s.
fn report_markdown(runs: &[RunRecord], context: &ReportContext) -> String {
    let mut out = String::new();
    let columns = columns(runs);
    let _ = writeln!(out, "# MedFocus evaluation\n");
    let _ = writeln!(out, "- data: `{}` ({})", context.data, context.layout);
    let pool_line = |counts: &[usize]| -> String {
        context
            .classes
            .iter()
            .zip(counts)
            .map(|(class, count)| format!("{class} {count}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(out, "- classes: {}", context.classes.join(", "));
    for (name, counts) in ["train", "val", "test"].iter().zip(&context.pools) {
        let _ = writeln!(
            out,
            "- {name} pool: {} images ({})",
            counts.iter().sum::<usize>(),
            pool_line(counts)
        );
    }
    let _ = writeln!(out, "- splits: {}", context.splits);
    let _ = writeln!(
        out,
        "- model: `{}` (fingerprint {})",
        context.model,
        &context.model_fingerprint[..context.model_fingerprint.len().min(12)]
    );
    let _ = writeln!(out, "- masks: {}", context.masks);
    let seeds: BTreeSet<u64> = runs.iter().map(|run| run.seed).collect();
    let _ = writeln!(
        out,
        "- seeds: {} — cells are mean ± standard deviation over them (population std, as CoOp/Dassl report), in %",
        seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(out, "- runs: {}", runs.len());
    if context.skipped_files > 0 || !context.unusable_images.is_empty() {
        let _ = writeln!(
            out,
            "- left out: {} files by the loader, {} images that could not be embedded (listed below)",
            context.skipped_files,
            context.unusable_images.len()
        );
    }
    if !context.command.is_empty() {
        let _ = writeln!(out, "\nReproduce: `{}`", context.command);
    }
    for (index, (title, value)) in METRICS.into_iter().enumerate() {
        let _ = writeln!(out, "\n## {title}\n");
        if index == 0 && !runs.is_empty() {
            let _ = writeln!(
                out,
                "![Accuracy against the protocol points]({ACCURACY_PLOT})\n"
            );
        }
        let _ = write!(out, "| focus | head |");
        for column in &columns {
            let _ = write!(out, " {column} |");
        }
        let _ = write!(out, "\n|---|---|");
        for _ in &columns {
            let _ = write!(out, "---|");
        }
        let _ = writeln!(out);
        for focus in &context.focuses {
            for head in &context.heads {
                let cell_runs: Vec<&RunRecord> = runs
                    .iter()
                    .filter(|run| run.focus == *focus && run.head == *head)
                    .collect();
                if cell_runs.is_empty() {
                    continue;
                }
                let _ = write!(out, "| {focus} | {head} |");
                for column in &columns {
                    let values: Vec<f64> = cell_runs
                        .iter()
                        .filter(|run| run.protocol == *column)
                        .filter_map(|run| value(run))
                        .collect();
                    match mean_std(&values) {
                        Some((mean, std)) if values.len() > 1 => {
                            let _ = write!(out, " {:.1} ± {:.1} |", mean * 100.0, std * 100.0);
                        }
                        Some((mean, _)) => {
                            let _ = write!(out, " {:.1} |", mean * 100.0);
                        }
                        None => {
                            let _ = write!(out, " – |");
                        }
                    }
                }
                let _ = writeln!(out);
            }
        }
    }
    mask_section(&mut out, context);
    localisation_section(&mut out, context);
    confusion_section(&mut out, runs, context, columns.last());
    if !context.notes.is_empty() {
        let _ = writeln!(out, "\n## Protocol notes\n");
        for note in &context.notes {
            let _ = writeln!(out, "- {note}");
        }
    }
    if !context.unusable_images.is_empty() {
        let _ = writeln!(out, "\n## Images left out\n");
        for line in &context.unusable_images {
            let _ = writeln!(out, "- {line}");
        }
    }
    out
}

/// SAM 2's regions against the ground-truth masks, overall and per class.
fn mask_section(out: &mut String, context: &ReportContext) {
    let records = &context.mask_quality;
    if records.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n## SAM 2's regions against the ground-truth masks\n\nImages whose ground truth has a region; mean ± std (population) in %. The `gt` mask source (`--masks gt`) is the oracle: the same runs with these masks show what focus gives apart from SAM 2's quality.\n"
    );
    let _ = writeln!(
        out,
        "| class | images | Dice | IoU | whole-image fallbacks |\n|---|---|---|---|---|"
    );
    let mut rows: Vec<(String, Vec<&MaskRecord>)> = context
        .classes
        .iter()
        .enumerate()
        .map(|(class, name)| {
            (
                name.clone(),
                records
                    .iter()
                    .filter(|r| r.class_index == class && !r.truth_empty)
                    .collect(),
            )
        })
        .collect();
    rows.push((
        "all".into(),
        records.iter().filter(|r| !r.truth_empty).collect(),
    ));
    for (name, members) in rows {
        if members.is_empty() {
            continue;
        }
        let dice: Vec<f64> = members.iter().map(|r| r.dice).collect();
        let iou: Vec<f64> = members.iter().map(|r| r.iou).collect();
        let (dice_mean, dice_std) = mean_std(&dice).unwrap_or_default();
        let (iou_mean, iou_std) = mean_std(&iou).unwrap_or_default();
        let fallbacks = members.iter().filter(|r| r.origin == "whole-image").count();
        let _ = writeln!(
            out,
            "| {name} | {} | {:.1} ± {:.1} | {:.1} ± {:.1} | {fallbacks} |",
            members.len(),
            dice_mean * 100.0,
            dice_std * 100.0,
            iou_mean * 100.0,
            iou_std * 100.0
        );
    }
    let empty: Vec<&MaskRecord> = records.iter().filter(|r| r.truth_empty).collect();
    if !empty.is_empty() {
        let _ = writeln!(
            out,
            "\n{} images have an empty ground truth (no lesion); SAM 2 still gave a region covering {:.1} % of the image on average.",
            empty.len(),
            empty.iter().map(|r| f64::from(r.coverage)).sum::<f64>() / empty.len() as f64 * 100.0
        );
    }
}

/// Where CLIP looked against the ground-truth lesions, per focus and explanation method.
fn localisation_section(out: &mut String, context: &ReportContext) {
    let records = &context.localisation;
    if records.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n## Where CLIP looked, against the ground-truth masks\n\nImages whose ground truth has a lesion; the zero-shot prediction explained under each focus (`relevancy`: Chefer et al.'s gradient-weighted attention, last block; `dense`: MaskCLIP's dense map). Energy inside: the share of the heat-map inside the lesion, mean ± std (population) in %; a flat map would score the lesion's share of the image (next column). Pointing game: how often the hottest pixel lies in the lesion.\n"
    );
    let _ = writeln!(
        out,
        "| focus | method | images | energy inside | lesion's share of the image | pointing game |\n|---|---|---|---|---|---|"
    );
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for record in records {
        let key = (record.focus.as_str(), record.method.as_str());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    for (focus, method) in keys {
        let members: Vec<&LocalisationRecord> = records
            .iter()
            .filter(|r| r.focus == focus && r.method == method)
            .collect();
        let energy: Vec<f64> = members.iter().map(|r| f64::from(r.energy_inside)).collect();
        let (mean, std) = mean_std(&energy).unwrap_or_default();
        let share = members
            .iter()
            .map(|r| f64::from(r.truth_coverage))
            .sum::<f64>()
            / members.len() as f64;
        let hits = members.iter().filter(|r| r.pointing_hit).count();
        let _ = writeln!(
            out,
            "| {focus} | {method} | {} | {:.1} ± {:.1} | {:.1} | {:.1} % ({hits}/{}) |",
            members.len(),
            mean * 100.0,
            std * 100.0,
            share * 100.0,
            hits as f64 / members.len() as f64 * 100.0,
            members.len()
        );
    }
}

/// Confusion matrices at the largest protocol point, summed over seeds.
fn confusion_section(
    out: &mut String,
    runs: &[RunRecord],
    context: &ReportContext,
    column: Option<&String>,
) {
    let Some(column) = column else { return };
    let _ = writeln!(
        out,
        "\n## Confusion matrices at {column} (rows: truth, columns: prediction; summed over seeds)\n\n![Confusion matrices]({CONFUSION_PLOT})"
    );
    let cells = summed_confusions(runs, context, column);
    for ((f, h), matrix) in cells {
        let _ = writeln!(out, "\n{} · {}\n", context.focuses[f], context.heads[h]);
        let _ = write!(out, "| truth \\ predicted |");
        for class in &context.classes {
            let _ = write!(out, " {class} |");
        }
        let _ = write!(out, "\n|---|");
        for _ in &context.classes {
            let _ = write!(out, "---|");
        }
        let _ = writeln!(out);
        for (class, row) in context.classes.iter().zip(&matrix) {
            let _ = write!(out, "| {class} |");
            for count in row {
                let _ = write!(out, " {count} |");
            }
            let _ = writeln!(out);
        }
    }
}
