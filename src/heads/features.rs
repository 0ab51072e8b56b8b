//! Image embeddings with their labels, on the host: what every head trains from.

use burn::tensor::{Device, Tensor, TensorData};

use super::rng::SplitMix64;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FeatureError {
    #[error("at least two classes are needed, got {0}")]
    TooFewClasses(usize),
    #[error("class {0} has no images")]
    EmptyClass(String),
    #[error("{rows} embeddings of width {dim} do not fill {values} values")]
    Shape {
        rows: usize,
        dim: usize,
        values: usize,
    },
    #[error("label {label} of image {index} is not one of the {classes} classes")]
    Label {
        index: usize,
        label: usize,
        classes: usize,
    },
    #[error("embedding {0} is not finite or is all zeros")]
    BadEmbedding(usize),
}

/// At least two classes, every label one of them, every class with an image.
pub fn check_labels(classes: &[String], labels: &[usize]) -> Result<(), FeatureError> {
    check_label_range(classes, labels)?;
    for (class, name) in classes.iter().enumerate() {
        if !labels.contains(&class) {
            return Err(FeatureError::EmptyClass(name.clone()));
        }
    }
    Ok(())
}

/// At least two classes and every label one of them (a class may have no image).
fn check_label_range(classes: &[String], labels: &[usize]) -> Result<(), FeatureError> {
    if classes.len() < 2 {
        return Err(FeatureError::TooFewClasses(classes.len()));
    }
    for (index, &label) in labels.iter().enumerate() {
        if label >= classes.len() {
            return Err(FeatureError::Label {
                index,
                label,
                classes: classes.len(),
            });
        }
    }
    Ok(())
}

/// What [`FeatureSet::absent_class_mask`] adds to an absent class's logit: far below any logit a
/// head gives (CLIP's are at most its logit scale, 100), so its softmax share is 0 in f32.
pub const ABSENT_CLASS_LOGIT: f32 = -1e4;

/// `rows` unit-length embeddings of width `dim`, row-major, each with a class index.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureSet {
    pub classes: Vec<String>,
    pub dim: usize,
    pub values: Vec<f32>,
    pub labels: Vec<usize>,
}

impl FeatureSet {
    /// Checks the shapes and labels and L2-normalises every row (CLIP compares directions).
    pub fn new(
        classes: Vec<String>,
        dim: usize,
        values: Vec<f32>,
        labels: Vec<usize>,
    ) -> Result<Self, FeatureError> {
        check_labels(&classes, &labels)?;
        Self::normalised(classes, dim, values, labels)
    }

    /// [`FeatureSet::new`] for one site of a federated head: some classes may have no image
    /// here (the head still scores them; other sites have them), but some image must be.
    pub fn new_allowing_absent_classes(
        classes: Vec<String>,
        dim: usize,
        values: Vec<f32>,
        labels: Vec<usize>,
    ) -> Result<Self, FeatureError> {
        check_label_range(&classes, &labels)?;
        if labels.is_empty() {
            return Err(FeatureError::EmptyClass(classes.join(", ")));
        }
        Self::normalised(classes, dim, values, labels)
    }

    fn normalised(
        classes: Vec<String>,
        dim: usize,
        mut values: Vec<f32>,
        labels: Vec<usize>,
    ) -> Result<Self, FeatureError> {
        if dim == 0 || values.len() != labels.len() * dim {
            return Err(FeatureError::Shape {
                rows: labels.len(),
                dim,
                values: values.len(),
            });
        }
        for (index, row) in values.chunks_mut(dim).enumerate() {
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            if !norm.is_finite() || norm == 0.0 {
                return Err(FeatureError::BadEmbedding(index));
            }
            row.iter_mut().for_each(|v| *v /= norm);
        }
        Ok(Self {
            classes,
            dim,
            values,
            labels,
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn class_count(&self) -> usize {
        self.classes.len()
    }

    pub fn row(&self, index: usize) -> &[f32] {
        &self.values[index * self.dim..(index + 1) * self.dim]
    }

    /// The rows at `indices`, in that order (classes kept even if one ends up absent).
    pub fn subset(&self, indices: &[usize]) -> FeatureSet {
        FeatureSet {
            classes: self.classes.clone(),
            dim: self.dim,
            values: indices
                .iter()
                .flat_map(|&i| self.row(i).iter().copied())
                .collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
        }
    }

    /// `[rows, dim]`.
    pub fn tensor(&self, device: &Device) -> Tensor<2> {
        Tensor::from_data(
            TensorData::new(self.values.clone(), [self.len(), self.dim]),
            device,
        )
    }

    /// `[rows, classes]`, one 1 per row.
    /// `[1, classes]`: 0 for each class with an image here, a large negative number for each
    /// without — added to the logits, it leaves a class this data lacks out of the softmax.
    pub fn absent_class_mask(&self, device: &Device) -> Tensor<2> {
        let values = (0..self.class_count())
            .map(|class| {
                if self.labels.contains(&class) {
                    0.0
                } else {
                    ABSENT_CLASS_LOGIT
                }
            })
            .collect::<Vec<f32>>();
        Tensor::from_data(TensorData::new(values, [1, self.class_count()]), device)
    }

    pub fn one_hot(&self, device: &Device) -> Tensor<2> {
        one_hot(&self.labels, self.class_count(), device)
    }

    /// Images per class.
    pub fn counts(&self) -> Vec<usize> {
        class_counts(&self.labels, self.class_count())
    }
}

/// `[rows, classes]`, one 1 per row, on the host.
pub fn one_hot_values(labels: &[usize], classes: usize) -> Vec<f32> {
    let mut values = vec![0.0f32; labels.len() * classes];
    for (row, &label) in labels.iter().enumerate() {
        values[row * classes + label] = 1.0;
    }
    values
}

pub fn one_hot(labels: &[usize], classes: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(
        TensorData::new(one_hot_values(labels, classes), [labels.len(), classes]),
        device,
    )
}

/// Items per class.
pub fn class_counts(labels: &[usize], classes: usize) -> Vec<usize> {
    let mut counts = vec![0; classes];
    for &label in labels {
        counts[label] += 1;
    }
    counts
}

/// A labelled training set that can be split (embeddings, or the tokens a fine-tune starts from).
pub trait Labelled: Sized {
    fn labels(&self) -> &[usize];
    fn class_count(&self) -> usize;
    /// The items at `indices`, in that order.
    fn subset(&self, indices: &[usize]) -> Self;
}

impl Labelled for FeatureSet {
    fn labels(&self) -> &[usize] {
        &self.labels
    }

    fn class_count(&self) -> usize {
        self.classes.len()
    }

    fn subset(&self, indices: &[usize]) -> Self {
        FeatureSet::subset(self, indices)
    }
}

/// Which images train and which judge (hyper-parameters, early stopping).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    pub train: Vec<usize>,
    pub holdout: Vec<usize>,
}

/// Holds out `fraction` of each class (at least one image, never the last one), shuffled with
/// `seed`. `None` when some class has a single image: then nothing can be held out and the
/// heads fall back to their default hyper-parameters and fixed epoch counts.
pub fn stratified_split(
    labels: &[usize],
    classes: usize,
    fraction: f32,
    seed: u64,
) -> Option<Split> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return None;
    }
    let mut rng = SplitMix64::derive(seed, "holdout split");
    let mut split = Split {
        train: Vec::new(),
        holdout: Vec::new(),
    };
    for class in 0..classes {
        let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        if members.len() < 2 {
            return None;
        }
        rng.shuffle(&mut members);
        let held = ((members.len() as f32 * fraction).round() as usize).clamp(1, members.len() - 1);
        split.holdout.extend_from_slice(&members[..held]);
        split.train.extend_from_slice(&members[held..]);
    }
    split.train.sort_unstable();
    split.holdout.sort_unstable();
    Some(split)
}

/// Fraction of rows whose largest score is at the label (ties: the first).
pub fn accuracy(scores: &[f32], classes: usize, labels: &[usize]) -> f32 {
    if labels.is_empty() {
        return 0.0;
    }
    let correct = scores
        .chunks(classes)
        .zip(labels)
        .filter(|(row, label)| argmax(row) == **label)
        .count();
    correct as f32 / labels.len() as f32
}

/// Index of the largest value; ties go to the first (as `np.argmax`).
pub fn argmax<T: PartialOrd>(row: &[T]) -> usize {
    let mut best = 0;
    for (index, value) in row.iter().enumerate() {
        if *value > row[best] {
            best = index;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_stratified_seeded_and_keeps_every_class_in_training() {
        let labels = vec![0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2];
        let split = stratified_split(&labels, 3, 0.25, 7).unwrap();
        assert_eq!(split, stratified_split(&labels, 3, 0.25, 7).unwrap());
        assert_ne!(split, stratified_split(&labels, 3, 0.25, 8).unwrap());
        let held: Vec<usize> = (0..3)
            .map(|c| split.holdout.iter().filter(|&&i| labels[i] == c).count())
            .collect();
        assert_eq!(held, vec![1, 2, 1]);
        assert_eq!(split.train.len() + split.holdout.len(), labels.len());
        assert!(stratified_split(&[0, 0, 1], 2, 0.25, 1).is_none());
    }

    #[test]
    fn features_are_normalised_and_checked() {
        let set = FeatureSet::new(
            vec!["a".into(), "b".into()],
            2,
            vec![3.0, 4.0, 0.0, 2.0],
            vec![0, 1],
        )
        .unwrap();
        assert_eq!(set.row(0), &[0.6, 0.8]);
        assert_eq!(
            FeatureSet::new(vec!["a".into(), "b".into()], 2, vec![1.0, 0.0], vec![0]),
            Err(FeatureError::EmptyClass("b".into()))
        );
        assert!(matches!(
            FeatureSet::new(vec!["a".into(), "b".into()], 2, vec![0.0; 4], vec![0, 1]),
            Err(FeatureError::BadEmbedding(0))
        ));
    }
}
