//! Synonyms from a file: one group per line, comma-separated, every member equivalent.
//!
//! ```text
//! # comment
//! soda, pop, soft drink
//! yoghurt, yogurt
//! ```
//!
//! A query word (or a run of up to three words) that is a member adds the other members
//! to the query, matched against titles at [`WEIGHT`] of a title match.

use std::path::Path;

use rustc_hash::FxHashMap;

use crate::{Error, Result};

/// A synonym's match counts this much of an exact title match.
pub const WEIGHT: f32 = 0.8;
/// Longest run of query words looked up as one synonym.
const MAX_PHRASE_WORDS: usize = 3;

/// Equivalence groups of words and phrases, keyed by lowercase member.
#[derive(Debug, Clone, Default)]
pub struct Synonyms {
    groups: Vec<Vec<String>>,
    by_member: FxHashMap<String, usize>,
}

impl Synonyms {
    /// Reads a synonym file; a line with fewer than two members is an error naming it.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = fs_err::read_to_string(path)?;
        Self::parse(&text).map_err(|(line, message)| Error::Synonyms {
            path: path.to_path_buf(),
            line,
            message,
        })
    }

    /// Parses the file format; errors carry the 1-based line number.
    pub fn parse(text: &str) -> std::result::Result<Self, (usize, String)> {
        let mut synonyms = Self::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let members: Vec<String> = line
                .split(',')
                .map(|m| {
                    m.split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                        .to_lowercase()
                })
                .filter(|m| !m.is_empty())
                .collect();
            if members.len() < 2 {
                return Err((
                    n + 1,
                    format!("a synonym group needs at least two members: {line:?}"),
                ));
            }
            let group = synonyms.groups.len();
            for member in &members {
                synonyms.by_member.insert(member.clone(), group);
            }
            synonyms.groups.push(members);
        }
        Ok(synonyms)
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// True when there are no groups.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The members to add for a query made of `words` (lowercase, in order).
    pub fn expansions<'a>(&'a self, words: &[String]) -> Vec<&'a str> {
        let mut out = Vec::new();
        if self.groups.is_empty() {
            return out;
        }
        for start in 0..words.len() {
            for len in 1..=MAX_PHRASE_WORDS.min(words.len() - start) {
                let phrase = words[start..start + len].join(" ");
                if let Some(&group) = self.by_member.get(&phrase) {
                    out.extend(
                        self.groups[group]
                            .iter()
                            .filter(|m| **m != phrase)
                            .map(String::as_str),
                    );
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_expand_single_words_and_phrases() {
        let s = Synonyms::parse("# drinks\nsoda, pop, soft drink\n\nyoghurt,yogurt\n").unwrap();
        assert_eq!(s.len(), 2);
        let words = |q: &str| q.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(s.expansions(&words("diet soda")), ["pop", "soft drink"]);
        assert_eq!(s.expansions(&words("soft drink")), ["soda", "pop"]);
        assert!(s.expansions(&words("milk")).is_empty());
    }

    #[test]
    fn a_lonely_member_is_an_error_with_its_line() {
        let err = Synonyms::parse("a, b\nlonely\n").unwrap_err();
        assert_eq!(err.0, 2);
    }
}
