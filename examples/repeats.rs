//! What the context rule for short repeats drops and spares on a corpus, for
//! candidate `--min-chars` values: the measurement behind the README table
//! ("Short repeats").
//!
//! ```sh
//! cargo run --release --example repeats -- DIR [--min 20,40,60,80] [--probe TEXT]...
//! ```
//!
//! DIR is walked like `newsdedup clean DIR` (text files, corpus order,
//! `--split auto`, exact keys). Each candidate is decided with
//! [`newsdedup::dedup::judge`], the function `clean` uses; the row `old-20` is
//! the rule before context (every cross-document repeat of at least 20
//! characters dropped): the same function with every repeated paragraph given
//! a source of its own, so "the same earlier document" never holds. Figures:
//!
//! * `cross`: paragraphs repeating an earlier (non-duplicate-judged) document;
//!   `long`, `same-src`, `in-run`: dropped as `across-documents`,
//!   `same-source`, `inside-repeated-block`; `spared`: kept;
//! * `isolated`: cross-document drops with no dropped neighbour, and `<12w`
//!   those under 12 words (the issue's measure of facts lost); `run 12w+`:
//!   drops of 12+ words next to another drop (pasted or re-sent copy);
//! * `table`: dropped lines starting "Qtly div", "Shr", "Net", "Revs", "Pay"
//!   or "Record" (Reuters' templated figures) outside duplicate documents;
//! * per probe: stories holding the line, and stories that lost it
//!   (duplicate documents included).
//!
//! Then the most frequent spared lines and short dropped lines, as examples.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use newsdedup::dedup::{Occurrence, Origin, Reason, Rules, Source, Verdict, judge};
use newsdedup::document::{Document, TextOptions};
use newsdedup::read::{EncodingPolicy, decode};
use newsdedup::walk::{WalkOptions, walk};

struct Doc {
    doc: Document,
    paras: Vec<String>,
}

fn load(root: &Path) -> Vec<Doc> {
    let listing = walk(root, &WalkOptions::default());
    listing
        .files
        .iter()
        .filter_map(|f| {
            let bytes = std::fs::read(&f.path).ok()?;
            let (text, _) = decode(bytes, EncodingPolicy::Repair).ok()?;
            let doc = Document::prepare(text, &TextOptions::default());
            let paras = doc.split.paragraphs().map(|p| p.into_owned()).collect();
            Some(Doc { doc, paras })
        })
        .collect()
}

#[derive(Default)]
struct Tally {
    cross: u64,
    long: u64,
    same_source: u64,
    in_run: u64,
    spared: u64,
    duplicate_docs: u64,
    isolated: u64,
    isolated_short: u64,
    run_long: u64,
    table: u64,
    table_lines: HashMap<String, u64>,
    isolated_lines: HashMap<String, u64>,
    probes: Vec<(u64, u64)>,
    spared_lines: HashMap<String, u64>,
    dropped_short: HashMap<String, u64>,
}

impl Tally {
    /// An exact duplicate document: counted, and each probe it holds is lost.
    fn duplicate(&mut self, d: &Doc, probes: &[String]) {
        self.duplicate_docs += 1;
        for (p, probe) in probes.iter().enumerate() {
            let held = u64::from(d.paras.contains(probe));
            self.probes[p].0 += held;
            self.probes[p].1 += held;
        }
    }
}

/// Decides the whole corpus with `rules`; `context: false` is the old rule.
fn measure(docs: &[Doc], rules: Rules, context: bool, probes: &[String]) -> Tally {
    let mut t = Tally { probes: vec![(0, 0); probes.len()], ..Tally::default() };
    let mut seen: HashMap<u128, Occurrence> = HashMap::new();
    let mut whole = std::collections::HashSet::new();
    let mut unique = 0u64;
    for (n, d) in docs.iter().enumerate() {
        let n = n as u32;
        let keys = &d.doc.keys;
        let has_long = keys.iter().any(|k| k.chars >= rules.min_chars.max(1));
        let copy = !keys.is_empty() && !whole.insert(d.doc.whole.prefix());
        if copy && has_long {
            t.duplicate(d, probes);
            continue;
        }
        let origins: Vec<Origin> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let here = Occurrence { doc: n, para: i as u32 };
                let first = *seen.entry(k.digest.prefix()).or_insert(here);
                if first.doc == n {
                    return Origin::Here;
                }
                unique += 1;
                let source = if context { Source::Run(first.doc) } else { Source::Index(unique) };
                Origin::Elsewhere { source, first }
            })
            .collect();
        let verdicts = judge(n, keys, &origins, &rules);
        if copy && !verdicts.iter().any(|v| v.is_kept()) {
            t.duplicate(d, probes);
            continue;
        }
        let dropped = |i: usize| verdicts.get(i).is_some_and(|v| !v.is_kept());
        let mut counted = std::collections::HashSet::new();
        for (i, (o, v)) in origins.iter().zip(&verdicts).enumerate() {
            if !matches!(o, Origin::Elsewhere { .. }) || !counted.insert(keys[i].digest.prefix()) {
                continue;
            }
            t.cross += 1;
            let text = &d.paras[i];
            let words = text.split_whitespace().count();
            match v {
                Verdict::Spared { .. } => {
                    t.spared += 1;
                    *t.spared_lines.entry(text.clone()).or_default() += 1;
                }
                Verdict::Drop { reason, .. } => {
                    match reason {
                        Reason::SameSource => t.same_source += 1,
                        Reason::InsideRepeatedBlock => t.in_run += 1,
                        _ => t.long += 1,
                    }
                    if keys[i].chars < rules.min_chars {
                        *t.dropped_short.entry(text.clone()).or_default() += 1;
                    }
                    let next_to_drop = (i > 0 && dropped(i - 1)) || dropped(i + 1);
                    let isolated = !next_to_drop;
                    t.isolated += u64::from(isolated);
                    t.isolated_short += u64::from(isolated && words < 12);
                    if isolated && words < 12 {
                        *t.isolated_lines.entry(text.clone()).or_default() += 1;
                    }
                    t.run_long += u64::from(!isolated && words >= 12);
                }
                Verdict::Keep => {}
            }
        }
        for (text, v) in d.paras.iter().zip(&verdicts) {
            let table = ["Qtly div", "Shr ", "Net ", "Revs ", "Pay ", "Record "].iter().any(|t| text.starts_with(t));
            t.table += u64::from(table && !v.is_kept());
            if table && !v.is_kept() {
                *t.table_lines.entry(format!("{text} [{}]", reason(v))).or_default() += 1;
            }
        }
        for (p, probe) in probes.iter().enumerate() {
            if let Some(i) = d.paras.iter().position(|x| x == probe) {
                t.probes[p].0 += 1;
                t.probes[p].1 += u64::from(!verdicts[i].is_kept());
            }
        }
    }
    t
}

fn reason(v: &Verdict) -> &'static str {
    if let Verdict::Drop { reason, .. } = v { reason.as_str() } else { "kept" }
}

fn top(map: &HashMap<String, u64>, n: usize) -> String {
    let mut v: Vec<_> = map.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter().take(n).map(|(k, c)| format!("\"{k}\" ×{c}")).collect::<Vec<_>>().join("; ")
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut root, mut mins, mut probes) = (None, vec![20, 40, 60, 80], Vec::new());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--min" => mins = args.next().unwrap_or_default().split(',').filter_map(|m| m.parse().ok()).collect(),
            "--probe" => probes.extend(args.next()),
            _ => root = Some(PathBuf::from(a)),
        }
    }
    let root = root.ok_or_else(|| anyhow::anyhow!("usage: repeats DIR [--min 20,40,60] [--probe TEXT]..."))?;
    let docs = load(&root);
    let paragraphs: usize = docs.iter().map(|d| d.paras.len()).sum();
    println!("{}: {} documents, {} paragraphs", root.display(), docs.len(), paragraphs);
    let mut runs = vec![("old-20".to_owned(), Rules { min_chars: 20, ..Rules::default() }, false)];
    runs.extend(mins.iter().map(|&m| (format!("ctx-{m}"), Rules { min_chars: m, ..Rules::default() }, true)));
    println!(
        "| rule | dup docs | cross | long | same-src | in-run | spared | isolated | <12w | run 12w+ | table | probes |"
    );
    let mut examples = Vec::new();
    for (label, rules, context) in runs {
        let t = measure(&docs, rules, context, &probes);
        let probe = t.probes.iter().map(|(h, l)| format!("{l}/{h}")).collect::<Vec<_>>().join(" ");
        println!(
            "| {label} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {probe} |",
            t.duplicate_docs,
            t.cross,
            t.long,
            t.same_source,
            t.in_run,
            t.spared,
            t.isolated,
            t.isolated_short,
            t.run_long,
            t.table
        );
        examples.push(format!(
            "{label}: spared: {}\n{label}: dropped short: {}\n{label}: isolated <12w: {}\n{label}: table: {}",
            top(&t.spared_lines, 8),
            top(&t.dropped_short, 8),
            top(&t.isolated_lines, 8),
            top(&t.table_lines, 8)
        ));
    }
    for (p, probe) in probes.iter().enumerate() {
        println!("probe {}: {probe:?}", p + 1);
    }
    println!("{}", examples.join("\n"));
    Ok(())
}
