//! `medfocus`, the native command-line program. Thin: argument parsing and printing (`cli/`);
//! the work is in the library. On wasm this binary is empty (the browser entry points are in
//! `web`).

#![cfg_attr(target_arch = "wasm32", no_main)]

#[cfg(not(target_arch = "wasm32"))]
mod cli;

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    cli::run()
}
