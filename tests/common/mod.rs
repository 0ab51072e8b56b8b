//! Helpers shared by the native and the browser parity tests.
#![allow(dead_code)]

use burn::tensor::{DType, TensorData};

/// Rows of `width` scaled to unit length (embeddings are compared after L2 normalisation).
pub fn normalized_rows(values: &[f32], width: usize) -> Vec<f32> {
    values
        .chunks(width)
        .flat_map(|row| {
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            row.iter().map(move |v| v / norm)
        })
        .collect()
}

pub fn max_abs_diff(left: &[f32], right: &[f32]) -> f32 {
    assert_eq!(left.len(), right.len());
    left.iter()
        .zip(right)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

/// A `[rows, context]` integer tensor of token ids as tokenizer rows.
pub fn token_rows(tokens: &TensorData) -> Vec<Vec<u32>> {
    let width = tokens.shape()[1];
    let ids: Vec<i64> = tokens
        .clone()
        .convert_dtype(DType::I64)
        .try_to_vec()
        .expect("token ids");
    ids.chunks(width)
        .map(|row| row.iter().map(|&id| id as u32).collect())
        .collect()
}

/// The crate's folder (fixtures are under `tests/fixtures`).
pub fn manifest() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file of the shared real images (`../shared/data`, or `MEDFOCUS_DATA`).
pub fn shared(relative: &str) -> std::path::PathBuf {
    std::env::var_os("MEDFOCUS_DATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| manifest().join("../shared/data"))
        .join(relative)
}

pub mod bad_inputs;
#[cfg(not(target_arch = "wasm32"))]
pub mod cli;

pub mod explain;
pub mod sam2_amg;
