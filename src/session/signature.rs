//! Compact per-document keys and plans, for a session split over many
//! processes (the datatrove three-stage form in `python/`):
//!
//! 1. each process turns its documents into [`encode`]d signatures (split,
//!    normalise and hash: the expensive part, in parallel);
//! 2. one process decides them in corpus order with
//!    [`crate::session::Session::decide_keys`] (hash-table work only) and
//!    writes each plan with [`encode_plan`];
//! 3. each process re-splits its documents and renders them with
//!    [`decode_plan`].
//!
//! Signature layout (little-endian): `u32` paragraph count *n*, the 32-byte
//! whole-document key, then *n* times the 32-byte paragraph key and its `u32`
//! length in characters. A plan is one byte per paragraph ([`PlanCode`]).

use crate::dedup::{Occurrence, Plan, Reason, Verdict};
use crate::document::Document;
use crate::key::{Digest, Keyed};

/// Bytes per paragraph in a signature.
const PARA: usize = 36;

/// A signature or plan that does not fit its document.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// The bytes are not a signature.
    #[error("not a newsdedup signature ({0} bytes)")]
    Malformed(usize),
    /// A plan byte is not a [`PlanCode`].
    #[error("not a newsdedup plan (byte {byte} at paragraph {para})")]
    BadPlan {
        /// The byte.
        byte: u8,
        /// Its position.
        para: usize,
    },
    /// The plan was made for a document with another number of paragraphs
    /// (the text or the options changed between the stages).
    #[error("the plan has {plan} paragraphs, the document {doc}: text or options changed between the stages")]
    Mismatch {
        /// Paragraphs in the plan.
        plan: usize,
        /// Paragraphs in the document.
        doc: usize,
    },
}

/// The keys of a prepared document.
pub fn encode(doc: &Document) -> Vec<u8> {
    let mut out = Vec::with_capacity(36 + PARA * doc.keys.len());
    out.extend_from_slice(&u32::try_from(doc.keys.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&doc.whole.0);
    for k in &doc.keys {
        out.extend_from_slice(&k.digest.0);
        out.extend_from_slice(&u32::try_from(k.chars).unwrap_or(u32::MAX).to_le_bytes());
    }
    out
}

/// Paragraph keys and the whole-document key from [`encode`]'s bytes.
pub fn decode(bytes: &[u8]) -> Result<(Vec<Keyed>, Digest), SignatureError> {
    let bad = || SignatureError::Malformed(bytes.len());
    let (head, rest) = bytes.split_first_chunk::<36>().ok_or_else(bad)?;
    let n = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if rest.len() != n.checked_mul(PARA).ok_or_else(bad)? {
        return Err(bad());
    }
    let mut whole = [0u8; 32];
    whole.copy_from_slice(&head[4..]);
    let keys = rest
        .chunks_exact(PARA)
        .map(|c| {
            let mut d = [0u8; 32];
            d.copy_from_slice(&c[..32]);
            Keyed { digest: Digest(d), chars: u32::from_le_bytes([c[32], c[33], c[34], c[35]]) as usize }
        })
        .collect();
    Ok((keys, Digest(whole)))
}

/// One plan byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PlanCode {
    /// Kept: a first occurrence.
    Keep = 0,
    /// Kept: a short repeat.
    Spared = 1,
    /// Dropped, `within-document`.
    WithinDocument = 2,
    /// Dropped, `across-documents`.
    AcrossDocuments = 3,
    /// Dropped, `duplicate-document`.
    DuplicateDocument = 4,
    /// Dropped, `inside-repeated-block`.
    InsideRepeatedBlock = 5,
    /// Dropped, `same-source`.
    SameSource = 6,
}

/// One byte per paragraph (see [`PlanCode`]).
pub fn encode_plan(plan: &Plan) -> Vec<u8> {
    plan.verdicts
        .iter()
        .map(|v| {
            (match v {
                Verdict::Keep => PlanCode::Keep,
                Verdict::Spared { .. } => PlanCode::Spared,
                Verdict::Drop { reason: Reason::WithinDocument, .. } => PlanCode::WithinDocument,
                Verdict::Drop { reason: Reason::AcrossDocuments, .. } => PlanCode::AcrossDocuments,
                Verdict::Drop { reason: Reason::DuplicateDocument, .. } => PlanCode::DuplicateDocument,
                Verdict::Drop { reason: Reason::InsideRepeatedBlock, .. } => PlanCode::InsideRepeatedBlock,
                Verdict::Drop { reason: Reason::SameSource, .. } => PlanCode::SameSource,
            }) as u8
        })
        .collect()
}

/// The verdicts of [`encode_plan`]'s bytes for `doc` (first occurrences are
/// not part of a plan: they read as document 0, paragraph 0), checked
/// against its number of paragraphs.
pub fn decode_plan(doc: &Document, bytes: &[u8]) -> Result<Vec<Verdict>, SignatureError> {
    if bytes.len() != doc.len() {
        return Err(SignatureError::Mismatch { plan: bytes.len(), doc: doc.len() });
    }
    let first = Occurrence::default();
    let drop = |reason| Verdict::Drop { reason, first };
    bytes
        .iter()
        .enumerate()
        .map(|(para, &byte)| {
            Ok(match byte {
                0 => Verdict::Keep,
                1 => Verdict::Spared { first },
                2 => drop(Reason::WithinDocument),
                3 => drop(Reason::AcrossDocuments),
                4 => drop(Reason::DuplicateDocument),
                5 => drop(Reason::InsideRepeatedBlock),
                6 => drop(Reason::SameSource),
                _ => return Err(SignatureError::BadPlan { byte, para }),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::TextOptions;

    #[test]
    fn signatures_round_trip_and_refuse_other_bytes() {
        let doc = Document::prepare("First paragraph here.\nSecond one, longer.\n".into(), &TextOptions::default());
        let sig = encode(&doc);
        let (keys, whole) = decode(&sig).unwrap();
        assert_eq!(keys, doc.keys);
        assert_eq!(whole, doc.whole);
        assert_eq!(decode(&sig[..sig.len() - 1]), Err(SignatureError::Malformed(sig.len() - 1)));
        assert_eq!(decode(b"abc"), Err(SignatureError::Malformed(3)));
    }

    #[test]
    fn plans_round_trip_and_must_fit_the_document() {
        let doc = Document::prepare("A.\nB.\nA.\n".into(), &TextOptions::default());
        let first = Occurrence::default();
        let verdicts =
            vec![Verdict::Keep, Verdict::Spared { first }, Verdict::Drop { reason: Reason::SameSource, first }];
        let bytes = encode_plan(&Plan { doc: 0, verdicts: verdicts.clone(), duplicate_of: None });
        assert_eq!(bytes, [0, 1, 6]);
        assert_eq!(decode_plan(&doc, &bytes).unwrap(), verdicts);
        assert_eq!(decode_plan(&doc, &[0, 0]), Err(SignatureError::Mismatch { plan: 2, doc: 3 }));
        assert_eq!(decode_plan(&doc, &[0, 9, 0]), Err(SignatureError::BadPlan { byte: 9, para: 1 }));
    }
}
