//! int8 weights for the browser: every matmul weight of the model (all `Linear`s, which here
//! include the 1×1, 2×2 and transposed convolutions) quantized with burn's `Quantizer`
//! (min-max calibration, symmetric Q8, per tensor or per block). Norms, biases, embeddings and
//! the 7×7 patch convolution stay f32: they are a small part of the bytes and a large part of
//! the accuracy.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamGroup, Quantizer};
use burn::tensor::Tensor;
use burn::tensor::quantization::{Calibration, QuantValue, ScaleDtype};

use super::model::{Sam2Error, Sam2Model};
use super::predictor::{Prompt, Sam2Predictor, read_floats, read_inside};
use crate::clip::preprocess::Pixels8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Int8Granularity {
    /// One scale per weight matrix.
    PerTensor,
    /// One scale per `n` consecutive values of a row.
    PerBlock(u8),
}

impl Int8Granularity {
    /// The label stored in the burnpack and shown to users.
    pub fn label(&self) -> String {
        match self {
            Self::PerTensor => "int8-per-tensor".to_string(),
            Self::PerBlock(size) => format!("int8-per-block-{size}"),
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "tensor" | "per-tensor" | "int8-per-tensor" => Some(Self::PerTensor),
            other => {
                let size = other
                    .strip_prefix("int8-per-block-")
                    .or_else(|| other.strip_prefix("block-"))
                    .or_else(|| other.strip_prefix("block"))?;
                size.parse::<u8>()
                    .ok()
                    .filter(|size| *size > 0)
                    .map(Self::PerBlock)
            }
        }
    }
}

/// Paths of the matmul weights (`….weight` of `Linear`s; the 4-D patch convolution is not one).
#[derive(Default)]
struct MatmulWeights {
    path: Vec<String>,
    /// (path, columns).
    found: Vec<(String, usize)>,
}

impl ModuleVisitor for MatmulWeights {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let path = self.path.join(".");
        if D == 2 && path.ends_with(".weight") {
            self.found.push((path, param.dims()[D - 1]));
        }
    }
}

/// The model with its matmul weights in int8. Per block, a matrix whose rows do not divide
/// into blocks (the 1-, 4- and 8-wide heads) keeps one scale for the whole matrix.
pub fn quantize_int8(model: Sam2Model, granularity: Int8Granularity) -> Sam2Model {
    let device = model.device();
    let base = device
        .settings()
        .quantization
        .scheme
        .with_value(QuantValue::Q8S);
    let mut weights = MatmulWeights::default();
    model.visit(&mut weights);
    let (blocked, whole): (Vec<_>, Vec<_>) =
        weights
            .found
            .into_iter()
            .partition(|(_, columns)| match granularity {
                Int8Granularity::PerBlock(size) => columns % usize::from(size) == 0,
                Int8Granularity::PerTensor => false,
            });
    let paths =
        |list: Vec<(String, usize)>| list.into_iter().map(|(path, _)| path).collect::<Vec<_>>();
    let mut model = model;
    if let Int8Granularity::PerBlock(size) = granularity
        && !blocked.is_empty()
    {
        let scheme = base.per_block([size], ScaleDtype::F32);
        let mut quantizer = Quantizer::new(Calibration::MinMax, scheme);
        model =
            model.quantize_weights_group(&mut quantizer, ParamGroup::from_paths(paths(blocked)));
    }
    if !whole.is_empty() {
        let mut quantizer = Quantizer::new(Calibration::MinMax, base.per_tensor(ScaleDtype::F32));
        model = model.quantize_weights_group(&mut quantizer, ParamGroup::from_paths(paths(whole)));
    }
    model
}

struct Dequantizer;

impl ModuleMapper for Dequantizer {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|tensor| tensor.dequantize())
    }
}

/// The model with every int8 weight expanded back to f32 (values unchanged: the int8 rounding
/// stays). burn 0.22's int8 matmul kernel does not compile under WebGPU (Chromium's WGSL
/// validation rejects its shader; native Vulkan and the CPU backend run it), so in the browser
/// int8 is the download and storage format and the GPU computes in f32.
pub fn dequantize(model: Sam2Model) -> Sam2Model {
    model.map(&mut Dequantizer)
}

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
        let masks = read_inside(prediction.masks, 0.0).await?;
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
    fn granularity_labels_round_trip() {
        for granularity in [Int8Granularity::PerTensor, Int8Granularity::PerBlock(32)] {
            assert_eq!(
                Int8Granularity::parse(&granularity.label()),
                Some(granularity)
            );
        }
        assert_eq!(
            Int8Granularity::parse("block-64"),
            Some(Int8Granularity::PerBlock(64))
        );
        assert_eq!(Int8Granularity::parse("block-0"), None);
        assert_eq!(Int8Granularity::parse("int4"), None);
    }

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
