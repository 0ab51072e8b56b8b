//! BERT's uncased WordPiece tokenizer, as Hugging Face `tokenizers` runs it for PubMedBERT
//! (`BertNormalizer` → `BertPreTokenizer` → `WordPiece`), behind open_clip's `HFTokenizer`
//! (whitespace cleaning, `[CLS] … [SEP]`, truncation, `[PAD]` to the context length).

use std::collections::HashMap;

use unicode_general_category::{GeneralCategory, get_general_category};
use unicode_normalization::UnicodeNormalization;

use super::clean::{basic_clean, whitespace_clean};

/// Words longer than this become `[UNK]` whole (BERT's `max_input_chars_per_word`).
const MAX_WORD_CHARS: usize = 100;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum VocabularyError {
    #[error("the WordPiece vocabulary is empty")]
    Empty,
    #[error("the WordPiece vocabulary lacks the special token {0}")]
    MissingSpecial(&'static str),
}

#[derive(Clone, Debug)]
pub struct WordPieceTokenizer {
    vocab: HashMap<String, u32>,
    context_length: usize,
    unk: u32,
    cls: u32,
    sep: u32,
    pad: u32,
}

fn is_other(c: char) -> bool {
    matches!(
        get_general_category(c),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::Surrogate
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
    )
}

fn is_bert_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c.is_whitespace()
}

fn is_bert_control(c: char) -> bool {
    !matches!(c, '\t' | '\n' | '\r') && is_other(c)
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(
            get_general_category(c),
            GeneralCategory::ConnectorPunctuation
                | GeneralCategory::DashPunctuation
                | GeneralCategory::OpenPunctuation
                | GeneralCategory::ClosePunctuation
                | GeneralCategory::InitialPunctuation
                | GeneralCategory::FinalPunctuation
                | GeneralCategory::OtherPunctuation
        )
}

/// The CJK Unified Ideograph blocks BERT surrounds with spaces.
fn is_chinese_char(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F | 0x2B820..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

/// `BertNormalizer` with `clean_text`, `handle_chinese_chars`, accents stripped, lowercased.
fn normalize(text: &str) -> String {
    let mut cleaned = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\0' || c == '\u{fffd}' || is_bert_control(c) {
            continue;
        }
        if is_bert_whitespace(c) {
            cleaned.push(' ');
        } else if is_chinese_char(c) {
            cleaned.push(' ');
            cleaned.push(c);
            cleaned.push(' ');
        } else {
            cleaned.push(c);
        }
    }
    let stripped: String = cleaned
        .nfd()
        .filter(|&c| get_general_category(c) != GeneralCategory::NonspacingMark)
        .collect();
    // Per character, as `tokenizers` does: no final-sigma rule (Σ → σ, never ς).
    stripped.chars().flat_map(char::to_lowercase).collect()
}

/// `BertPreTokenizer`: split on whitespace, every punctuation character its own word.
fn pre_tokenize(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        if is_bert_whitespace(c) {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
        } else if is_punctuation(c) {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            words.push(c.to_string());
        } else {
            current.push(c);
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

impl WordPieceTokenizer {
    /// From a `vocab.txt` (one token per line, the line number is the id).
    pub fn from_vocab_text(
        vocab_text: &str,
        context_length: usize,
    ) -> Result<Self, VocabularyError> {
        let vocab: HashMap<String, u32> = vocab_text
            .lines()
            .enumerate()
            .map(|(index, token)| (token.trim_end_matches('\r').to_string(), index as u32))
            .collect();
        if vocab.is_empty() {
            return Err(VocabularyError::Empty);
        }
        let special = |name: &'static str| {
            vocab
                .get(name)
                .copied()
                .ok_or(VocabularyError::MissingSpecial(name))
        };
        Ok(Self {
            unk: special("[UNK]")?,
            cls: special("[CLS]")?,
            sep: special("[SEP]")?,
            pad: special("[PAD]")?,
            vocab,
            context_length: context_length.max(2),
        })
    }

    pub fn context_length(&self) -> usize {
        self.context_length
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    pub fn pad_id(&self) -> u32 {
        self.pad
    }

    /// Greedy longest-match-first pieces of one word; `[UNK]` if any part cannot be matched.
    fn word_pieces(&self, word: &str, out: &mut Vec<u32>) {
        let chars: Vec<char> = word.chars().collect();
        if chars.len() > MAX_WORD_CHARS {
            out.push(self.unk);
            return;
        }
        let mut pieces = Vec::new();
        let mut start = 0;
        while start < chars.len() {
            let mut end = chars.len();
            let mut found = None;
            while start < end {
                let mut piece: String = chars[start..end].iter().collect();
                if start > 0 {
                    piece.insert_str(0, "##");
                }
                if let Some(&id) = self.vocab.get(&piece) {
                    found = Some(id);
                    break;
                }
                end -= 1;
            }
            match found {
                Some(id) => pieces.push(id),
                None => {
                    out.push(self.unk);
                    return;
                }
            }
            start = end;
        }
        out.extend(pieces);
    }

    /// Token ids of `text` without `[CLS]`/`[SEP]`, after open_clip's `whitespace` cleaning.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let cleaned = whitespace_clean(&basic_clean(text));
        let mut ids = Vec::new();
        for word in pre_tokenize(&normalize(&cleaned)) {
            self.word_pieces(&word, &mut ids);
        }
        ids
    }

    /// One model input row: `[CLS]`, the first `context − 2` tokens, `[SEP]`, `[PAD]`s.
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        let mut ids = self.encode(text);
        ids.truncate(self.context_length - 2);
        let mut row = Vec::with_capacity(self.context_length);
        row.push(self.cls);
        row.extend(ids);
        row.push(self.sep);
        row.resize(self.context_length, self.pad);
        row
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokenizer() -> WordPieceTokenizer {
        let vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nglio\n##ma\nmri\n.\nnaive\nx\n-\nray\n肺";
        WordPieceTokenizer::from_vocab_text(vocab, 8).unwrap()
    }

    #[test]
    fn splits_words_into_pieces_and_pads() {
        let tok = tokenizer();
        assert_eq!(tok.tokenize("Glioma MRI."), vec![2, 5, 6, 7, 8, 3, 0, 0]);
        assert_eq!(tok.encode("naïve X-ray 肺炎"), vec![9, 10, 11, 12, 13, 1]);
        assert_eq!(tok.encode("unknownword"), vec![1]);
    }

    #[test]
    fn truncates_keeping_the_separator() {
        let tok = tokenizer();
        let row = tok.tokenize("mri mri mri mri mri mri mri mri");
        assert_eq!(row, vec![2, 7, 7, 7, 7, 7, 7, 3]);
    }

    #[test]
    fn rejects_a_vocabulary_without_specials() {
        assert_eq!(
            WordPieceTokenizer::from_vocab_text("a\nb", 8).unwrap_err(),
            VocabularyError::MissingSpecial("[UNK]")
        );
    }
}
