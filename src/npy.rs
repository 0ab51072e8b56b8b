//! NumPy's `.npy` arrays: read (format versions 1–3) with every size the header claims checked
//! against the bytes before anything is allocated from it, and written (version 1, little-endian,
//! C order) so that `numpy.load` gives back exactly the values written. Used by MedMNIST archives
//! (`dataset::npz`) and by a head's weights as arrays (`heads::arrays`).

use std::io::Read;

use crate::limits::{MAX_NPY_ARRAY_BYTES, MAX_NPY_HEADER_BYTES};

/// One array: its shape, its type (`kind` as NumPy's descr: `u`, `i`, `b`, `f`; `item` bytes a
/// value) and its values as little-endian bytes, in C order.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub kind: char,
    pub item: usize,
    pub data: Vec<u8>,
}

/// Parses `{'descr': '<f4', 'fortran_order': False, 'shape': (10, 28, 28), }` into the kind, the
/// item size, whether it is Fortran-ordered and the shape.
fn parse_header(header: &str) -> Result<(char, usize, bool, Vec<usize>), String> {
    let field = |name: &str| -> Result<&str, String> {
        let key = format!("'{name}':");
        let start = header
            .find(&key)
            .ok_or_else(|| format!("the header has no {name}"))?
            + key.len();
        Ok(header[start..].trim_start())
    };
    let descr = field("descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|rest| rest.split('\'').next())
        .ok_or("descr is not a string")?;
    let mut chars = descr.chars();
    let order = chars.next().ok_or("empty descr")?;
    let kind = chars.next().ok_or("descr without a type")?;
    let item: usize = chars
        .as_str()
        .parse()
        .map_err(|_| format!("descr {descr:?}: unknown item size"))?;
    if order == '>' && item > 1 {
        return Err(format!("descr {descr:?}: big-endian arrays are not read"));
    }
    let known = match kind {
        'u' | 'i' | 'b' => matches!(item, 1 | 2 | 4 | 8),
        'f' => matches!(item, 4 | 8),
        _ => false,
    };
    if !known {
        return Err(format!(
            "descr {descr:?}: only integer, boolean and float32/64 arrays are read"
        ));
    }
    let fortran = field("fortran_order")?.starts_with("True");
    let shape = field("shape")?;
    let shape = shape
        .strip_prefix('(')
        .and_then(|rest| rest.split(')').next())
        .ok_or("shape is not a tuple")?;
    let shape = shape
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<usize>()
                .map_err(|_| format!("shape entry {part:?}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((kind, item, fortran, shape))
}

/// Reads one `.npy` array from `reader` (a file, or an entry of an `.npz` zip), refusing a header
/// over `MAX_NPY_HEADER_BYTES`, an array over `max_bytes` (the caller's bound, at most
/// `MAX_NPY_ARRAY_BYTES`), Fortran order, and data that is not exactly what the header
/// describes (at most one byte more is ever read).
pub fn read(mut reader: impl Read, max_bytes: u64) -> Result<NpyArray, String> {
    let max_bytes = max_bytes.min(MAX_NPY_ARRAY_BYTES);
    let mut magic = [0u8; 8];
    reader
        .read_exact(&mut magic)
        .map_err(|e| format!("not a .npy array ({e})"))?;
    if &magic[..6] != b"\x93NUMPY" {
        return Err("not a .npy array (no NUMPY magic)".into());
    }
    let header_len = match magic[6] {
        1 => {
            let mut len = [0u8; 2];
            reader.read_exact(&mut len).map_err(|e| e.to_string())?;
            u16::from_le_bytes(len) as usize
        }
        2 | 3 => {
            let mut len = [0u8; 4];
            reader.read_exact(&mut len).map_err(|e| e.to_string())?;
            u32::from_le_bytes(len) as usize
        }
        version => return Err(format!(".npy format version {version}")),
    };
    if header_len > MAX_NPY_HEADER_BYTES {
        return Err(format!("a {header_len}-byte header"));
    }
    let mut header = vec![0u8; header_len];
    reader
        .read_exact(&mut header)
        .map_err(|e| format!("header cut short ({e})"))?;
    let header = String::from_utf8_lossy(&header);
    let (kind, item, fortran, shape) = parse_header(&header)?;
    if fortran && shape.len() > 1 {
        return Err("Fortran-ordered arrays are not read".into());
    }
    let bytes = shape
        .iter()
        .try_fold(item as u64, |total, &dim| total.checked_mul(dim as u64))
        .filter(|&total| total <= max_bytes)
        .ok_or_else(|| {
            format!("shape {shape:?} of {item}-byte values is more than {max_bytes} bytes")
        })?;
    // The header's claim is checked against the data itself: read at most one byte more.
    let mut data = Vec::new();
    reader
        .take(bytes + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("data: {e}"))?;
    if data.len() as u64 != bytes {
        return Err(format!(
            "the header's shape {shape:?} needs {bytes} bytes, the array has {}{}",
            data.len(),
            if data.len() as u64 > bytes {
                " or more"
            } else {
                ""
            }
        ));
    }
    Ok(NpyArray {
        shape,
        kind,
        item,
        data,
    })
}

impl NpyArray {
    /// The values of an integer or boolean array, sign-extended for signed kinds.
    pub fn integers(&self) -> Vec<i64> {
        self.data
            .chunks_exact(self.item)
            .map(|bytes| {
                let mut full = [0u8; 8];
                full[..self.item].copy_from_slice(bytes);
                let value = u64::from_le_bytes(full);
                match self.kind {
                    // Sign-extend from the item's width.
                    'i' => {
                        let shift = 64 - 8 * self.item as u32;
                        ((value << shift) as i64) >> shift
                    }
                    _ => value as i64,
                }
            })
            .collect()
    }

    /// The values of a float32 array, exactly as stored; any other type is refused (a float64
    /// array would have to be rounded).
    pub fn f32s(&self) -> Result<Vec<f32>, String> {
        if (self.kind, self.item) != ('f', 4) {
            return Err(format!(
                "'<{}{}' values where float32 ('<f4') is needed (numpy: `.astype(numpy.float32)`)",
                self.kind, self.item
            ));
        }
        Ok(self
            .data
            .chunks_exact(4)
            .map(|bytes| f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
            .collect())
    }
}

/// A float32 `.npy` array (version 1, `'<f4'`, C order) of `values` in `shape`; the header is
/// padded so that the data starts at a multiple of 64 bytes, as NumPy writes it.
pub fn write_f32(shape: &[usize], values: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let tuple = match dims.as_slice() {
        [one] => format!("({one},)"),
        all => format!("({})", all.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple}, }}");
    // magic (6) + version (2) + length (2) + header + '\n' ≡ 0 (mod 64)
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + 4 * values.len());
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for value in values {
        bytes.extend_from_slice(&value.to_le_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float32_arrays_round_trip_bit_for_bit() {
        let values = [0.1f32, -0.0, f32::MIN_POSITIVE, 3.4e38, 1.0 / 3.0, -2.5];
        for shape in [vec![6], vec![2, 3], vec![1, 2, 3]] {
            let bytes = write_f32(&shape, &values);
            assert_eq!((bytes.len() - 4 * values.len()) % 64, 0, "data aligned");
            let array = read(bytes.as_slice(), 1 << 20).unwrap();
            assert_eq!(array.shape, shape);
            let back = array.f32s().unwrap();
            assert!(
                back.iter()
                    .zip(&values)
                    .all(|(a, b)| a.to_bits() == b.to_bits())
            );
        }
    }

    #[test]
    fn lying_or_foreign_arrays_are_refused() {
        let good = write_f32(&[2, 3], &[1.0; 6]);
        let cut = &good[..good.len() - 1];
        assert!(read(cut, 1 << 20).unwrap_err().contains("needs 24 bytes"));
        let mut longer = good.clone();
        longer.push(0);
        assert!(
            read(longer.as_slice(), 1 << 20)
                .unwrap_err()
                .contains("or more")
        );
        assert!(
            read(&b"PK\x03\x04"[..], 1 << 20)
                .unwrap_err()
                .contains("not a .npy")
        );
        let mut ints = good.clone();
        let at = ints.windows(3).position(|window| window == b"<f4").unwrap();
        ints[at..at + 3].copy_from_slice(b"<i4");
        let array = read(ints.as_slice(), 1 << 20).unwrap();
        assert!(array.f32s().unwrap_err().contains("float32"));
        // More than the caller allows, refused from the header.
        assert!(
            read(good.as_slice(), 23)
                .unwrap_err()
                .contains("more than 23 bytes")
        );
    }
}
