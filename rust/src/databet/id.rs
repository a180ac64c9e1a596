//! `Id`: a market id, odd id or specifier string kept inline when it is short (the common
//! case on DATA.BET), so the table neither allocates per odd nor calls `memcmp` to find one.

use std::hash::{Hash, Hasher};

/// Longest string kept inline.
pub const MAX_INLINE: usize = 22;

/// A string of up to 22 bytes inline (zero-padded, so equality and hashing work on one
/// fixed-size block), longer ones boxed. Two `Id`s are equal exactly when their strings are.
#[derive(Clone)]
pub enum Id {
    Inline { len: u8, bytes: [u8; MAX_INLINE] },
    Heap(Box<str>),
}

impl Id {
    #[inline]
    pub fn new(s: &str) -> Id {
        let b = s.as_bytes();
        if b.len() <= MAX_INLINE {
            let mut bytes = [0u8; MAX_INLINE];
            bytes[..b.len()].copy_from_slice(b);
            Id::Inline { len: b.len() as u8, bytes }
        } else {
            Id::Heap(s.into())
        }
    }

    #[inline]
    pub fn as_str(&self) -> &str {
        match self {
            // SAFETY: the first `len` bytes were copied from a str (whole, so on a boundary).
            Id::Inline { len, bytes } => unsafe { std::str::from_utf8_unchecked(&bytes[..*len as usize]) },
            Id::Heap(s) => s,
        }
    }
}

impl Default for Id {
    fn default() -> Id {
        Id::Inline { len: 0, bytes: [0; MAX_INLINE] }
    }
}

impl PartialEq for Id {
    #[inline]
    fn eq(&self, other: &Id) -> bool {
        match (self, other) {
            // Padding is zero, so a fixed-size compare (a few loads, no call) is exact.
            (Id::Inline { len: a, bytes: x }, Id::Inline { len: b, bytes: y }) => a == b && x == y,
            (Id::Heap(a), Id::Heap(b)) => a == b,
            _ => false, // a string has one representation, chosen by its length
        }
    }
}

impl Eq for Id {}

impl Hash for Id {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            Id::Inline { len, bytes } => {
                state.write_u8(*len);
                state.write(bytes);
            }
            Id::Heap(s) => {
                state.write_u8(u8::MAX);
                state.write(s.as_bytes());
            }
        }
    }
}

impl std::fmt::Debug for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_round_trip_and_compare_by_their_strings() {
        let long = "x".repeat(MAX_INLINE + 1);
        let edge = "y".repeat(MAX_INLINE);
        let words = ["", "1", "18h1_0", "halfnr=1&total=12.5", "\u{e9}t\u{e9}", &edge, &long];
        for a in words {
            let id = Id::new(a);
            assert_eq!(id.as_str(), a);
            assert_eq!(matches!(id, Id::Inline { .. }), a.len() <= MAX_INLINE, "{a:?}");
            for b in words {
                assert_eq!(id == Id::new(b), a == b, "{a:?} {b:?}");
            }
        }
        // "a" and "a\0" differ although padding is zero: the length tells them apart.
        assert_ne!(Id::new("a"), Id::new("a\0"));
        let set: HashSet<Id> = words.iter().map(|w| Id::new(w)).collect();
        assert_eq!(set.len(), words.len());
        assert!(words.iter().all(|w| set.contains(&Id::new(w))));
        assert_eq!(std::mem::size_of::<Id>(), 24);
    }
}
