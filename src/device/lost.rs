//! A GPU device that stopped: a driver reset, a GPU process crash, a tab the browser reclaimed
//! the GPU from, or `destroy()`. wgpu reports it through the device's lost callback; every
//! later use of the device fails, so work that fails after a loss is not the input's fault but
//! the device's, and the cure is a fresh device (in the page: a fresh engine, which reloads the
//! models on a new device).

use std::sync::Mutex;

#[cfg(not(wasm_threads))]
use burn::tensor::wgpu::wgpu;

/// Why the device was lost, once it was.
static LOST: Mutex<Option<String>> = Mutex::new(None);

#[cfg(not(wasm_threads))]
thread_local! {
    /// The devices watched, kept so that a test can lose one on purpose.
    static WATCHED: std::cell::RefCell<Vec<wgpu::Device>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Records the loss of `device` (opened on `adapter`) when wgpu reports it.
#[cfg(not(wasm_threads))]
pub(super) fn watch(device: &wgpu::Device, adapter: &str) {
    let adapter = adapter.to_string();
    device.set_device_lost_callback(move |reason, message| {
        let said = format!(
            "the GPU device ({adapter}) was lost ({reason:?}{}{message})",
            if message.is_empty() { "" } else { ": " }
        );
        if let Ok(mut lost) = LOST.lock() {
            lost.get_or_insert(said);
        }
    });
    WATCHED.with(|watched| watched.borrow_mut().push(device.clone()));
}

/// Why the GPU device was lost, if it was.
pub fn lost() -> Option<String> {
    LOST.lock().ok().and_then(|lost| lost.clone())
}

/// Destroys every device opened here, as a driver reset would (tests only: what follows is
/// the loss being noticed and reported).
#[doc(hidden)]
pub fn destroy_for_test() {
    #[cfg(not(wasm_threads))]
    WATCHED.with(|watched| {
        for device in watched.borrow().iter() {
            device.destroy();
        }
    });
}
