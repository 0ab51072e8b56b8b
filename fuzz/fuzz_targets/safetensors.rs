//! Any bytes as a SafeTensors file, read whole and streamed in pieces of the first byte's size
//! (as the browser streams a model from its storage).
#![no_main]
use libfuzzer_sys::fuzz_target;
use medfocus::weights::{Checkpoint, SafetensorsStream};

fuzz_target!(|data: &[u8]| {
    let _ = Checkpoint::from_safetensors_bytes("fuzz", data.to_vec());
    let piece = usize::from(data.first().copied().unwrap_or(1)).max(1);
    if let Ok(mut stream) = SafetensorsStream::new("fuzz", data.len() as u64) {
        for chunk in data.chunks(piece) {
            if stream.push(chunk).is_err() {
                return;
            }
        }
        let _ = stream.finish();
    }
});
