//! Images held in memory rather than in files (a MedMNIST archive's).

/// Images held in memory (an archive's), 8-bit, row-major.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ArrayImages {
    pub width: usize,
    pub height: usize,
    /// 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// One image per entry.
    pub images: Vec<Vec<u8>>,
}

impl ArrayImages {
    /// The image as a PNG (lossless, deterministic: the same bytes every time, so the embedding
    /// cache and manifests key it by content like any file).
    pub fn png(&self, index: usize) -> Result<Vec<u8>, String> {
        let pixels = self
            .images
            .get(index)
            .ok_or_else(|| format!("no image {index} in the archive"))?;
        let color = if self.channels == 1 {
            image::ExtendedColorType::L8
        } else {
            image::ExtendedColorType::Rgb8
        };
        let mut bytes = Vec::new();
        image::ImageEncoder::write_image(
            image::codecs::png::PngEncoder::new(&mut bytes),
            pixels,
            self.width as u32,
            self.height as u32,
            color,
        )
        .map_err(|error| error.to_string())?;
        Ok(bytes)
    }
}
