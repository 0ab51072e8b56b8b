//! `sam2/utils/amg.py`'s run-length masks: what the automatic generator keeps of each mask it
//! found until box NMS has chosen among them. Meta's generator holds its masks as RLE for the
//! same reason: a full-size mask per surviving candidate (hundreds of them, at 32 MB each for a
//! 32-megapixel X-ray as one byte a pixel) is far more memory than the answer.

/// A binary mask as the row-major pixel indices where it changes value, starting outside: a
/// blob takes two numbers per row it spans. Built a band of rows at a time
/// ([`MaskRunsBuilder`]), so the whole mask never exists as one buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaskRuns {
    pub width: usize,
    pub height: usize,
    /// Strictly increasing; pixels from an odd-numbered change (1st, 3rd, …) up to the next are
    /// inside. Indices fit `u32`: an image has at most [`crate::limits::MAX_IMAGE_PIXELS`].
    changes: Vec<u32>,
}

impl MaskRuns {
    /// Whether pixel `(x, y)` is inside (false outside the image).
    pub fn contains(&self, x: usize, y: usize) -> bool {
        if x >= self.width || y >= self.height {
            return false;
        }
        let index = (y * self.width + x) as u32;
        // The number of changes at or before `index`: odd means inside.
        self.changes.partition_point(|&change| change <= index) % 2 == 1
    }

    /// The mask as one `bool` a pixel, row-major.
    pub fn to_pixels(&self) -> Vec<bool> {
        let mut pixels = vec![false; self.width * self.height];
        for pair in self.changes.chunks(2) {
            let start = pair[0] as usize;
            let end = pair.get(1).map_or(pixels.len(), |&end| end as usize);
            pixels[start..end].fill(true);
        }
        pixels
    }
}

/// Builds a [`MaskRuns`] from its rows in order, with its area and box on the way.
#[derive(Debug)]
pub struct MaskRunsBuilder {
    width: usize,
    height: usize,
    changes: Vec<u32>,
    /// Pixels seen so far.
    position: usize,
    inside: bool,
    area: usize,
    /// `[x0, y0, x1, y1]` inclusive, while any pixel is inside.
    bounds: Option<[usize; 4]>,
}

impl MaskRunsBuilder {
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            changes: Vec::new(),
            position: 0,
            inside: false,
            area: 0,
            bounds: None,
        }
    }

    /// The next whole rows of the mask (`pixels.len()` a multiple of the width).
    pub fn push_rows(&mut self, pixels: &[bool]) {
        debug_assert_eq!(pixels.len() % self.width.max(1), 0);
        for (offset, row) in pixels.chunks(self.width.max(1)).enumerate() {
            let y = (self.position + offset * self.width) / self.width.max(1);
            let first = row.iter().position(|&inside| inside);
            if let Some(first) = first {
                let last = row.iter().rposition(|&inside| inside).unwrap_or(first);
                self.area += row.iter().filter(|&&inside| inside).count();
                self.bounds = Some(match self.bounds {
                    None => [first, y, last, y],
                    Some([x0, y0, x1, _]) => [x0.min(first), y0, x1.max(last), y],
                });
            }
        }
        for (offset, &inside) in pixels.iter().enumerate() {
            if inside != self.inside {
                self.changes.push((self.position + offset) as u32);
                self.inside = inside;
            }
        }
        self.position += pixels.len();
    }

    /// Pixels inside so far.
    pub fn area(&self) -> usize {
        self.area
    }

    /// `[x0, y0, x1, y1]`, inclusive pixel indices, `[0, 0, 0, 0]` when empty (`batched_mask_to_box`).
    pub fn box_xyxy(&self) -> [usize; 4] {
        self.bounds.unwrap_or([0, 0, 0, 0])
    }

    pub fn finish(self) -> MaskRuns {
        debug_assert_eq!(self.position, self.width * self.height);
        MaskRuns {
            width: self.width,
            height: self.height,
            changes: self.changes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_built_band_by_band_are_the_mask() {
        let (width, height) = (7, 5);
        let pixels: Vec<bool> = (0..width * height)
            .map(|index| {
                let (x, y) = (index % width, index / width);
                (2..5).contains(&x) && (1..4).contains(&y) || index == width * height - 1
            })
            .collect();
        for band_rows in [1, 2, 5] {
            let mut builder = MaskRunsBuilder::new(width, height);
            for band in pixels.chunks(band_rows * width) {
                builder.push_rows(band);
            }
            assert_eq!(builder.area(), 10);
            assert_eq!(builder.box_xyxy(), [2, 1, 6, 4]);
            let runs = builder.finish();
            assert_eq!(runs.to_pixels(), pixels, "bands of {band_rows} rows");
            for y in 0..height {
                for x in 0..width {
                    assert_eq!(runs.contains(x, y), pixels[y * width + x], "({x}, {y})");
                }
            }
            assert!(!runs.contains(width, 0) && !runs.contains(0, height));
        }
        let mut empty = MaskRunsBuilder::new(3, 2);
        empty.push_rows(&[false; 6]);
        assert_eq!((empty.area(), empty.box_xyxy()), (0, [0, 0, 0, 0]));
        assert_eq!(empty.finish().to_pixels(), vec![false; 6]);
    }
}
