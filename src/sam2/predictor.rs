//! `sam2/sam2_image_predictor.py`: embed an image once, then answer point and box prompts given
//! in the image's own pixels with masks at the image's size.

use burn::tensor::{Tensor, TensorData};

use super::model::{ImageFeatures, Sam2Error, Sam2Model};
use super::sam::prompt_encoder::{LABEL_BOX_BOTTOM_RIGHT, LABEL_BOX_TOP_LEFT};
use super::transforms::{
    MAX_FULL_SIZE_BYTES, input_tensor, row_bands, to_model_coords, upscale_columns, upscale_masks,
    upscale_rows,
};
use crate::clip::preprocess::Pixels8;
use crate::device;

/// One prompt in original-image pixels: points (label 1 foreground, 0 background), a box, or
/// both (the box goes first, as two corner points, as SAM 2's predictor sends it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Prompt {
    pub points: Vec<[f32; 2]>,
    pub labels: Vec<i32>,
    /// `[x0, y0, x1, y1]`.
    pub box_xyxy: Option<[f32; 4]>,
    /// Low-resolution mask logits from an earlier prediction (`low_res_masks`, one mask,
    /// row-major, `4e × 4e` = 256 × 256 for the published models), to refine it.
    pub mask_input: Option<Vec<f32>>,
}

impl Prompt {
    pub fn point(x: f32, y: f32) -> Self {
        Self {
            points: vec![[x, y]],
            labels: vec![1],
            ..Self::default()
        }
    }

    pub fn boxed(box_xyxy: [f32; 4]) -> Self {
        Self {
            box_xyxy: Some(box_xyxy),
            ..Self::default()
        }
    }

    fn check(&self, width: usize, height: usize, low_res_pixels: usize) -> Result<(), Sam2Error> {
        if self.points.len() != self.labels.len() {
            return Err(Sam2Error::Prompt(format!(
                "{} points but {} labels",
                self.points.len(),
                self.labels.len()
            )));
        }
        if self.points.is_empty() && self.box_xyxy.is_none() {
            return Err(Sam2Error::Prompt("a prompt needs a point or a box".into()));
        }
        if let Some(mask) = &self.mask_input
            && mask.len() != low_res_pixels
        {
            return Err(Sam2Error::Prompt(format!(
                "the mask prompt has {} values; this model's low-resolution masks have {low_res_pixels}",
                mask.len()
            )));
        }
        if let Some(label) = self.labels.iter().find(|label| !matches!(label, 0 | 1)) {
            return Err(Sam2Error::Prompt(format!(
                "point label {label}: use 1 (foreground) or 0 (background)"
            )));
        }
        let inside = |x: f32, y: f32| {
            x.is_finite()
                && y.is_finite()
                && x >= 0.0
                && y >= 0.0
                && x <= width as f32
                && y <= height as f32
        };
        for point in &self.points {
            if !inside(point[0], point[1]) {
                return Err(Sam2Error::Prompt(format!(
                    "the point {},{} is outside the {width}×{height} image",
                    point[0], point[1]
                )));
            }
        }
        if let Some([x0, y0, x1, y1]) = self.box_xyxy
            && (!inside(x0, y0) || !inside(x1, y1) || x0 >= x1 || y0 >= y1)
        {
            return Err(Sam2Error::Prompt(format!(
                "the box {x0},{y0},{x1},{y1} must lie inside the {width}×{height} image with x0 < x1 and y0 < y1"
            )));
        }
        Ok(())
    }

    /// Points in the model's frame with SAM 2's labels, the box's corners first.
    fn model_points(&self, width: usize, height: usize, size: usize) -> (Vec<[f32; 2]>, Vec<i32>) {
        let mut points = Vec::new();
        let mut labels = Vec::new();
        if let Some([x0, y0, x1, y1]) = self.box_xyxy {
            points.push(to_model_coords([x0, y0], width, height, size));
            points.push(to_model_coords([x1, y1], width, height, size));
            labels.extend([LABEL_BOX_TOP_LEFT, LABEL_BOX_BOTTOM_RIGHT]);
        }
        for (point, label) in self.points.iter().zip(&self.labels) {
            points.push(to_model_coords(*point, width, height, size));
            labels.push(*label);
        }
        (points, labels)
    }
}

/// An image embedded by [`Sam2Predictor::set_image`].
#[derive(Clone, Debug)]
pub struct EmbeddedImage {
    pub features: ImageFeatures,
    pub width: usize,
    pub height: usize,
}

/// Masks for a batch of prompts, still on the device, at the decoder's resolution: the
/// image-size masks are made when read ([`Prediction::read_inside`]), in bands of rows — three
/// f32 masks of a large image in one piece would pass WebGPU's buffer limit (and a few hundred
/// MB natively).
#[derive(Clone, Debug)]
pub struct Prediction {
    /// `[b, m]`.
    pub iou_predictions: Tensor<2>,
    /// `[b, m, 4e, 4e]`, clamped to ±32 as the reference returns them.
    pub low_res_masks: Tensor<4>,
    /// `[b, m, 4e, 4e]` as the decoder gave them: what the image-size masks are interpolated
    /// from (the reference clamps only the low-resolution masks it returns).
    logits: Tensor<4>,
    /// The image's size.
    pub width: usize,
    pub height: usize,
}

impl Prediction {
    /// `[b, m, height, width]` mask logits at the image's size, in one piece
    /// (`postprocess_masks`): for small images and for tests; [`Prediction::read_inside`] is
    /// what anything sized by a user's image uses.
    pub fn full_size_masks(&self) -> Tensor<4> {
        upscale_masks(self.logits.clone(), self.width, self.height)
    }

    /// Prompt `index`'s masks at the image's size, `logit > threshold` per pixel (SAM 2's
    /// threshold is 0), row-major, one `Vec` per mask; made and read back in bands of rows of at
    /// most [`MAX_FULL_SIZE_BYTES`].
    pub async fn read_inside(
        &self,
        index: usize,
        threshold: f32,
    ) -> Result<Vec<Vec<bool>>, Sam2Error> {
        self.read_inside_in_bands(index, threshold, MAX_FULL_SIZE_BYTES)
            .await
    }

    /// [`Prediction::read_inside`] with the band size given (tests make it small).
    pub async fn read_inside_in_bands(
        &self,
        index: usize,
        threshold: f32,
        max_bytes: usize,
    ) -> Result<Vec<Vec<bool>>, Sam2Error> {
        let [_, count, low_h, low_w] = self.logits.dims();
        let (width, height) = (self.width, self.height);
        let low = self
            .logits
            .clone()
            .narrow(0, index, 1)
            .reshape([count, low_h, low_w]);
        let wide = upscale_columns(low, width);
        let mut masks = vec![Vec::with_capacity(width * height); count];
        for rows in row_bands(count, width, height, max_bytes) {
            let band = rows.len() * width;
            let inside = read_inside(upscale_rows(wide.clone(), height, rows), threshold).await?;
            for (mask, part) in masks.iter_mut().zip(inside.chunks(band)) {
                mask.extend_from_slice(part);
            }
        }
        Ok(masks)
    }
}

#[derive(Debug)]
pub struct Sam2Predictor {
    pub model: Sam2Model,
}

impl Sam2Predictor {
    pub fn new(model: Sam2Model) -> Self {
        Self { model }
    }

    pub fn image_size(&self) -> usize {
        self.model.config.image_size
    }

    /// The encoder's input for an image (normalised, resized to S×S).
    pub fn input(&self, image: &Pixels8) -> Tensor<4> {
        input_tensor(image, self.image_size(), &self.model.device())
    }

    pub fn set_image(&self, image: &Pixels8) -> EmbeddedImage {
        self.embed_input(self.input(image), image.width, image.height)
    }

    /// [`Sam2Predictor::set_image`] from an already preprocessed `[1, 3, S, S]` input.
    pub fn embed_input(&self, input: Tensor<4>, width: usize, height: usize) -> EmbeddedImage {
        EmbeddedImage {
            features: self.model.encode_image(input),
            width,
            height,
        }
    }

    /// Masks for each prompt (all prompts of a batch must have the same number of points and
    /// all or none a box). `multimask_output`: three candidates per prompt, else one
    /// (SAM 2 picks it by stability).
    pub fn predict(
        &self,
        image: &EmbeddedImage,
        prompts: &[Prompt],
        multimask_output: bool,
    ) -> Result<Prediction, Sam2Error> {
        let low = self.predict_low_res(image, prompts, multimask_output)?;
        Ok(Prediction {
            iou_predictions: low.iou_predictions,
            low_res_masks: low.masks.clone().clamp(-32.0, 32.0),
            logits: low.masks,
            width: image.width,
            height: image.height,
        })
    }

    /// The decoder's outputs before upscaling: `masks` are `[b, m, 4e, 4e]` logits.
    pub fn predict_low_res(
        &self,
        image: &EmbeddedImage,
        prompts: &[Prompt],
        multimask_output: bool,
    ) -> Result<super::sam::mask_decoder::DecoderOutput, Sam2Error> {
        let Some(first) = prompts.first() else {
            return Err(Sam2Error::Prompt("no prompt given".into()));
        };
        let size = self.image_size();
        let mut coords = Vec::new();
        let mut labels = Vec::new();
        let low_res = self.model.config.low_res_mask_size();
        let mut masks = Vec::new();
        for prompt in prompts {
            prompt.check(image.width, image.height, low_res * low_res)?;
            if prompt.points.len() != first.points.len()
                || prompt.box_xyxy.is_some() != first.box_xyxy.is_some()
                || prompt.mask_input.is_some() != first.mask_input.is_some()
            {
                return Err(Sam2Error::Prompt(
                    "prompts predicted together need the same number of points, boxes and masks"
                        .into(),
                ));
            }
            if let Some(mask) = &prompt.mask_input {
                masks.extend_from_slice(mask);
            }
            let (points, point_labels) = prompt.model_points(image.width, image.height, size);
            coords.extend(points);
            labels.extend(point_labels);
        }
        let batch = prompts.len();
        let encoder = &self.model.sam_prompt_encoder;
        let sparse = encoder.embed_points(&coords, &labels, batch);
        let mask_input = (!masks.is_empty()).then(|| {
            Tensor::<4>::from_data(
                TensorData::new(masks, [batch, low_res, low_res, 1]),
                &self.model.device(),
            )
        });
        let dense = encoder.embed_masks(mask_input);
        // Shared by every prompt: the decoder broadcasts them over the batch.
        let high_res = image.features.high_res.clone();
        Ok(self.model.sam_mask_decoder.forward(
            image.features.image_embed.clone(),
            encoder.dense_pe(),
            sparse,
            dense,
            high_res,
            multimask_output,
        ))
    }
}

/// A binary mask read back from the device, with the model's scores.
#[derive(Clone, Debug, PartialEq)]
pub struct BinaryMask {
    pub width: usize,
    pub height: usize,
    /// Row-major, `true` inside.
    pub pixels: Vec<bool>,
    pub predicted_iou: f32,
}

impl BinaryMask {
    pub fn area(&self) -> usize {
        self.pixels.iter().filter(|&&inside| inside).count()
    }

    /// A black-and-white 8-bit image (white inside).
    pub fn to_luma(&self) -> Vec<u8> {
        self.pixels
            .iter()
            .map(|&inside| if inside { 255 } else { 0 })
            .collect()
    }

    /// The mask as a grey PNG file's bytes (what `--mask` and the page's CLIP `mask` take).
    pub fn to_png(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        let encoder = image::codecs::png::PngEncoder::new(&mut bytes);
        // Writing into a Vec with matching dimensions cannot fail.
        let _ = image::ImageEncoder::write_image(
            encoder,
            &self.to_luma(),
            self.width as u32,
            self.height as u32,
            image::ExtendedColorType::L8,
        );
        bytes
    }
}

/// Reads the masks of prompt `index` of a prediction (thresholded at 0), best predicted IoU
/// first. Async so the browser can await the GPU; natively, block on it.
pub async fn read_masks(
    prediction: &Prediction,
    index: usize,
) -> Result<Vec<BinaryMask>, Sam2Error> {
    let inside = prediction.read_inside(index, 0.0).await?;
    let ious = read_floats(prediction.iou_predictions.clone().narrow(0, index, 1)).await?;
    let mut masks: Vec<BinaryMask> = inside
        .into_iter()
        .zip(ious)
        .map(|(pixels, predicted_iou)| BinaryMask {
            width: prediction.width,
            height: prediction.height,
            pixels,
            predicted_iou,
        })
        .collect();
    masks.sort_by(|a, b| b.predicted_iou.total_cmp(&a.predicted_iou));
    Ok(masks)
}

/// `logits > threshold`, element by element, read back from the device.
pub async fn read_inside<const D: usize>(
    logits: Tensor<D>,
    threshold: f32,
) -> Result<Vec<bool>, Sam2Error> {
    let data = logits
        .greater_elem(threshold)
        .int()
        .into_data_async()
        .await
        .map_err(|error| Sam2Error::Device(format!("{error:?}")))?;
    let values = data
        .convert::<i32>()
        .try_to_vec::<i32>()
        .map_err(|error| Sam2Error::Device(format!("{error:?}")))?;
    Ok(values.into_iter().map(|value| value != 0).collect())
}

/// [`crate::device::read_floats`] with SAM 2's error.
pub async fn read_floats<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>, Sam2Error> {
    device::read_floats(tensor)
        .await
        .map_err(|error| Sam2Error::Device(error.0))
}
