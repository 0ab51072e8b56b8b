//! Did the focus move CLIP's attention to the lesion? For every image with a non-empty
//! ground-truth mask among those the grid uses, under each focus method, the zero-shot
//! classifier's predicted class is explained ([`crate::explain`]) and the heat-map judged
//! against the ground truth: the share of its energy inside, and the pointing game.

use std::collections::BTreeSet;
use std::path::Path;

use super::protocol::HashedSet;
use super::records::{EvalObserver, LocalisationRecord};
use crate::explain::{ExplainMethod, ExplainRequest, explain_region, score};
use crate::focus::FocusMode;
use crate::focus::mask::Mask;
use crate::heads::train::support::Embedder;
use crate::pipeline::{Pipeline, decode};

/// The records of one focus method (`pipeline` classifies zero-shot under it; `embedder` finds
/// each image's region as the grid's embedding did, from its region cache).
pub(crate) fn measure_localisation(
    set: &HashedSet,
    needed: &BTreeSet<usize>,
    embedder: &Embedder,
    pipeline: &Pipeline,
    focus: &FocusMode,
    methods: &[ExplainMethod],
    observer: &mut dyn EvalObserver,
) -> Vec<LocalisationRecord> {
    let masked = with_ground_truth(set, needed);
    let mut records = Vec::new();
    observer.stage(
        &format!("where CLIP looked ({})", focus.method),
        masked.len(),
    );
    for (done, index) in masked.into_iter().enumerate() {
        observer.progress(done);
        let sample = &set.dataset.samples[index];
        let measured = (|| {
            let truth = ground_truth(sample)?;
            let truth_coverage = truth.coverage();
            if truth_coverage == 0.0 {
                // No lesion: nothing to point at.
                return Ok(Vec::new());
            }
            let bytes = set.dataset.read(sample)?;
            let pixels = decode(&bytes).map_err(|error| error.to_string())?;
            let region = if focus.needs_mask() {
                embedder
                    .region(&sample.path, &bytes, Some(Path::new(&sample.relative)))
                    .map_err(|error| error.to_string())?
                    .0
            } else {
                None
            };
            let mut found = Vec::new();
            for &method in methods {
                let request = ExplainRequest::new(method);
                let explained =
                    pollster::block_on(explain_region(pipeline, &pixels, region.clone(), &request))
                        .map_err(|error| error.to_string())?;
                let judged = score::localisation(&explained.explanation.heat, &truth)
                    .map_err(|error| error.to_string())?;
                found.push(LocalisationRecord {
                    path: sample.relative.clone(),
                    class_index: sample.class_index,
                    focus: focus.method.clone(),
                    method: method.name().to_string(),
                    explained_class: explained.explanation.class,
                    energy_inside: judged.energy_inside,
                    pointing_hit: judged.pointing_hit,
                    truth_coverage,
                });
            }
            Ok::<_, String>(found)
        })();
        match measured {
            Ok(found) => records.extend(found),
            Err(error) => observer.note(&format!(
                "{}: where CLIP looked not measured: {error}",
                sample.path.display()
            )),
        }
    }
    records
}

/// The needed images that have ground-truth mask files, in order.
pub(super) fn with_ground_truth(set: &HashedSet, needed: &BTreeSet<usize>) -> Vec<usize> {
    needed
        .iter()
        .copied()
        .filter(|&index| !set.dataset.samples[index].masks.is_empty())
        .collect()
}

/// The united ground-truth masks of a sample.
pub(super) fn ground_truth(sample: &crate::dataset::Sample) -> Result<Mask, String> {
    let images = sample
        .masks
        .iter()
        .map(|file| std::fs::read(file).map_err(|error| format!("{}: {error}", file.display())))
        .collect::<Result<Vec<_>, _>>()?;
    crate::pipeline::region::united_mask(&images).map_err(|error| error.to_string())
}
