//! A region-of-interest mask over an image: per-pixel weights in [0, 1] (soft masks allowed).

use image::DynamicImage;

use crate::sam2::BinaryMask;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MaskError {
    #[error(
        "the mask is {mask_width}×{mask_height} but the image is {image_width}×{image_height}; they must match"
    )]
    SizeMismatch {
        mask_width: usize,
        mask_height: usize,
        image_width: usize,
        image_height: usize,
    },
    #[error("the mask is empty (no pixel above {threshold}): there is no region to focus on")]
    Empty { threshold: f32 },
    #[error("mask values must be {expected} numbers, got {found}")]
    Length { expected: usize, found: usize },
    #[error(
        "the box {left},{top},{right},{bottom} is not inside the {width}×{height} image with left < right and top < bottom"
    )]
    BadBox {
        left: usize,
        top: usize,
        right: usize,
        bottom: usize,
        width: usize,
        height: usize,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Mask {
    pub width: usize,
    pub height: usize,
    /// Row-major weights in [0, 1].
    pub weights: Vec<f32>,
}

/// How well two masks agree.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Overlap {
    pub dice: f64,
    pub iou: f64,
}

/// Weight above which a pixel counts as inside (for boxes and emptiness).
pub const INSIDE: f32 = 0.5;

impl Mask {
    pub fn new(width: usize, height: usize, weights: Vec<f32>) -> Result<Self, MaskError> {
        if weights.len() != width * height {
            return Err(MaskError::Length {
                expected: width * height,
                found: weights.len(),
            });
        }
        Ok(Self {
            width,
            height,
            weights: weights.into_iter().map(|w| w.clamp(0.0, 1.0)).collect(),
        })
    }

    /// A mask drawn as an image: brightness is weight (white inside, black outside); alpha, if
    /// any, multiplies it.
    pub fn from_image(image: &DynamicImage) -> Self {
        let grey = image.to_luma_alpha8();
        let weights = grey
            .pixels()
            .map(|pixel| f32::from(pixel.0[0]) / 255.0 * f32::from(pixel.0[1]) / 255.0)
            .collect();
        Self {
            width: grey.width() as usize,
            height: grey.height() as usize,
            weights,
        }
    }

    /// A rectangle (inclusive-exclusive pixel bounds), e.g. from a detector or a user's box.
    pub fn rectangle(
        width: usize,
        height: usize,
        left: usize,
        top: usize,
        right: usize,
        bottom: usize,
    ) -> Self {
        let weights = (0..width * height)
            .map(|index| {
                let (x, y) = (index % width, index / width);
                if (left..right).contains(&x) && (top..bottom).contains(&y) {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        Self {
            width,
            height,
            weights,
        }
    }

    /// A user's box `[left, top, right, bottom]`, checked against the image size.
    pub fn from_box(width: usize, height: usize, region: [usize; 4]) -> Result<Self, MaskError> {
        let [left, top, right, bottom] = region;
        if left >= right || top >= bottom || right > width || bottom > height {
            return Err(MaskError::BadBox {
                left,
                top,
                right,
                bottom,
                width,
                height,
            });
        }
        Ok(Self::rectangle(width, height, left, top, right, bottom))
    }

    pub fn check_matches(&self, width: usize, height: usize) -> Result<(), MaskError> {
        if (self.width, self.height) != (width, height) {
            return Err(MaskError::SizeMismatch {
                mask_width: self.width,
                mask_height: self.height,
                image_width: width,
                image_height: height,
            });
        }
        Ok(())
    }

    /// Share of the image inside the mask.
    pub fn coverage(&self) -> f32 {
        if self.weights.is_empty() {
            return 0.0;
        }
        self.weights.iter().filter(|&&w| w > INSIDE).count() as f32 / self.weights.len() as f32
    }

    /// The pixel-wise maximum of two masks of the same size (several ground-truth masks of one
    /// image, as BUSI has for some, make one region).
    pub fn union(&self, other: &Mask) -> Result<Mask, MaskError> {
        if (self.width, self.height) != (other.width, other.height) {
            return Err(MaskError::SizeMismatch {
                mask_width: other.width,
                mask_height: other.height,
                image_width: self.width,
                image_height: self.height,
            });
        }
        Ok(Mask {
            width: self.width,
            height: self.height,
            weights: self
                .weights
                .iter()
                .zip(&other.weights)
                .map(|(a, b)| a.max(*b))
                .collect(),
        })
    }

    /// Dice and IoU of the inside pixels (weight > 0.5) of two masks of the same size; both
    /// empty counts as full agreement. `None` when the sizes differ.
    pub fn overlap(&self, other: &Mask) -> Option<Overlap> {
        if (self.width, self.height) != (other.width, other.height) {
            return None;
        }
        let (mut both, mut mine, mut theirs) = (0usize, 0usize, 0usize);
        for (a, b) in self.weights.iter().zip(&other.weights) {
            let (a, b) = (*a > INSIDE, *b > INSIDE);
            both += usize::from(a && b);
            mine += usize::from(a);
            theirs += usize::from(b);
        }
        let either = mine + theirs - both;
        if either == 0 {
            return Some(Overlap {
                dice: 1.0,
                iou: 1.0,
            });
        }
        Some(Overlap {
            dice: 2.0 * both as f64 / (mine + theirs) as f64,
            iou: both as f64 / either as f64,
        })
    }

    /// Tightest box `(left, top, right, bottom)` around the inside pixels.
    pub fn bounding_box(&self) -> Result<(usize, usize, usize, usize), MaskError> {
        let mut bounds: Option<(usize, usize, usize, usize)> = None;
        for (index, &weight) in self.weights.iter().enumerate() {
            if weight > INSIDE {
                let (x, y) = (index % self.width, index / self.width);
                bounds = Some(match bounds {
                    None => (x, y, x + 1, y + 1),
                    Some((l, t, r, b)) => (l.min(x), t.min(y), r.max(x + 1), b.max(y + 1)),
                });
            }
        }
        bounds.ok_or(MaskError::Empty { threshold: INSIDE })
    }
}

/// SAM 2's mask as a focus mask for CLIP (1 inside, 0 outside).
impl From<&BinaryMask> for Mask {
    fn from(mask: &BinaryMask) -> Self {
        Mask {
            width: mask.width,
            height: mask.height,
            weights: mask
                .pixels
                .iter()
                .map(|&inside| if inside { 1.0 } else { 0.0 })
                .collect(),
        }
    }
}
