//! Classification metrics from one set of predictions (true label + class probabilities per
//! test image), each defined as scikit-learn defines it (checked to 1e-9 against
//! `scripts/reference/gen_metrics.py`), so a number in our report means what it means in a paper.

use serde::{Deserialize, Serialize};

use crate::heads::features::argmax;

/// Equal-width confidence bins of the expected calibration error (Guo et al. 2017).
pub const CALIBRATION_BINS: usize = 15;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MetricsError {
    #[error("no predictions to score")]
    Empty,
    #[error("{values} probabilities for {images} images of {classes} classes")]
    Shape {
        values: usize,
        images: usize,
        classes: usize,
    },
    #[error("label {label} of image {image} is not one of the {classes} classes")]
    Label {
        image: usize,
        label: usize,
        classes: usize,
    },
    #[error("image {0} has a probability that is not a finite number")]
    NotFinite(usize),
}

/// Every figure the report shows for one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Fraction of images whose top class is the truth (the paper's figure).
    pub accuracy: f64,
    /// Mean recall over the classes present in the truth.
    pub balanced_accuracy: f64,
    /// Mean F1 over the classes present in the truth or the predictions (0/0 counts as 0).
    pub macro_f1: f64,
    /// Cohen's κ between truth and top class.
    pub kappa: f64,
    /// One-vs-rest ROC AUC, macro mean over the classes present in the truth; `None` when fewer
    /// than two classes are present (undefined).
    pub auroc: Option<f64>,
    /// Mean negative log-likelihood of the truth (probabilities clipped at machine epsilon).
    pub log_loss: f64,
    /// Expected calibration error over [`CALIBRATION_BINS`] bins of the top probability.
    pub ece: f64,
    /// `confusion[truth][predicted]` counts.
    pub confusion: Vec<Vec<u64>>,
}

impl Metrics {
    /// Scores `probabilities` (`[images, classes]`, row-major) against `labels`.
    pub fn compute(
        probabilities: &[f64],
        labels: &[usize],
        classes: usize,
    ) -> Result<Self, MetricsError> {
        let images = labels.len();
        if images == 0 || classes == 0 {
            return Err(MetricsError::Empty);
        }
        if probabilities.len() != images * classes {
            return Err(MetricsError::Shape {
                values: probabilities.len(),
                images,
                classes,
            });
        }
        for (image, &label) in labels.iter().enumerate() {
            if label >= classes {
                return Err(MetricsError::Label {
                    image,
                    label,
                    classes,
                });
            }
            let row = &probabilities[image * classes..(image + 1) * classes];
            if row.iter().any(|value| !value.is_finite()) {
                return Err(MetricsError::NotFinite(image));
            }
        }
        let rows: Vec<&[f64]> = probabilities.chunks(classes).collect();
        let predicted: Vec<usize> = rows.iter().map(|row| argmax(row)).collect();
        let mut confusion = vec![vec![0u64; classes]; classes];
        for (&truth, &guess) in labels.iter().zip(&predicted) {
            confusion[truth][guess] += 1;
        }
        Ok(Self {
            accuracy: accuracy(&confusion),
            balanced_accuracy: balanced_accuracy(&confusion),
            macro_f1: macro_f1(&confusion),
            kappa: kappa(&confusion),
            auroc: macro_auroc(&rows, labels, classes),
            log_loss: log_loss(&rows, labels),
            ece: expected_calibration_error(&rows, labels, &predicted),
            confusion,
        })
    }
}

fn row_total(confusion: &[Vec<u64>], class: usize) -> u64 {
    confusion[class].iter().sum()
}

fn column_total(confusion: &[Vec<u64>], class: usize) -> u64 {
    confusion.iter().map(|row| row[class]).sum()
}

fn total(confusion: &[Vec<u64>]) -> u64 {
    confusion.iter().flatten().sum()
}

fn accuracy(confusion: &[Vec<u64>]) -> f64 {
    let correct: u64 = (0..confusion.len()).map(|c| confusion[c][c]).sum();
    correct as f64 / total(confusion) as f64
}

fn balanced_accuracy(confusion: &[Vec<u64>]) -> f64 {
    let recalls: Vec<f64> = (0..confusion.len())
        .filter_map(|c| {
            let support = row_total(confusion, c);
            (support > 0).then(|| confusion[c][c] as f64 / support as f64)
        })
        .collect();
    recalls.iter().sum::<f64>() / recalls.len() as f64
}

fn macro_f1(confusion: &[Vec<u64>]) -> f64 {
    let scores: Vec<f64> = (0..confusion.len())
        .filter_map(|c| {
            let (truth, guessed, hits) = (
                row_total(confusion, c),
                column_total(confusion, c),
                confusion[c][c],
            );
            if truth == 0 && guessed == 0 {
                return None;
            }
            // F1 = 2·tp / (2·tp + fp + fn) = 2·tp / (truth + guessed); 0 when tp = 0.
            Some(2.0 * hits as f64 / (truth + guessed) as f64)
        })
        .collect();
    scores.iter().sum::<f64>() / scores.len() as f64
}

fn kappa(confusion: &[Vec<u64>]) -> f64 {
    let n = total(confusion) as f64;
    let observed = accuracy(confusion);
    let expected: f64 = (0..confusion.len())
        .map(|c| row_total(confusion, c) as f64 * column_total(confusion, c) as f64)
        .sum::<f64>()
        / (n * n);
    if expected == 1.0 {
        // Both raters always say the same single class: scikit-learn's 0/0 gives NaN; κ is
        // undefined, and 0 keeps the report's means finite.
        return 0.0;
    }
    (observed - expected) / (1.0 - expected)
}

/// ROC AUC of `scores` for the positives: the Mann–Whitney statistic with mid-ranks, so a tie
/// between a positive and a negative counts one half (what `roc_auc_score` computes).
fn binary_auroc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let positives = positive.iter().filter(|&&p| p).count();
    let negatives = positive.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start;
        while end + 1 < order.len() && scores[order[end + 1]] == scores[order[start]] {
            end += 1;
        }
        // Ranks start..=end (1-based: start+1 ..= end+1) share their mean.
        let mid_rank = (start + end) as f64 / 2.0 + 1.0;
        rank_sum += mid_rank * order[start..=end].iter().filter(|&&i| positive[i]).count() as f64;
        start = end + 1;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

fn macro_auroc(rows: &[&[f64]], labels: &[usize], classes: usize) -> Option<f64> {
    let class_scores = |class: usize| -> Vec<f64> { rows.iter().map(|row| row[class]).collect() };
    if classes == 2 {
        let positive: Vec<bool> = labels.iter().map(|&label| label == 1).collect();
        return binary_auroc(&class_scores(1), &positive);
    }
    let per_class: Vec<f64> = (0..classes)
        .filter_map(|class| {
            let positive: Vec<bool> = labels.iter().map(|&label| label == class).collect();
            binary_auroc(&class_scores(class), &positive)
        })
        .collect();
    (per_class.len() >= 2).then(|| per_class.iter().sum::<f64>() / per_class.len() as f64)
}

fn log_loss(rows: &[&[f64]], labels: &[usize]) -> f64 {
    let total: f64 = rows
        .iter()
        .zip(labels)
        .map(|(row, &label)| {
            let sum: f64 = row.iter().sum();
            let p = (row[label] / sum).clamp(f64::EPSILON, 1.0 - f64::EPSILON);
            -p.ln()
        })
        .sum();
    total / labels.len() as f64
}

fn expected_calibration_error(rows: &[&[f64]], labels: &[usize], predicted: &[usize]) -> f64 {
    let bins = CALIBRATION_BINS;
    let mut count = vec![0usize; bins];
    let mut correct = vec![0usize; bins];
    let mut confidence = vec![0f64; bins];
    for ((row, &label), &guess) in rows.iter().zip(labels).zip(predicted) {
        let top = row[guess];
        if top <= 0.0 {
            continue; // outside every bin (b/15, (b+1)/15]
        }
        // Bin b holds (b/15, (b+1)/15]: the bin whose upper edge is the first ≥ top.
        let Some(bin) = (0..bins).find(|&b| top <= (b + 1) as f64 / bins as f64) else {
            continue; // above 1
        };
        count[bin] += 1;
        correct[bin] += usize::from(guess == label);
        confidence[bin] += top;
    }
    let n = labels.len() as f64;
    (0..bins)
        .filter(|&b| count[b] > 0)
        .map(|b| {
            let members = count[b] as f64;
            members / n * (correct[b] as f64 / members - confidence[b] / members).abs()
        })
        .sum()
}

/// Mean and standard deviation over seeds. The deviation is the population one (`np.std`, as
/// CoOp/Dassl's result parser reports it), 0 for a single run.
pub fn mean_std(values: &[f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    Some((mean, variance.sqrt()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_counts_ties_as_half() {
        // One positive tied with one negative, one positive above both negatives.
        let auroc = binary_auroc(&[0.5, 0.5, 0.9, 0.1], &[true, false, true, false]).unwrap();
        assert!((auroc - 0.875).abs() < 1e-12, "{auroc}");
    }

    #[test]
    fn bad_shapes_and_labels_are_named() {
        assert_eq!(Metrics::compute(&[], &[], 2), Err(MetricsError::Empty));
        assert!(matches!(
            Metrics::compute(&[0.5, 0.5, 1.0], &[0, 1], 2),
            Err(MetricsError::Shape { .. })
        ));
        assert!(matches!(
            Metrics::compute(&[0.5, 0.5], &[2], 2),
            Err(MetricsError::Label { label: 2, .. })
        ));
        assert!(matches!(
            Metrics::compute(&[f64::NAN, 0.5], &[0], 2),
            Err(MetricsError::NotFinite(0))
        ));
    }

    #[test]
    fn mean_std_is_the_population_deviation() {
        let (mean, std) = mean_std(&[0.6, 0.7, 0.8]).unwrap();
        assert!((mean - 0.7).abs() < 1e-12);
        assert!((std - (0.02f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(mean_std(&[0.5]), Some((0.5, 0.0)));
        assert_eq!(mean_std(&[]), None);
    }
}
