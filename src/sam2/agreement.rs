//! How far an int8 model's answers are from its f32 original (`medfocus weights export-sam2
//! --check`): the embedding, the mask logits and the masks of a centre-point prompt.

use super::model::Sam2Error;
use super::predictor::{Prompt, Sam2Predictor, read_floats};
use crate::clip::preprocess::Pixels8;

/// How far an int8 model's answers are from its f32 original on one image.
#[derive(Clone, Debug, PartialEq)]
pub struct Int8Agreement {
    /// Cosine similarity of the image embeddings (flattened).
    pub embedding_cosine: f32,
    /// ‖int8 − f32‖ / ‖f32‖ of the low-res mask logits of a centre-point prompt (3 masks).
    pub logits_relative_l2: f32,
    /// IoU of the binarised full-size masks, the f32 model's best one against the int8 model's
    /// mask from the same output.
    pub mask_iou: f32,
}

/// Mean, minimum and maximum of one agreement measure over a set of images.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub mean: f32,
    pub min: f32,
    pub max: f32,
}

impl Spread {
    /// `None` for no values.
    pub fn of(values: impl IntoIterator<Item = f32>) -> Option<Self> {
        let values: Vec<f32> = values.into_iter().collect();
        if values.is_empty() {
            return None;
        }
        Some(Self {
            mean: values.iter().sum::<f32>() / values.len() as f32,
            min: values.iter().copied().fold(f32::INFINITY, f32::min),
            max: values.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        })
    }
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "mean {:.5}, min {:.5}, max {:.5}",
            self.mean, self.min, self.max
        )
    }
}

/// [`Int8Agreement`] over a set of images, measure by measure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AgreementSummary {
    pub embedding_cosine: Spread,
    pub logits_relative_l2: Spread,
    pub mask_iou: Spread,
}

impl AgreementSummary {
    /// `None` for no images.
    pub fn of(rows: &[Int8Agreement]) -> Option<Self> {
        Some(Self {
            embedding_cosine: Spread::of(rows.iter().map(|row| row.embedding_cosine))?,
            logits_relative_l2: Spread::of(rows.iter().map(|row| row.logits_relative_l2))?,
            mask_iou: Spread::of(rows.iter().map(|row| row.mask_iou))?,
        })
    }
}

/// Compares `int8` with `f32` (same weights before quantization) on one image, prompting both
/// with a point at the image's centre.
pub async fn int8_agreement(
    f32_model: &Sam2Predictor,
    int8_model: &Sam2Predictor,
    image: &Pixels8,
) -> Result<Int8Agreement, Sam2Error> {
    let prompt = Prompt::point(image.width as f32 / 2.0, image.height as f32 / 2.0);
    let mut outputs = Vec::new();
    for predictor in [f32_model, int8_model] {
        let embedded = predictor.set_image(image);
        let embedding = read_floats(embedded.features.image_embed.clone()).await?;
        let prediction = predictor.predict(&embedded, &[prompt.clone()], true)?;
        let logits = read_floats(prediction.low_res_masks.clone()).await?;
        let ious = read_floats(prediction.iou_predictions.clone()).await?;
        let masks = prediction.read_inside(0, 0.0).await?.concat();
        outputs.push((embedding, logits, ious, masks));
    }
    let (reference, quantized) = (&outputs[0], &outputs[1]);
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let norm = |a: &[f32]| dot(a, a).sqrt();
    let embedding_cosine =
        dot(&reference.0, &quantized.0) / (norm(&reference.0) * norm(&quantized.0)).max(1e-12);
    let difference: Vec<f32> = reference
        .1
        .iter()
        .zip(&quantized.1)
        .map(|(a, b)| a - b)
        .collect();
    let logits_relative_l2 = norm(&difference) / norm(&reference.1).max(1e-12);
    let best = reference
        .2
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(index, _)| index);
    let pixels = image.width * image.height;
    let best_mask = best * pixels..(best + 1) * pixels;
    let (a, b) = (&reference.3[best_mask.clone()], &quantized.3[best_mask]);
    let intersection = a.iter().zip(b).filter(|(x, y)| **x && **y).count();
    let union = a.iter().zip(b).filter(|(x, y)| **x || **y).count();
    let mask_iou = if union == 0 {
        1.0
    } else {
        intersection as f32 / union as f32
    };
    Ok(Int8Agreement {
        embedding_cosine,
        logits_relative_l2,
        mask_iou,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_summaries_give_mean_min_and_max_per_measure() {
        let row = |cosine, l2, iou| Int8Agreement {
            embedding_cosine: cosine,
            logits_relative_l2: l2,
            mask_iou: iou,
        };
        let summary = AgreementSummary::of(&[row(1.0, 0.1, 0.5), row(0.5, 0.3, 1.0)]).unwrap();
        assert_eq!(
            summary.embedding_cosine,
            Spread {
                mean: 0.75,
                min: 0.5,
                max: 1.0
            }
        );
        assert_eq!(summary.logits_relative_l2.max, 0.3);
        assert_eq!(summary.mask_iou.min, 0.5);
        assert_eq!(
            summary.mask_iou.to_string(),
            "mean 0.75000, min 0.50000, max 1.00000"
        );
        assert_eq!(AgreementSummary::of(&[]), None);
    }
}
