//! BERT's uncased WordPiece tokenizer, as all-MiniLM-L6-v2 was trained with it.
//!
//! Our own rather than the `tokenizers` crate: that crate pulls in a C regex library (onig)
//! or a large dependency tree for the one fixed pipeline a BERT-uncased vocabulary needs,
//! which is about a hundred lines. The token ids are tested against the Python tokenizer's
//! output in `tests/encoder.rs`.

use std::path::Path;

use rustc_hash::FxHashMap;
use unicode_normalization::UnicodeNormalization;

use crate::{Error, Result};

/// Longest word WordPiece splits; longer words become `[UNK]`, as in BERT.
const MAX_WORD_CHARS: usize = 100;

/// Maps text to BERT token ids: clean, split CJK characters, lowercase, strip accents, split
/// punctuation, then greedy longest-match WordPiece.
#[derive(Debug, Clone)]
pub struct WordPiece {
    vocab: FxHashMap<String, u32>,
    cls: u32,
    sep: u32,
    unk: u32,
}

impl WordPiece {
    /// Reads `vocab.txt` (one token per line; the line number is the id).
    pub fn from_vocab_file(path: &Path) -> Result<Self> {
        let text = fs_err::read_to_string(path)?;
        let vocab: FxHashMap<String, u32> = text
            .lines()
            .enumerate()
            .map(|(id, token)| (token.to_string(), id as u32))
            .collect();
        let special = |name: &str| {
            vocab.get(name).copied().ok_or_else(|| Error::Encoder {
                message: format!("{}: the vocabulary has no {name} token", path.display()),
            })
        };
        Ok(Self {
            cls: special("[CLS]")?,
            sep: special("[SEP]")?,
            unk: special("[UNK]")?,
            vocab,
        })
    }

    /// Token ids with `[CLS]` first and `[SEP]` last, at most `max_len` in all.
    pub fn encode(&self, text: &str, max_len: usize) -> Vec<u32> {
        let mut ids = vec![self.cls];
        for word in basic_tokens(text) {
            self.word_pieces(&word, &mut ids);
            if ids.len() >= max_len - 1 {
                ids.truncate(max_len - 1);
                break;
            }
        }
        ids.push(self.sep);
        ids
    }

    fn word_pieces(&self, word: &str, out: &mut Vec<u32>) {
        let chars: Vec<char> = word.chars().collect();
        if chars.len() > MAX_WORD_CHARS {
            out.push(self.unk);
            return;
        }
        let start_len = out.len();
        let mut start = 0;
        let mut piece = String::new();
        while start < chars.len() {
            let mut end = chars.len();
            let mut found = None;
            while end > start {
                piece.clear();
                if start > 0 {
                    piece.push_str("##");
                }
                piece.extend(&chars[start..end]);
                if let Some(&id) = self.vocab.get(piece.as_str()) {
                    found = Some(id);
                    break;
                }
                end -= 1;
            }
            match found {
                Some(id) => out.push(id),
                None => {
                    out.truncate(start_len);
                    out.push(self.unk);
                    return;
                }
            }
            start = end;
        }
    }
}

/// BERT's basic tokenizer with lowercasing and accent stripping.
fn basic_tokens(text: &str) -> Vec<String> {
    let mut spaced = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c == '\0' || c == '\u{fffd}' || (c.is_control() && !c.is_whitespace()) {
            continue;
        }
        if is_cjk(c) {
            spaced.push(' ');
            spaced.push(c);
            spaced.push(' ');
        } else if c.is_whitespace() {
            spaced.push(' ');
        } else {
            spaced.push(c);
        }
    }
    let mut tokens = Vec::new();
    for word in spaced.split(' ').filter(|w| !w.is_empty()) {
        let folded: String = word
            .to_lowercase()
            .nfd()
            .filter(|c| !is_combining_mark(*c))
            .collect();
        let mut current = String::new();
        for c in folded.chars() {
            if is_punctuation(c) {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
                tokens.push(c.to_string());
            } else {
                current.push(c);
            }
        }
        if !current.is_empty() {
            tokens.push(current);
        }
    }
    tokens
}

/// The CJK Unified Ideographs blocks BERT puts spaces around.
pub(crate) fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B820..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}

/// Unicode combining marks (category Mn) in the blocks accents come from.
fn is_combining_mark(c: char) -> bool {
    matches!(c as u32,
        0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

/// BERT treats all non-alphanumeric ASCII printables as punctuation, plus Unicode
/// punctuation; the Unicode part covers the general, CJK and full-width punctuation blocks.
fn is_punctuation(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_punctuation();
    }
    matches!(c as u32,
        0x00A1 | 0x00A7 | 0x00AB | 0x00B6 | 0x00B7 | 0x00BB | 0x00BF
        | 0x2010..=0x2027
        | 0x2030..=0x205E
        | 0x3001..=0x3003
        | 0x3008..=0x3011
        | 0x3014..=0x301F
        | 0xFF01..=0xFF03
        | 0xFF05..=0xFF0A
        | 0xFF0C..=0xFF0F
        | 0xFF1A..=0xFF1B
        | 0xFF1F..=0xFF20
        | 0xFF3B..=0xFF3D
        | 0xFF3F
        | 0xFF5B
        | 0xFF5D)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_tokens_lowercase_strip_accents_and_split_punctuation() {
        assert_eq!(
            basic_tokens("Crème brûlée, 12-oz.!"),
            ["creme", "brulee", ",", "12", "-", "oz", ".", "!"]
        );
        assert_eq!(basic_tokens("有机milk"), ["有", "机", "milk"]);
    }
}
