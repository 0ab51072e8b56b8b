//! A patch-grid map carried back onto pixels: at the tower's input size as Chefer's notebook
//! shows it (bilinear, PyTorch's `align_corners=False`, then min–max), and on the original
//! image, with the preprocessing's resize and centre crop (and the crop prompt's box) undone.

/// The map on the original image: `values[y·width + x]` in [0, 1]; NaN where the image tower
/// saw nothing of the pixel (cut off by the centre crop or the crop prompt).
#[derive(Clone, Debug, PartialEq)]
pub struct HeatMap {
    pub width: usize,
    pub height: usize,
    pub values: Vec<f32>,
}

impl HeatMap {
    /// The value at a pixel, `None` where the tower did not see it.
    pub fn at(&self, x: usize, y: usize) -> Option<f32> {
        let value = *self.values.get(y * self.width + x)?;
        (!value.is_nan()).then_some(value)
    }
}

/// How the tower's input was cut from the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The original image, `[width, height]`.
    pub image: [usize; 2],
    /// The picture the preprocessing received, `[left, top, width, height]` in the image (all of
    /// it, except under the crop prompt).
    pub picture: [usize; 4],
    /// That picture after the resize, `[width, height]`.
    pub resized: [usize; 2],
    /// The centre crop's `[left, top]` in the resized picture.
    pub crop: [usize; 2],
    /// Side of the tower's input.
    pub input_size: usize,
}

/// Bilinear sample of a `grid`×`grid` map at grid coordinates (pixel centres at integers),
/// clamped at the edges as PyTorch's `interpolate(mode="bilinear", align_corners=False)` does.
fn sample(map: &[f32], grid: usize, gx: f32, gy: f32) -> f32 {
    let axis = |g: f32| {
        let g = g.max(0.0);
        let low = (g.floor() as usize).min(grid - 1);
        let high = (low + 1).min(grid - 1);
        (low, high, g - low as f32)
    };
    let (x0, x1, fx) = axis(gx);
    let (y0, y1, fy) = axis(gy);
    let row = |y: usize| (1.0 - fx) * map[y * grid + x0] + fx * map[y * grid + x1];
    (1.0 - fy) * row(y0) + fy * row(y1)
}

/// The grid map resampled to `size`×`size` (row-major), unnormalised.
pub fn upsample(map: &[f32], grid: usize, size: usize) -> Vec<f32> {
    let scale = grid as f32 / size as f32;
    let coordinate = |pixel: usize| (pixel as f32 + 0.5) * scale - 0.5;
    let mut out = Vec::with_capacity(size * size);
    for y in 0..size {
        for x in 0..size {
            out.push(sample(map, grid, coordinate(x), coordinate(y)));
        }
    }
    out
}

/// The smallest and largest value.
pub fn range(values: &[f32]) -> (f32, f32) {
    values
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(low, high), &value| {
            (low.min(value), high.max(value))
        })
}

/// `(v − min) / (max − min)`, clamped to [0, 1]; all zeros for a flat map (nothing stands out),
/// where the notebook would divide by zero.
pub fn normalised(values: &[f32], (low, high): (f32, f32)) -> Vec<f32> {
    let span = high - low;
    values
        .iter()
        .map(|&value| {
            if span > 0.0 {
                ((value - low) / span).clamp(0.0, 1.0)
            } else {
                0.0
            }
        })
        .collect()
}

/// The grid map on the original image's pixels, normalised with `range` (the input-size map's,
/// so both read on one scale). Each pixel centre is carried through the placement into the
/// tower's input and sampled there, so the map lines up with the image whatever its size.
pub fn on_image(map: &[f32], grid: usize, placement: &Placement, range: (f32, f32)) -> HeatMap {
    let [width, height] = placement.image;
    let [left, top, picture_width, picture_height] = placement.picture;
    let [resized_width, resized_height] = placement.resized;
    let size = placement.input_size as f32;
    let to_grid = grid as f32 / size;
    // Image pixel centre → position in the tower's input (in input pixels), per axis.
    let to_input = |pixel: usize, start: usize, extent: usize, resized: usize, crop: usize| {
        let inside = pixel as f32 + 0.5 - start as f32;
        if inside < 0.0 || inside >= extent as f32 {
            return None;
        }
        let position = inside * resized as f32 / extent as f32 - crop as f32;
        (0.0..size).contains(&position).then_some(position)
    };
    let columns: Vec<Option<f32>> = (0..width)
        .map(|x| to_input(x, left, picture_width, resized_width, placement.crop[0]))
        .collect();
    let mut values = Vec::with_capacity(width * height);
    for y in 0..height {
        let row = to_input(y, top, picture_height, resized_height, placement.crop[1]);
        for column in &columns {
            values.push(match (column, row) {
                (Some(u), Some(v)) => sample(map, grid, u * to_grid - 0.5, v * to_grid - 0.5),
                _ => f32::NAN,
            });
        }
    }
    let scaled = normalised(&values, range);
    let values = values
        .iter()
        .zip(scaled)
        .map(|(raw, value)| if raw.is_nan() { f32::NAN } else { value })
        .collect();
    HeatMap {
        width,
        height,
        values,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsampling_matches_pytorch_bilinear_without_aligned_corners() {
        // F.interpolate(torch.tensor([[[[0., 1.], [2., 3.]]]]), size=4, mode="bilinear")
        let out = upsample(&[0.0, 1.0, 2.0, 3.0], 2, 4);
        let expected = [
            0.0, 0.25, 0.75, 1.0, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2.0, 2.25, 2.75, 3.0,
        ];
        assert_eq!(out.len(), expected.len());
        for (got, want) in out.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{out:?}");
        }
    }

    #[test]
    fn a_flat_map_normalises_to_zeros_not_nan() {
        assert_eq!(normalised(&[2.0, 2.0], range(&[2.0, 2.0])), vec![0.0, 0.0]);
        assert_eq!(
            normalised(&[1.0, 3.0, 2.0], (1.0, 3.0)),
            vec![0.0, 1.0, 0.5]
        );
    }

    /// A wide image: resized to height 4 (width 8), centre crop 4 wide at left 2. A map with
    /// one hot patch (right column of a 2×2 grid) must light the image's pixels right of
    /// centre, and the cropped-off sides must be unseen.
    #[test]
    fn the_heat_map_lines_up_with_the_original_pixels_through_resize_and_centre_crop() {
        let placement = Placement {
            image: [16, 8],
            picture: [0, 0, 16, 8],
            resized: [8, 4],
            crop: [2, 0],
            input_size: 4,
        };
        let map = [0.0, 1.0, 0.0, 1.0];
        let heat = on_image(&map, 2, &placement, (0.0, 1.0));
        assert_eq!((heat.width, heat.height), (16, 8));
        // Input x ∈ [0, 4) ↔ resized x ∈ [2, 6) ↔ image x ∈ [4, 12).
        for y in 0..8 {
            for x in 0..16 {
                let seen = heat.at(x, y).is_some();
                assert_eq!(seen, (4..12).contains(&x), "pixel ({x}, {y})");
            }
        }
        let left = heat.at(4, 3).unwrap();
        let right = heat.at(11, 3).unwrap();
        assert!(left < 0.01 && right > 0.99, "left {left}, right {right}");
        // Symmetric about the crop's centre (image x = 8).
        for x in 4..12 {
            let mirrored = heat.at(15 - x, 3).unwrap();
            assert!((heat.at(x, 3).unwrap() + mirrored - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn under_the_crop_prompt_only_the_box_is_seen() {
        let placement = Placement {
            image: [10, 10],
            picture: [2, 3, 4, 4],
            resized: [4, 4],
            crop: [0, 0],
            input_size: 4,
        };
        let heat = on_image(&[0.5; 4], 2, &placement, (0.0, 1.0));
        for y in 0..10 {
            for x in 0..10 {
                let inside = (2..6).contains(&x) && (3..7).contains(&y);
                assert_eq!(heat.at(x, y).is_some(), inside, "pixel ({x}, {y})");
            }
        }
        assert_eq!(heat.at(3, 4), Some(0.5));
    }
}
