//! DICOM files (Part 10: a 128-byte preamble, `DICM`, the file meta group, the data set), read
//! with the dicom-rs crates and made into the 8-bit picture a radiologist's viewer shows.
//!
//! The chain is the standard's (PS3.3 C.11): stored samples → modality LUT (rescale slope and
//! intercept: Hounsfield units for CT) → VOI LUT (the VOI LUT sequence if present, else the
//! first window centre/width with its VOI LUT function) → 0–255 → MONOCHROME1 inverted. Without
//! any VOI transform, 8-bit samples are taken as stored and wider ones are windowed min–max,
//! as 16-bit PNGs are. Only the first frame of a multi-frame file is used, and the decoded
//! image says so. `scripts/reference/gen_dicom.py` computes the same chain with pydicom.
//!
//! Every size in the header is checked before anything is decoded: a file may claim any
//! number of rows and columns over a few bytes of pixels.

use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, OpenFileOptions, Tag, file::ReadPreamble};
use dicom_pixeldata::{PixelDecoder, VoiLutFunction, WindowLevel};
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use image::{DynamicImage, GrayImage, RgbImage};

use super::decoded::{ColorInfo, DecodedImage, ImageError, check_size, is_grey};
use super::window::window_min_max;
use crate::limits::MAX_DECODED_BYTES;

const FORMAT: &str = "DICOM";

/// Whether the bytes are a DICOM Part 10 file (the `DICM` magic after the 128-byte preamble).
pub fn is_dicom(bytes: &[u8]) -> bool {
    bytes.get(128..132) == Some(b"DICM")
}

/// The first fragment of encapsulated (compressed) pixel data.
fn first_fragment(object: &DefaultDicomObject) -> Option<&[u8]> {
    let element = object.element_opt(tags::PIXEL_DATA).ok().flatten()?;
    Some(element.value().fragments()?.first()?.as_slice())
}

/// The sample precision a lossy (DCT) JPEG stream's frame header declares: `P` of its SOF0,
/// SOF1, SOF2 … marker. `None` for a lossless (SOF3, SOF7, SOF11, SOF15) or unreadable stream.
fn jpeg_dct_precision(stream: &[u8]) -> Option<u8> {
    if stream.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut at = 2;
    while let [0xFF, marker, high, low, ..] = *stream.get(at..)? {
        match marker {
            // Fill bytes before a marker.
            0xFF => at += 1,
            0xC0..=0xC2 | 0xC5 | 0xC6 | 0xC9 | 0xCA | 0xCD | 0xCE => {
                return stream.get(at + 4).copied();
            }
            0xC3 | 0xC7 | 0xCB | 0xCF | 0xDA => return None,
            _ => at += 2 + usize::from(u16::from_be_bytes([high, low])),
        }
    }
    None
}

fn corrupt(detail: impl Into<String>) -> ImageError {
    ImageError::Corrupt {
        format: FORMAT.into(),
        detail: detail.into(),
    }
}

fn unsupported(detail: impl Into<String>) -> ImageError {
    ImageError::Unsupported {
        format: FORMAT.into(),
        detail: detail.into(),
    }
}

/// The image attributes of the data set (PS3.3 C.7.6.3), as the file states them.
struct Layout {
    rows: u32,
    columns: u32,
    samples_per_pixel: u16,
    bits_allocated: u16,
    bits_stored: u16,
    signed: bool,
    photometric: String,
    frames: u32,
}

/// Decode a DICOM file's first frame into 8-bit grey (or RGB for colour images).
///
/// Not split: the pixel pipeline in the standard's order (transfer syntax, modality LUT, VOI LUT or
/// window, MONOCHROME1 inversion, 8 bits) on one frame.
pub fn decode_dicom(bytes: &[u8]) -> Result<DecodedImage, ImageError> {
    // The transfer syntax is judged before dicom-rs reads the data set (a deflated or unknown
    // one would only give a parse error there).
    let syntax_uid = check_declared_lengths(bytes)?
        .ok_or_else(|| corrupt("its file meta group names no transfer syntax"))?;
    let syntax = TransferSyntaxRegistry
        .get(&syntax_uid)
        .ok_or_else(|| unsupported(format!("unknown transfer syntax {syntax_uid}")))?;
    if syntax.is_unsupported_pixel_encapsulation() || !syntax.can_decode_all() {
        return Err(unsupported(format!(
            "it is encoded as {} ({syntax_uid}), which has no decoder here (uncompressed, RLE \
             and JPEG, 8-bit lossy or lossless, are read); convert it first, e.g. `gdcmconv \
             --raw in.dcm out.dcm` or `dcmdjpeg`",
            syntax.name()
        )));
    }
    let object = OpenFileOptions::new()
        .read_preamble(ReadPreamble::Always)
        .from_reader(bytes)
        .map_err(|error| corrupt(format!("unreadable header: {}", error_chain(&error))))?;
    if object
        .element_opt(tags::PIXEL_DATA)
        .ok()
        .flatten()
        .is_none()
    {
        return Err(unsupported(
            "it holds no pixel data (a report, a structured document or a presentation state?)",
        ));
    }
    let layout = Layout::read(&object)?;
    layout.check(&object, syntax.is_encapsulated_pixel_data())?;
    if let Some(precision) = first_fragment(&object).and_then(jpeg_dct_precision)
        && precision > 8
    {
        // A valid file whose codec is missing here, not a damaged one.
        return Err(unsupported(format!(
            "its pixel data is {precision}-bit JPEG ({}), which the JPEG decoder here does not \
             read (8-bit lossy and lossless JPEG are read); convert it first, e.g. `gdcmconv \
             --raw in.dcm out.dcm` or `dcmdjpeg in.dcm out.dcm`",
            syntax.name()
        )));
    }

    let decoded = object
        .decode_pixel_data_frame(0)
        .map_err(|error| corrupt(format!("its pixel data: {}", error_chain(&error))))?;
    let frame = decoded
        .frame_data(0)
        .map_err(|error| corrupt(format!("its pixel data: {}", error_chain(&error))))?;
    let (width, height) = (layout.columns, layout.rows);
    let pixel_count = width as usize * height as usize;
    if (frame.len() as u64) < layout.frame_bytes() {
        return Err(corrupt(format!(
            "the decoded frame holds {} bytes; {width}×{height} pixels need {}",
            frame.len(),
            layout.frame_bytes()
        )));
    }

    let mut notes = Vec::new();
    if layout.bits_stored != layout.bits_allocated || layout.signed {
        notes.push(format!(
            "{} bits stored in {}{}",
            layout.bits_stored,
            layout.bits_allocated,
            if layout.signed { ", signed" } else { "" }
        ));
    }
    if layout.frames > 1 {
        notes.push(format!(
            "frame 1 of {} used (multi-frame file)",
            layout.frames
        ));
    }

    let pixels = if layout.samples_per_pixel == 1 {
        let stored = layout.samples(frame, pixel_count);
        let rescale = decoded
            .rescale()
            .ok()
            .and_then(|all| all.first().copied())
            .unwrap_or(dicom_pixeldata::Rescale {
                slope: 1.0,
                intercept: 0.0,
            });
        let identity_rescale = rescale.slope == 1.0 && rescale.intercept == 0.0;
        let values: Vec<f64> = stored
            .iter()
            .map(|&v| v * rescale.slope + rescale.intercept)
            .collect();
        // dicom-pixeldata hands out the window per frame; the file may offer several.
        let windows_offered = object
            .element_opt(tags::WINDOW_CENTER)
            .ok()
            .flatten()
            .map_or(0, |element| element.value().multiplicity() as usize);
        let voi = Voi::choose(&decoded, &layout, identity_rescale, windows_offered);
        notes.push(voi.describe());
        let mut grey = voi.apply(&values);
        if layout.photometric == "MONOCHROME1" {
            grey.iter_mut().for_each(|v| *v = 255 - *v);
            notes.push("MONOCHROME1: inverted so that dense tissue is bright".into());
        }
        DynamicImage::ImageLuma8(
            GrayImage::from_raw(width, height, grey)
                .ok_or_else(|| corrupt("the frame does not fill its rows and columns"))?,
        )
    } else {
        let rgb = colour(
            frame,
            &layout,
            decoded.photometric_interpretation().as_str(),
            decoded.planar_configuration() == dicom_pixeldata::PlanarConfiguration::PixelFirst,
        )?;
        DynamicImage::ImageRgb8(
            RgbImage::from_raw(width, height, rgb)
                .ok_or_else(|| corrupt("the frame does not fill its rows and columns"))?,
        )
    };
    let channels = pixels.color().channel_count();
    Ok(DecodedImage {
        format: FORMAT.into(),
        width,
        height,
        color: ColorInfo {
            channels,
            bits_per_channel: layout.bits_stored.min(255) as u8,
            has_alpha: false,
            layout: layout.photometric.clone(),
        },
        grayscale_content: is_grey(&pixels),
        pixels,
        notes,
    })
}

impl Layout {
    /// Samples in one frame (pixels × samples per pixel).
    fn frame_samples(&self) -> u64 {
        u64::from(self.rows) * u64::from(self.columns) * u64::from(self.samples_per_pixel)
    }

    /// Bytes of one frame as stored uncompressed (and as decoded).
    fn frame_bytes(&self) -> u64 {
        self.frame_samples() * u64::from(self.bits_allocated / 8)
    }

    fn read(object: &DefaultDicomObject) -> Result<Self, ImageError> {
        let int = |tag: Tag, name: &str| -> Result<Option<u32>, ImageError> {
            match object.element_opt(tag) {
                Ok(Some(element)) => element
                    .to_int::<u32>()
                    .map(Some)
                    .map_err(|_| corrupt(format!("its {name} is not a whole number"))),
                _ => Ok(None),
            }
        };
        let required = |tag: Tag, name: &str| -> Result<u32, ImageError> {
            int(tag, name)?.ok_or_else(|| corrupt(format!("it has pixel data but no {name}")))
        };
        let narrow = |value: u32, name: &str| {
            u16::try_from(value).map_err(|_| corrupt(format!("its {name} ({value}) is impossible")))
        };
        let bits_allocated = narrow(
            required(tags::BITS_ALLOCATED, "Bits Allocated")?,
            "Bits Allocated",
        )?;
        let photometric = object
            .element_opt(tags::PHOTOMETRIC_INTERPRETATION)
            .ok()
            .flatten()
            .and_then(|element| element.to_str().ok())
            .map(|text| text.trim().trim_end_matches('\0').to_ascii_uppercase())
            .ok_or_else(|| corrupt("it has pixel data but no Photometric Interpretation"))?;
        Ok(Self {
            rows: required(tags::ROWS, "Rows")?,
            columns: required(tags::COLUMNS, "Columns")?,
            samples_per_pixel: narrow(
                int(tags::SAMPLES_PER_PIXEL, "Samples per Pixel")?.unwrap_or(1),
                "Samples per Pixel",
            )?,
            bits_allocated,
            bits_stored: narrow(
                int(tags::BITS_STORED, "Bits Stored")?.unwrap_or(u32::from(bits_allocated)),
                "Bits Stored",
            )?,
            signed: int(tags::PIXEL_REPRESENTATION, "Pixel Representation")?.unwrap_or(0) == 1,
            photometric,
            frames: match object.element_opt(tags::NUMBER_OF_FRAMES) {
                // Integer String: "3", sometimes with padding.
                Ok(Some(element)) => element
                    .to_str()
                    .ok()
                    .and_then(|text| text.trim().trim_end_matches('\0').parse::<u32>().ok())
                    .ok_or_else(|| corrupt("its Number of Frames is not a whole number"))?,
                _ => 1,
            },
        })
    }

    /// Every size bounded before a byte is decoded.
    fn check(&self, object: &DefaultDicomObject, encapsulated: bool) -> Result<(), ImageError> {
        if self.rows == 0 || self.columns == 0 || self.frames == 0 {
            return Err(corrupt(format!(
                "it claims {} rows, {} columns and {} frames",
                self.rows, self.columns, self.frames
            )));
        }
        check_size(self.columns, self.rows)?;
        if !matches!(self.bits_allocated, 8 | 16 | 32) {
            return Err(unsupported(format!(
                "{} bits allocated per sample (8, 16 and 32 are read; 1-bit data is a \
                 segmentation or overlay, not an image)",
                self.bits_allocated
            )));
        }
        if self.bits_stored == 0 || self.bits_stored > self.bits_allocated {
            return Err(corrupt(format!(
                "it stores {} bits in {} allocated",
                self.bits_stored, self.bits_allocated
            )));
        }
        let grey = matches!(self.photometric.as_str(), "MONOCHROME1" | "MONOCHROME2");
        let colour = matches!(
            self.photometric.as_str(),
            "RGB" | "YBR_FULL" | "YBR_FULL_422"
        );
        match (self.samples_per_pixel, grey, colour) {
            (1, true, _) => {}
            (3, _, true) if self.bits_allocated == 8 => {}
            (3, _, true) => {
                return Err(unsupported(format!(
                    "{}-bit colour (8-bit colour is read)",
                    self.bits_allocated
                )));
            }
            _ => {
                return Err(unsupported(format!(
                    "photometric interpretation {} with {} samples per pixel (MONOCHROME1/2, \
                     RGB and YBR_FULL(_422) are read; a PALETTE COLOR file needs converting)",
                    self.photometric, self.samples_per_pixel
                )));
            }
        }
        let frame_bytes = self.frame_bytes();
        // The f64 values the windowing computes on are the largest buffer (8 bytes a sample).
        if self.frame_samples() * 8 > MAX_DECODED_BYTES {
            return Err(ImageError::TooLarge(format!(
                "one frame of {}×{} pixels is too large to decode here",
                self.columns, self.rows
            )));
        }
        if !encapsulated {
            let held = object
                .element(tags::PIXEL_DATA)
                .ok()
                .and_then(|element| {
                    element
                        .value()
                        .primitive()
                        .map(|value| value.calculate_byte_len())
                })
                .unwrap_or(0) as u64;
            if held < frame_bytes {
                return Err(corrupt(format!(
                    "its pixel data holds {held} bytes, but one frame of {}×{} pixels × {} \
                     sample(s) of {} bits needs {frame_bytes} (file cut short, or a header that \
                     lies?)",
                    self.columns, self.rows, self.samples_per_pixel, self.bits_allocated
                )));
            }
        }
        Ok(())
    }

    /// The first `count` samples as numbers: little-endian, masked to the bits stored and
    /// sign-extended for signed data (the bits above `bits_stored` may hold anything).
    fn samples(&self, frame: &[u8], count: usize) -> Vec<f64> {
        let stored = u32::from(self.bits_stored);
        let mask: u64 = if stored >= 32 {
            u32::MAX.into()
        } else {
            (1 << stored) - 1
        };
        let width = usize::from(self.bits_allocated / 8);
        frame
            .chunks_exact(width)
            .take(count)
            .map(|chunk| {
                let raw = chunk
                    .iter()
                    .rev()
                    .fold(0u64, |acc, &byte| (acc << 8) | u64::from(byte))
                    & mask;
                if self.signed && raw >> (stored - 1) & 1 == 1 {
                    raw as f64 - (1u64 << stored) as f64
                } else {
                    raw as f64
                }
            })
            .collect()
    }
}

/// The VOI transform chosen for a grey image.
enum Voi {
    /// The first VOI LUT of the file (dicom-pixeldata's own type is not public).
    Table {
        first_mapped: i32,
        bits: u8,
        entries: Vec<u16>,
        explanation: Option<String>,
    },
    Window {
        window: WindowLevel,
        function: VoiLutFunction,
        of: usize,
    },
    /// 8 bits, no rescale, no VOI: the values are the picture.
    AsStored,
    MinMax {
        why: String,
    },
}

impl Voi {
    fn choose(
        decoded: &dicom_pixeldata::DecodedPixelData<'_>,
        layout: &Layout,
        identity_rescale: bool,
        windows_offered: usize,
    ) -> Self {
        if let Ok(Some(tables)) = decoded.voi_lut_sequence()
            && let Some(table) = tables.first()
            && !table.data.is_empty()
        {
            return Self::Table {
                first_mapped: table.min_pixel_value,
                bits: table.bits_stored,
                entries: table.data.clone(),
                explanation: table.explanation.clone(),
            };
        }
        if let Ok(Some(windows)) = decoded.window()
            && let Some(&window) = windows.first()
        {
            let function = decoded
                .voi_lut_function()
                .ok()
                .flatten()
                .and_then(|functions| functions.first().copied())
                .unwrap_or_default();
            let valid = match function {
                VoiLutFunction::Linear => window.width >= 1.0,
                _ => window.width > 0.0,
            };
            if valid && window.width.is_finite() && window.center.is_finite() {
                return Self::Window {
                    window,
                    function,
                    of: windows_offered,
                };
            }
            return Self::MinMax {
                why: format!("its window width {} is invalid", window.width),
            };
        }
        if layout.bits_stored <= 8 && !layout.signed && identity_rescale {
            return Self::AsStored;
        }
        Self::MinMax {
            why: "no window in the file".into(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Table {
                entries,
                explanation,
                ..
            } => format!(
                "VOI LUT {}({} entries)",
                explanation
                    .as_deref()
                    .map(|text| format!("\"{}\" ", text.trim()))
                    .unwrap_or_default(),
                entries.len()
            ),
            Self::Window {
                window,
                function,
                of,
            } => format!(
                "window centre {} / width {}{}{}",
                window.center,
                window.width,
                match function {
                    VoiLutFunction::Linear => "",
                    VoiLutFunction::LinearExact => ", LINEAR_EXACT",
                    VoiLutFunction::Sigmoid => ", SIGMOID",
                },
                if *of > 1 {
                    format!(" (the first of the file's {of})")
                } else {
                    String::new()
                }
            ),
            Self::AsStored => "8-bit values as stored".into(),
            Self::MinMax { why } => format!("min–max window ({why})"),
        }
    }

    /// Values after the modality LUT → 0..=255 (round half up, as pydicom's output + floor(v+½)).
    fn apply(&self, values: &[f64]) -> Vec<u8> {
        let to_byte = |v: f64| {
            if v.is_finite() {
                (v + 0.5).floor().clamp(0.0, 255.0) as u8
            } else {
                0
            }
        };
        match self {
            Self::Table {
                first_mapped,
                bits,
                entries,
                ..
            } => {
                let last = entries.len() - 1;
                let top = ((1u64 << (*bits).clamp(1, 16)) - 1) as f64;
                values
                    .iter()
                    .map(|&v| {
                        let index =
                            (v.round() - f64::from(*first_mapped)).clamp(0.0, last as f64) as usize;
                        to_byte(f64::from(entries[index]) / top * 255.0)
                    })
                    .collect()
            }
            Self::Window {
                window, function, ..
            } => {
                // PS3.3 C.11.2.1.2/3 with the output range [0, 255]: the same picture as
                // pydicom's output over [y_min, y_max] mapped linearly to 0..255.
                let (center, width) = (window.center, window.width);
                values
                    .iter()
                    .map(|&x| {
                        to_byte(match function {
                            VoiLutFunction::Sigmoid => {
                                255.0 / (1.0 + (-4.0 * (x - center) / width).exp())
                            }
                            linear => {
                                let (c, w) = if *linear == VoiLutFunction::Linear {
                                    (center - 0.5, width - 1.0)
                                } else {
                                    (center, width)
                                };
                                if x <= c - w / 2.0 {
                                    0.0
                                } else if x > c + w / 2.0 {
                                    255.0
                                } else {
                                    ((x - c) / w + 0.5) * 255.0
                                }
                            }
                        })
                    })
                    .collect()
            }
            Self::AsStored => values.iter().map(|&v| to_byte(v)).collect(),
            Self::MinMax { .. } => window_min_max(values.iter().copied()),
        }
    }
}

/// 8-bit colour samples as interleaved RGB (planar frames interleaved, YBR_FULL converted by
/// PS3.3 C.7.6.3.1.2's full-range formula).
fn colour(
    frame: &[u8],
    layout: &Layout,
    photometric: &str,
    planar: bool,
) -> Result<Vec<u8>, ImageError> {
    let count = layout.rows as usize * layout.columns as usize;
    let frame = &frame[..count * 3];
    let mut rgb: Vec<u8> = if planar {
        (0..count)
            .flat_map(|i| [frame[i], frame[count + i], frame[2 * count + i]])
            .collect()
    } else {
        frame.to_vec()
    };
    match photometric.trim() {
        "RGB" => {}
        "YBR_FULL" | "YBR_FULL_422" => {
            for pixel in rgb.chunks_exact_mut(3) {
                let (y, cb, cr) = (
                    f64::from(pixel[0]),
                    f64::from(pixel[1]) - 128.0,
                    f64::from(pixel[2]) - 128.0,
                );
                let channel = |v: f64| v.round().clamp(0.0, 255.0) as u8;
                pixel[0] = channel(y + 1.402 * cr);
                pixel[1] = channel(y - 0.344_136 * cb - 0.714_136 * cr);
                pixel[2] = channel(y + 1.772 * cb);
            }
        }
        other => {
            return Err(unsupported(format!(
                "decoded colour in {other} (RGB and YBR_FULL are read)"
            )));
        }
    }
    Ok(rgb)
}

/// Walks the element headers (file meta group, then the data set, sequences and items
/// included) and refuses any declared value length that runs past the end of the file, before
/// dicom-rs sees it: its parser allocates (and zero-fills) a value's declared length before
/// reading it, so a 200-byte file claiming a 2 GiB element would take 2 GiB. Returns the
/// transfer syntax UID of the file meta group.
///
/// Not split: one walk over the element headers (explicit and implicit VR, sequences, items) whose
/// position and nesting are its locals.
fn check_declared_lengths(bytes: &[u8]) -> Result<Option<String>, ImageError> {
    const UNDEFINED: u32 = u32::MAX;
    let mut position = 132;
    let mut syntax: Option<String> = None;
    let (mut implicit, mut big_endian) = (false, false);
    let mut in_meta = true;
    // Inside encapsulated (compressed) pixel data: items are fragments, not data sets.
    let mut in_fragments = false;
    while position < bytes.len() {
        let header = |at: usize, count: usize| {
            bytes
                .get(at..at + count)
                .ok_or_else(|| corrupt(format!("an element header is cut off at byte {at}")))
        };
        let u16_at = |at: usize, big: bool| -> Result<u16, ImageError> {
            let raw: [u8; 2] = header(at, 2)?.try_into().expect("2 bytes");
            Ok(if big {
                u16::from_be_bytes(raw)
            } else {
                u16::from_le_bytes(raw)
            })
        };
        let u32_at = |at: usize, big: bool| -> Result<u32, ImageError> {
            let raw: [u8; 4] = header(at, 4)?.try_into().expect("4 bytes");
            Ok(if big {
                u32::from_be_bytes(raw)
            } else {
                u32::from_le_bytes(raw)
            })
        };
        let group = u16_at(position, false)?;
        if in_meta && group != 0x0002 {
            // The meta group ends; the data set is encoded as its transfer syntax says.
            in_meta = false;
            let uid = syntax.as_deref().unwrap_or("");
            if uid == "1.2.840.10008.1.2.1.99" {
                // Deflated: the data set is a zlib stream, not headers (refused by name later).
                return Ok(syntax);
            }
            implicit = uid == "1.2.840.10008.1.2";
            big_endian = uid == "1.2.840.10008.1.2.2";
        }
        let big = big_endian && !in_meta;
        let group = u16_at(position, big)?;
        let element = u16_at(position + 2, big)?;
        let (length, value_at) = if group == 0xFFFE || (implicit && !in_meta) {
            // Items and delimiters have no VR in any syntax; implicit VR has none at all.
            (u32_at(position + 4, big)?, position + 8)
        } else {
            let vr = header(position + 4, 2)?;
            let long = matches!(
                vr,
                b"OB"
                    | b"OD"
                    | b"OF"
                    | b"OL"
                    | b"OV"
                    | b"OW"
                    | b"SQ"
                    | b"SV"
                    | b"UC"
                    | b"UN"
                    | b"UR"
                    | b"UT"
                    | b"UV"
            );
            if long {
                (u32_at(position + 8, big)?, position + 12)
            } else {
                (u32::from(u16_at(position + 6, big)?), position + 8)
            }
        };
        let is_item = group == 0xFFFE && element == 0xE000;
        if (group, element) == (0xFFFE, 0xE0DD) {
            in_fragments = false;
        }
        if length == UNDEFINED {
            in_fragments |= (group, element) == (0x7FE0, 0x0010);
            // A sequence, an item or encapsulated pixel data whose end a delimiter marks: its
            // contents are headers too, walked in turn.
            position = value_at;
            continue;
        }
        let end = value_at
            .checked_add(length as usize)
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| {
                corrupt(format!(
                    "element ({group:04X},{element:04X}) at byte {position} claims {length} bytes, but the file ends {} bytes later (cut short, or a header that lies?)",
                    bytes.len().saturating_sub(value_at)
                ))
            })?;
        if in_meta && (group, element) == (0x0002, 0x0010) {
            syntax = Some(
                String::from_utf8_lossy(&bytes[value_at..end])
                    .trim_end_matches(['\0', ' '])
                    .to_owned(),
            );
        }
        // An item of defined length in a sequence holds a data set, walked into so that its
        // elements are checked too; inside encapsulated pixel data an item is a fragment of
        // compressed bytes, skipped whole.
        position = if is_item && !in_fragments {
            value_at
        } else {
            end
        };
    }
    Ok(syntax)
}

/// The error and its causes on one line (dicom-rs nests them).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
