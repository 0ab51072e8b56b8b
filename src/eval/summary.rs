//! What the report and its plots both read beside the runs: the evaluation's context, and the
//! confusion matrices summed over seeds.

use std::collections::BTreeMap;

use super::records::{LocalisationRecord, MaskRecord, RunRecord};

/// What the report says about the evaluation beside its numbers.
#[derive(Clone, Debug, Default)]
pub struct ReportContext {
    pub data: String,
    pub layout: String,
    pub classes: Vec<String>,
    /// Images per class in train / val / test pools.
    pub pools: [Vec<usize>; 3],
    pub splits: String,
    pub model: String,
    pub model_fingerprint: String,
    /// Row order: focus methods, head kinds (as requested).
    pub focuses: Vec<String>,
    pub heads: Vec<String>,
    pub masks: String,
    pub notes: Vec<String>,
    pub unusable_images: Vec<String>,
    pub skipped_files: usize,
    /// SAM 2's regions against the ground truth.
    pub mask_quality: Vec<MaskRecord>,
    /// Where CLIP looked against the ground truth.
    pub localisation: Vec<LocalisationRecord>,
    /// The command that reproduces it.
    pub command: String,
}

/// Each (focus, head)'s confusion matrix at protocol point `column`, summed over seeds, keyed
/// by their positions in the report's row order.
pub fn summed_confusions(
    runs: &[RunRecord],
    context: &ReportContext,
    column: &str,
) -> BTreeMap<(usize, usize), Vec<Vec<u64>>> {
    let classes = context.classes.len();
    let mut summed: BTreeMap<(usize, usize), Vec<Vec<u64>>> = BTreeMap::new();
    for run in runs.iter().filter(|run| run.protocol == column) {
        let (Some(f), Some(h)) = (
            context.focuses.iter().position(|f| *f == run.focus),
            context.heads.iter().position(|h| *h == run.head),
        ) else {
            continue;
        };
        let total = summed
            .entry((f, h))
            .or_insert_with(|| vec![vec![0; classes]; classes]);
        for (row, counts) in total.iter_mut().zip(&run.metrics.confusion) {
            for (cell, count) in row.iter_mut().zip(counts) {
                *cell += count;
            }
        }
    }
    summed
}
