//! `medfocus`, the native command-line program. Thin: argument parsing and printing (`cli/`);
//! the work is in the library. On wasm this binary is empty (the browser entry points are in
//! `web`).

#![cfg_attr(target_arch = "wasm32", no_main)]

#[cfg(not(target_arch = "wasm32"))]
mod cli;

/// mimalloc instead of glibc's malloc: see its line in Cargo.toml (tensors of tens to hundreds of
/// MB are freed and allocated again every layer; glibc returns them to the kernel each time), with
/// the setting `medfocus::allocator` explains.
#[cfg(not(target_arch = "wasm32"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    medfocus::allocator::reset_freed_pages_instead_of_decommitting();
    cli::run()
}
