//! Where MedFocus keeps what it stores for the user between runs (downloaded models, embeddings,
//! device proofs): one rule for all of them, so that `XDG_CACHE_HOME` moves them all.

use std::path::PathBuf;

/// `$override_variable`, else `$XDG_CACHE_HOME/medfocus/<name>`, else `~/.cache/medfocus/<name>`
/// (`./.cache/medfocus/<name>` where there is no home either).
pub fn cache_path(override_variable: &str, name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(override_variable) {
        return PathBuf::from(path);
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"))
        .join("medfocus")
        .join(name)
}
