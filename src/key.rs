//! The dedup key of a paragraph and its SHA-256 [`Digest`].
//!
//! The key is the paragraph's normalised text in NFKC (so ligatures,
//! full-width letters and other compatibility variants compare equal). Its
//! identity is the SHA-256 of the key's UTF-8 bytes. Under
//! [`KeyMode::Loose`] the key is further lower-cased and punctuation is
//! ignored — but never digits, and never punctuation *between two digits*,
//! so "4,000 fighters" and "5,000 fighters", or "4.5%" and "45%", stay
//! different news.

use std::fmt;

use sha2::block_api::compress256;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};
use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

mod lanes;
pub use lanes::{WIDE_MIN, digest_each};

/// What makes two paragraphs the same.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyMode {
    /// The normalised text in NFKC.
    #[default]
    Exact,
    /// As `Exact`, lower-cased, with punctuation ignored (digits never are).
    Loose,
}

/// SHA-256's initial state (FIPS 180-4, 5.3.3).
const SHA256_H0: [u32; 8] =
    [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/// Writes a message's last blocks into `last`: its `tail` (the bytes after
/// its whole 64-byte blocks, fewer than 64), SHA-256's padding and the
/// message's length `len` in bits (FIPS 180-4, 5.1.1). Returns how many
/// blocks that takes, one or two; whatever `last` held before is overwritten.
fn pad_last(tail: &[u8], len: usize, last: &mut [[u8; 64]; 2]) -> usize {
    let used = if tail.len() < 56 { 1 } else { 2 };
    let flat = &mut last.as_flattened_mut()[..64 * used];
    flat[..tail.len()].copy_from_slice(tail);
    flat[tail.len()] = 0x80;
    let len_at = flat.len() - 8;
    flat[tail.len() + 1..len_at].fill(0);
    flat[len_at..].copy_from_slice(&(len as u64).wrapping_mul(8).to_be_bytes());
    used
}

/// The SHA-256 of a key: the identity every later stage uses.
///
/// In-memory sets store only [`Digest::prefix`], the first 128 bits. That is
/// safe: SHA-256 output is uniformly distributed, so among `n` distinct keys
/// the chance that any two share a 128-bit prefix is about `n² / 2¹²⁹` —
/// below 10⁻¹⁸ even for ten billion paragraphs, far below the rate of
/// undetected hardware memory errors.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// SHA-256 of `bytes`.
    ///
    /// The whole blocks go straight to the compression function and the
    /// padded tail is made here, in one or two blocks on the stack: for a
    /// paragraph of a few blocks, `Sha256::digest`'s block buffer and its
    /// bookkeeping added ~7% to the compression's time (`perf`, SHA
    /// instructions), and 7M instructions to a 40 MB JSONL run
    /// (`sha256_is_sha2s` holds this to the crate's result).
    pub fn of(bytes: &[u8]) -> Digest {
        let mut state = SHA256_H0;
        let (blocks, tail) = bytes.as_chunks::<64>();
        compress256(&mut state, blocks);
        let mut last = [[0u8; 64]; 2];
        let used = pad_last(tail, bytes.len(), &mut last);
        compress256(&mut state, &last[..used]);
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(state) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        Digest(out)
    }

    /// The first 128 bits, big-endian.
    pub fn prefix(&self) -> u128 {
        let mut b = [0u8; 16];
        b.copy_from_slice(&self.0[..16]);
        u128::from_be_bytes(b)
    }

    /// Lower-case hexadecimal, 64 characters.
    pub fn to_hex(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// A paragraph's key digest and the key's length in characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keyed {
    /// SHA-256 of the key.
    pub digest: Digest,
    /// Length of the key in Unicode scalar values (for `--min-chars`).
    pub chars: usize,
}

/// Computes keys, reusing its buffers between paragraphs.
#[derive(Debug, Default)]
pub struct Keyer {
    mode: KeyMode,
    nfkc: String,
    loose: String,
}

impl Keyer {
    /// A keyer for `mode`.
    pub fn new(mode: KeyMode) -> Keyer {
        Keyer { mode, ..Keyer::default() }
    }

    /// The key of a normalised paragraph.
    pub fn key<'a>(&'a mut self, text: &'a str) -> &'a str {
        self.key_of(text, text.is_ascii())
    }

    /// [`Keyer::key`], told whether `text` is ASCII.
    fn key_of<'a>(&'a mut self, text: &'a str, ascii: bool) -> &'a str {
        let nfkc: &str = if ascii || is_nfkc_by_stretches(text) {
            text
        } else {
            nfkc_into(text, &mut self.nfkc);
            &self.nfkc
        };
        match self.mode {
            KeyMode::Exact => nfkc,
            KeyMode::Loose => {
                loosen_into(nfkc, &mut self.loose);
                &self.loose
            }
        }
    }

    /// Digest and length of the key of a normalised paragraph.
    pub fn keyed(&mut self, text: &str) -> Keyed {
        self.keyed_counted(text, text.chars().count())
    }

    /// [`Keyer::keyed`] of a paragraph whose length in characters, `chars`,
    /// is known (the split counted its lines): the text is not walked again
    /// to learn whether it is ASCII (it is exactly when it has one byte per
    /// character), nor, when the key is the text itself, to count the key.
    pub fn keyed_counted(&mut self, text: &str, chars: usize) -> Keyed {
        let (key, chars) = self.key_counted(text, chars);
        Keyed { digest: Digest::of(key.as_bytes()), chars }
    }

    /// [`Keyer::key_counted`] of `buf[start..]`, the key left there in its
    /// place (written over the text only when normalising changes it): for
    /// a caller that gathers many keys in one buffer to hash them at once,
    /// so that a paragraph joined into that buffer is not copied again.
    /// Returns the key's length in characters.
    pub fn key_at_end(&mut self, buf: &mut String, start: usize, chars: usize) -> usize {
        let text = &buf[start..];
        let (key, key_chars) = self.key_counted(text, chars);
        if !std::ptr::eq(key, text) {
            // The key is in one of this keyer's buffers (`key_of`).
            let key = match self.mode {
                KeyMode::Exact => &self.nfkc,
                KeyMode::Loose => &self.loose,
            };
            buf.truncate(start);
            buf.push_str(key);
        }
        key_chars
    }

    /// The key of a normalised paragraph whose length in characters,
    /// `chars`, is known, and the key's length in characters: what
    /// [`Keyer::keyed_counted`] hashes, for a caller that hashes many keys
    /// at once ([`digest_each`]). The key is `text` itself (the same slice)
    /// whenever normalising it changes nothing.
    pub fn key_counted<'a>(&'a mut self, text: &'a str, chars: usize) -> (&'a str, usize) {
        debug_assert_eq!(chars, text.chars().count());
        // The key of ASCII text is ASCII (both modes): one character per byte.
        let ascii = chars == text.len();
        let key = self.key_of(text, ascii);
        let chars = if ascii {
            key.len()
        } else if std::ptr::eq(key, text) {
            chars
        } else {
            key.chars().count()
        };
        (key, chars)
    }
}

/// `is_nfkc_quick(text.chars()) == IsNormalized::Yes`, checking only the
/// stretches of characters other than ASCII. ASCII is in NFKC and resets
/// the quick check's state (canonical combining class 0), so the whole text
/// passes exactly when each stretch does; the ASCII between them (most of a
/// news paragraph with one accented name) is skipped a word at a time
/// instead of being decoded a character at a time. A stretch made of
/// plain characters (each NFKC_Quick_Check=Yes with combining class 0, from
/// the normaliser's table: most of a text in Cyrillic, Greek or CJK) passes
/// without asking the quick check.
fn is_nfkc_by_stretches(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(j) = crate::normalize::first_non_ascii(&b[i..]).map(|p| i + p) {
        // The stretch walked once: its end found while its characters are
        // looked up (until one is not plain: the quick check decides then).
        let mut end = j;
        let mut plain = true;
        for c in text[j..].chars().take_while(|c| !c.is_ascii()) {
            plain = plain && crate::normalize::is_plain_nfkc_char(c);
            end += c.len_utf8();
        }
        if !plain && is_nfkc_quick(text[j..end].chars()) != IsNormalized::Yes {
            return false;
        }
        i = end;
    }
    true
}

/// `text` in NFKC, into `out` (cleared first), piece by piece (see
/// [`crate::normalize::by_pieces`]): only the stretches around non-ASCII
/// characters are decomposed and composed again.
fn nfkc_into(text: &str, out: &mut String) {
    out.clear();
    crate::normalize::by_pieces(text, out, |piece, out| out.extend(piece.nfkc()));
}

/// The key of `text` under `mode` (allocating; see [`Keyer`] for the hot path).
///
/// ```
/// use newsdedup::key::{key, KeyMode};
/// assert_eq!(key("\u{FB01}ne", KeyMode::Exact), "fine");
/// assert_eq!(key("Over 4,000 \"fighters\"!", KeyMode::Loose), "over 4,000 fighters");
/// ```
pub fn key(text: &str, mode: KeyMode) -> String {
    Keyer::new(mode).key(text).to_owned()
}

fn is_punctuation(c: char) -> bool {
    c.general_category_group() == GeneralCategoryGroup::Punctuation
}

/// Lower-case; punctuation (other than between two digits) and whitespace
/// runs become one space; trimmed.
fn loosen_into(text: &str, out: &mut String) {
    out.clear();
    let mut pending_space = false;
    let mut prev: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let numeric_punct =
            is_punctuation(c) && prev.is_some_and(|p| p.is_numeric()) && chars.peek().is_some_and(|n| n.is_numeric());
        prev = Some(c);
        if c.is_whitespace() || (is_punctuation(c) && !numeric_punct) {
            pending_space = true;
            continue;
        }
        if pending_space && !out.is_empty() {
            out.push(' ');
        }
        pending_space = false;
        out.extend(c.to_lowercase());
    }
}

/// The whole-document key: SHA-256 over the sequence of paragraph digests.
pub fn document_key(keys: &[Keyed]) -> Digest {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    for k in keys {
        h.update(k.digest.0);
    }
    Digest(h.finalize().into())
}

/// [`document_key`] of each of several documents' keys, hashed together
/// ([`digest_each`]: a document key is a few blocks, so one at a time it
/// leaves the lanes of the SHA extensions or of AVX-512 idle; sixteen
/// documents fill a register of AVX-512 lanes).
pub fn document_keys(docs: &[Vec<Keyed>]) -> Vec<Digest> {
    let mut bytes = Vec::with_capacity(32 * docs.iter().map(Vec::len).sum::<usize>());
    let mut ends = Vec::with_capacity(docs.len());
    for keys in docs {
        for k in keys {
            bytes.extend_from_slice(&k.digest.0);
        }
        ends.push(bytes.len());
    }
    let msg = |d: usize| &bytes[if d == 0 { 0 } else { ends[d - 1] }..ends[d]];
    let mut wholes = vec![Digest([0; 32]); docs.len()];
    digest_each(docs.len(), msg, |d, digest| wholes[d] = digest);
    wholes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_sha256_of_the_key_bytes() {
        let d = Keyer::new(KeyMode::Exact).keyed("abc").digest;
        assert_eq!(d.to_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(d.prefix(), 0xba7816bf8f01cfea414140de5dae2223);
    }

    #[test]
    fn a_key_at_the_end_of_a_buffer_is_the_key() {
        for mode in [KeyMode::Exact, KeyMode::Loose] {
            let mut keyer = Keyer::new(mode);
            for text in ["plain ASCII, as it is", "\u{FB01}ne \u{2460} NFKC", "Caf\u{E9} \u{201C}quoted\u{201D}", ""] {
                let mut buf = String::from("before");
                buf.push_str(text);
                let chars = keyer.key_at_end(&mut buf, 6, text.chars().count());
                let key = keyer.key(text).to_owned();
                assert_eq!(buf, format!("before{key}"), "{mode:?} {text:?}");
                assert_eq!(chars, key.chars().count(), "{mode:?} {text:?}");
            }
        }
    }

    #[test]
    fn document_keys_are_each_documents_key() {
        // Documents of 0 to 12 paragraphs, alone, a few (the SHA
        // extensions' lanes) and 16 or more (AVX-512's, where preferred).
        let mut keyer = Keyer::new(KeyMode::Exact);
        let docs: Vec<Vec<Keyed>> = (0..40)
            .map(|d| (0..(d * 7) % 13).map(|p| keyer.keyed(&format!("paragraph {p} of {d}"))).collect())
            .collect();
        for n in [0, 1, 3, 8, 16, 17, 40] {
            let wholes = document_keys(&docs[..n]);
            let each: Vec<Digest> = docs[..n].iter().map(|keys| document_key(keys)).collect();
            assert_eq!(wholes, each, "{n} documents");
        }
    }

    #[test]
    fn sha256_is_sha2s() {
        use sha2::{Digest as _, Sha256};
        // Every tail length, one and two padding blocks, several whole blocks.
        let bytes: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for n in 0..=bytes.len() {
            let expected: [u8; 32] = Sha256::digest(&bytes[..n]).into();
            assert_eq!(Digest::of(&bytes[..n]).0, expected, "{n} bytes");
        }
    }

    proptest::proptest! {
        #[test]
        fn the_quick_check_by_stretches_is_the_whole_quick_check(
            chars in proptest::collection::vec(proptest::sample::select(vec![
                'a', ' ', '.', '\u{e9}', '\u{301}', '\u{327}', '\u{fb01}', '\u{b2}', '\u{2014}', '\u{ff21}',
                '\u{1100}', '\u{1161}', '\u{ac00}', '\u{11a8}', '\u{f900}', '\u{1f600}', '\u{a0}', '\u{e0}',
                '\u{416}', '\u{439}', '\u{3b1}', '\u{4e2d}', '\u{5d0}', '\u{483}', '\u{2126}', '\u{3000}',
            ]), 0..40),
        ) {
            let text: String = chars.into_iter().collect();
            proptest::prop_assert_eq!(is_nfkc_by_stretches(&text), is_nfkc_quick(text.chars()) == IsNormalized::Yes, "{:?}", text);
        }
    }

    #[test]
    fn exact_key_is_nfkc() {
        assert_eq!(key("\u{FF21}\u{FF22} \u{FB01}", KeyMode::Exact), "AB fi");
        assert_eq!(key("plain ascii", KeyMode::Exact), "plain ascii");
    }

    #[test]
    fn exact_key_keeps_case_and_punctuation() {
        assert_ne!(key("Hello, world", KeyMode::Exact), key("hello world", KeyMode::Exact));
    }

    #[test]
    fn loose_key_folds_case_and_ignores_punctuation() {
        assert_eq!(key("Hello, World!", KeyMode::Loose), key("hello -- world", KeyMode::Loose));
        assert_eq!(key("\u{00C9}T\u{00C9}", KeyMode::Loose), "\u{00E9}t\u{00E9}");
    }

    #[test]
    fn loose_key_never_ignores_digits() {
        assert_ne!(key("4,000 fighters", KeyMode::Loose), key("5,000 fighters", KeyMode::Loose));
        assert_ne!(key("4.5% growth", KeyMode::Loose), key("45% growth", KeyMode::Loose));
        assert_eq!(key("4,000 fighters.", KeyMode::Loose), "4,000 fighters");
    }

    proptest::proptest! {
        /// Piecewise NFKC is NFKC: combining marks after ASCII letters,
        /// compatibility characters, Hangul jamo, reordering of marks.
        #[test]
        fn piecewise_nfkc_is_nfkc(
            text in "[ae. \u{300}\u{301}\u{316}\u{327}\u{a0}\u{e9}\u{2026}\u{fb01}\u{ff21}\u{1100}\u{1161}\u{11a8}\u{ac00}\u{212b}\u{2126}\u{958}\u{1e9b}\u{323}]{0,16}"
        ) {
            let mut got = String::from("stale");
            nfkc_into(&text, &mut got);
            proptest::prop_assert_eq!(got, text.nfkc().collect::<String>());
        }
    }

    #[test]
    fn chars_counts_scalar_values_not_bytes() {
        let k = Keyer::new(KeyMode::Exact).keyed("\u{00E9}t\u{00E9}");
        assert_eq!(k.chars, 3);
    }
}
