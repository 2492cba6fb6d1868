//! A decided record rendered: the clean text written back into the
//! record (or the record as read, when nothing changed), or the
//! `--annotate` field added.

use super::Parsed;
use crate::config::Config;
use crate::dedup::{Plan, Verdict};
use crate::document::Document;
use crate::formats::Parser;

/// What a decided record becomes, appended to `out` (`text`: a buffer for
/// the clean text, reused between records).
pub(super) fn render_line(
    line: &Parsed,
    plan: Option<&Plan>,
    (cfg, parser): (&Config, &Parser),
    text: &mut String,
    out: &mut Vec<u8>,
) {
    let (Parsed::Doc { record, doc, .. }, Some(plan)) = (line, plan) else { return };
    if let Some(field) = &cfg.annotate {
        parser.write_with_field(record, field, &annotation(doc, plan), out);
        return;
    }
    if plan.kept() == 0 && !cfg.keep_empty {
        return;
    }
    let text = doc.rendered(&plan.verdicts, cfg.emit, text);
    if text == doc.original {
        // Nothing dropped, nothing normalised: the record as it was read.
        parser.write_as_read(record, out);
        return;
    }
    parser.write_with_text(record, text, out);
}

/// The `--annotate` value: dropped paragraphs as `[start, end, reason]` byte
/// spans of the text (deleting them gives the `--emit original` clean
/// text; see [`Document::removal_spans`]), plus counts.
fn annotation(doc: &Document, plan: &Plan) -> serde_json::Value {
    let spans: Vec<serde_json::Value> = doc
        .removal_spans(&plan.verdicts)
        .into_iter()
        .map(|(r, i)| {
            let reason = match plan.verdicts[i] {
                Verdict::Drop { reason, .. } => reason.as_str(),
                _ => "",
            };
            serde_json::json!([r.start, r.end, reason])
        })
        .collect();
    serde_json::json!({
        "spans": spans,
        "paragraphs": plan.verdicts.len(),
        "kept": plan.kept(),
        "dropped": plan.verdicts.len() - plan.kept(),
    })
}
