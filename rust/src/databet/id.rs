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
                // Three words (the length and the zero-padded bytes), not a byte slice: the
                // hasher folds each in one step.
                let word = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap());
                state.write_u64(u64::from(*len) | word(0) << 8);
                state.write_u64(word(7));
                state.write_u64(word(14));
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

/// Longest odd id kept inline in an `OddId`.
pub const ODD_INLINE: usize = 14;

/// An odd id in 16 bytes (so an odd slot with its row is 24): up to 14 bytes inline, longer
/// ones behind one thin pointer. Odd ids are short ("1", "12", "over"), and a market holds
/// its odds inline, so a smaller slot keeps a market on fewer cache lines.
#[derive(Clone, PartialEq, Eq)]
pub enum OddId {
    Inline {
        len: u8,
        bytes: [u8; ODD_INLINE],
    },
    #[allow(clippy::box_collection, clippy::redundant_allocation)]
    Heap(Box<Box<str>>),
}

impl OddId {
    #[inline]
    pub fn new(s: &str) -> OddId {
        let b = s.as_bytes();
        if b.len() <= ODD_INLINE {
            let mut bytes = [0u8; ODD_INLINE];
            bytes[..b.len()].copy_from_slice(b);
            OddId::Inline { len: b.len() as u8, bytes }
        } else {
            OddId::Heap(Box::new(s.into()))
        }
    }

    #[inline]
    pub fn as_str(&self) -> &str {
        match self {
            // SAFETY: the first `len` bytes were copied from a str (whole, so on a boundary).
            OddId::Inline { len, bytes } => unsafe { std::str::from_utf8_unchecked(&bytes[..*len as usize]) },
            OddId::Heap(s) => s,
        }
    }

    /// Whether this is the id `s`, without building an `OddId` (odd ids are a byte or two).
    #[inline]
    pub fn is(&self, s: &str) -> bool {
        match self {
            OddId::Inline { len, bytes } => *len as usize == s.len() && s.bytes().zip(bytes).all(|(a, &b)| a == b),
            OddId::Heap(h) => &***h == s,
        }
    }
}

impl std::fmt::Debug for OddId {
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

    #[test]
    fn odd_ids_round_trip_and_compare_by_their_strings() {
        let long = "x".repeat(ODD_INLINE + 1);
        let edge = "y".repeat(ODD_INLINE);
        let words = ["", "1", "12", "over", "\u{e9}t\u{e9}", &edge, &long];
        for a in words {
            let id = OddId::new(a);
            assert_eq!(id.as_str(), a);
            assert_eq!(matches!(id, OddId::Inline { .. }), a.len() <= ODD_INLINE, "{a:?}");
            for b in words {
                assert_eq!(id == OddId::new(b), a == b, "{a:?} {b:?}");
                assert_eq!(id.is(b), a == b, "{a:?} {b:?}");
            }
        }
        assert_ne!(OddId::new("a"), OddId::new("a\0"));
        assert_eq!(std::mem::size_of::<OddId>(), 16);
    }
}
