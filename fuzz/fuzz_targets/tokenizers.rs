//! Any text through CLIP's BPE tokenizer; the first line as a WordPiece vocabulary's words
//! (with the special tokens), the rest through it.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use medfocus::clip::tokenizer::{ClipBpeTokenizer, WordPieceTokenizer};

/// Built once: building the BPE vocabulary is most of a run's time otherwise.
static BPE: OnceLock<ClipBpeTokenizer> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let bpe = BPE.get_or_init(|| ClipBpeTokenizer::openai(77));
    let tokens = bpe.tokenize(text);
    assert_eq!(tokens.len(), 77);
    let (words, rest) = text.split_once('\n').unwrap_or((text, ""));
    let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .into_iter()
        .chain(words.split(' '))
        .collect::<Vec<_>>()
        .join("\n");
    if let Ok(wordpiece) = WordPieceTokenizer::from_vocab_text(&vocab, 64) {
        let tokens = wordpiece.tokenize(rest);
        assert_eq!(tokens.len(), 64);
    }
});
