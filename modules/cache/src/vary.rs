//! Secondary keys (RFC 9111 §4.1): which request fields select among stored responses.
//!
//! A response's `Vary` lines are one list of field names; `*` anywhere (alone, repeated, after
//! an empty line, after other names) means no later request can match, so such a response is
//! not stored at all. For each named field the request's value is normalised before it is
//! compared: all lines combined, list members trimmed and joined by `,`, so `1, 2` on one line
//! and `1` and `2` on two lines select the same response. `Accept-Language` and
//! `Accept-Encoding` are also compared without case or member order. An absent field matches
//! only an absent field.

use crate::fields::{list, members, values};
use crate::Field;

/// The parsed `Vary` of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vary {
    /// Selects on these field names (lowercase, deduplicated, in order).
    Fields(Vec<Box<[u8]>>),
    /// `*`: never matches.
    Star,
}

impl Vary {
    /// Reads every `Vary` line.
    pub fn parse(headers: &[Field<'_>]) -> Vary {
        let mut names: Vec<Box<[u8]>> = Vec::new();
        for m in list(headers, b"vary") {
            if m == b"*" {
                return Vary::Star;
            }
            let lower = m.to_ascii_lowercase().into_boxed_slice();
            if !names.contains(&lower) {
                names.push(lower);
            }
        }
        Vary::Fields(names)
    }
}

/// The normalised values of the selecting fields of one request, stored with the response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection(pub Vec<(Box<[u8]>, Option<Value>)>);

/// A normalised selecting-field value.
pub type Value = Box<[u8]>;

impl Selection {
    /// The request's values of `names`.
    pub fn of(names: &[Box<[u8]>], headers: &[Field<'_>]) -> Selection {
        Selection(
            names
                .iter()
                .map(|n| (n.clone(), normalise(n, headers)))
                .collect(),
        )
    }

    /// Whether `headers` select this stored response.
    pub fn matches(&self, headers: &[Field<'_>]) -> bool {
        self.0
            .iter()
            .all(|(name, value)| normalise(name, headers).as_deref() == value.as_deref())
    }

    /// Bytes accounted for the selection.
    pub fn weight(&self) -> usize {
        self.0
            .iter()
            .map(|(n, v)| n.len() + v.as_ref().map_or(0, |v| v.len()) + 2)
            .sum()
    }
}

/// The normalised value of field `name` in `headers`, `None` if absent.
pub fn normalise(name: &[u8], headers: &[Field<'_>]) -> Option<Box<[u8]>> {
    let mut present = false;
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let fold = name == b"accept-language" || name == b"accept-encoding";
    for line in values(headers, name) {
        present = true;
        for m in members(line) {
            let m: Vec<u8> = if fold {
                m.iter()
                    .filter(|b| !b.is_ascii_whitespace())
                    .map(u8::to_ascii_lowercase)
                    .collect()
            } else {
                m.to_vec()
            };
            parts.push(m);
        }
    }
    if !present {
        return None;
    }
    if fold {
        parts.sort();
    }
    Some(parts.join(&b","[..]).into_boxed_slice())
}
