//! A test-only Rust reference of the decide step's SQL (README,
//! "Scale-out"): `min(pos)` per key over the keys with more than one row
//! (the cluster index's keys included, with negative positions, so they
//! always win), joined back, keeping only the repeats whose first occurrence
//! is in another shard or in the index.

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{Field, Schema};
use newsdedup::index::cluster::{ClusterManifest, read_batch};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Every batch of `path`, read whole.
fn read(path: &Path) -> Vec<RecordBatch> {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet").build().expect("reader");
    reader.map(|b| b.expect("batch")).collect()
}

fn ints(batches: &[RecordBatch], name: &str) -> Vec<Option<i64>> {
    let mut out = Vec::new();
    for b in batches {
        let col = b.column_by_name(name).unwrap_or_else(|| panic!("no column {name}"));
        let a = col.as_any().downcast_ref::<Int64Array>().expect("INT64");
        out.extend(a.iter());
    }
    out
}

fn strings(batches: &[RecordBatch], name: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for b in batches {
        let col = b.column_by_name(name).unwrap_or_else(|| panic!("no column {name}"));
        let a = col.as_any().downcast_ref::<StringArray>().expect("UTF8");
        out.extend(a.iter().map(|s| s.map(str::to_owned)));
    }
    out
}

/// The `*.parquet` files of `dir`, sorted.
fn parts(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.expect("entry").path()).filter(|p| p.extension().is_some_and(|e| e == "parquet")).collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// A drop row (the contract's columns).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Drop {
    pos: i64,
    first_pos: i64,
    first_doc: i64,
    first_file: Option<String>,
    first_line: Option<i64>,
    first_id: Option<String>,
    anchor: Option<i64>,
    batch: Option<String>,
}

/// Per key: (rows, min pos, min doc, max anchor).
type First = (u64, i64, i64, Option<i64>);
/// A document's file, line and id.
type DocRow = (Option<String>, Option<i64>, Option<String>);

/// The decide step over `WORK/keys`, `WORK/docs` and the batches of the
/// cluster index at `index` (all of them: this run is a new batch), written
/// to `WORK/drops/shard=R/` in two part files per shard, rows shuffled, as
/// an engine may.
pub fn decide(work: &Path, index: Option<&Path>) -> usize {
    let key = |hi: i64, lo: i64| (hi, lo);
    // key -> (count, min pos, min doc, max anchor)
    let mut firsts: HashMap<(i64, i64), First> = HashMap::new();
    let mut add = |k: (i64, i64), pos: i64, doc: i64, anchor: Option<i64>| {
        let e = firsts.entry(k).or_insert((0, i64::MAX, i64::MAX, None));
        e.0 += 1;
        e.1 = e.1.min(pos);
        e.2 = e.2.min(doc);
        e.3 = e.3.max(anchor);
    };
    let mut names: HashMap<i64, Option<String>> = HashMap::new();
    if let Some(index) = index.filter(|i| i.join("manifest.json").exists()) {
        let m = ClusterManifest::read(index).expect("cluster manifest");
        for b in &m.batches {
            names.insert(-(i64::from(b.seq) + 1), b.name.clone());
            for (k, anchor) in read_batch(&index.join(&b.file)).expect("batch") {
                add(
                    key((k >> 64) as u64 as i64, k as u64 as i64),
                    -(i64::from(b.seq) + 1),
                    i64::MIN,
                    Some(anchor as i64),
                );
            }
        }
    }
    let mut rows = Vec::new();
    for path in parts(&work.join("keys")) {
        let b = read(&path);
        let (hi, lo, pos, doc) = (ints(&b, "k_hi"), ints(&b, "k_lo"), ints(&b, "pos"), ints(&b, "doc"));
        for i in 0..hi.len() {
            let (k, p, d) = (key(hi[i].unwrap(), lo[i].unwrap()), pos[i].unwrap(), doc[i].unwrap());
            add(k, p, d, None);
            rows.push((k, p));
        }
    }
    let mut docs: HashMap<i64, DocRow> = HashMap::new();
    for path in parts(&work.join("docs")) {
        let b = read(&path);
        let (doc, file, line, id) = (ints(&b, "doc"), strings(&b, "file"), ints(&b, "line"), strings(&b, "id"));
        for i in 0..doc.len() {
            docs.insert(doc[i].unwrap(), (file[i].clone(), line[i], id[i].clone()));
        }
    }
    let mut by_shard: HashMap<i64, Vec<Drop>> = HashMap::new();
    for (k, pos) in rows {
        let &(count, first_pos, first_doc, anchor) = &firsts[&k];
        if count < 2 || pos <= first_pos || (first_pos >= 0 && first_pos >> 32 == pos >> 32) {
            continue;
        }
        let (first_file, first_line, first_id) = docs.get(&first_doc).cloned().unwrap_or_default();
        let batch = if first_pos < 0 { names.get(&first_pos).cloned().flatten() } else { None };
        let d = Drop { pos, first_pos, first_doc, first_file, first_line, first_id, anchor, batch };
        by_shard.entry(pos >> 32).or_default().push(d);
    }
    let drops = work.join("drops");
    let _ = fs::remove_dir_all(&drops);
    // The decide step's folder exists even when no shard has a drop.
    fs::create_dir_all(&drops).expect("drops dir");
    let mut total = 0;
    for (shard, mut list) in by_shard {
        total += list.len();
        list.sort();
        list.reverse();
        let dir = drops.join(format!("shard={shard}"));
        fs::create_dir_all(&dir).expect("drops dir");
        let half = list.len() / 2;
        write_drops(&dir.join("part-00001-x.parquet"), &list[..half]);
        write_drops(&dir.join("part-00000-x.parquet"), &list[half..]);
        fs::write(dir.join("_SUCCESS"), b"").expect("marker");
    }
    total
}

fn write_drops(path: &Path, rows: &[Drop]) {
    let int = |f: &dyn Fn(&Drop) -> Option<i64>| Arc::new(rows.iter().map(f).collect::<Int64Array>()) as ArrayRef;
    let text = |f: &dyn Fn(&Drop) -> Option<String>| Arc::new(rows.iter().map(f).collect::<StringArray>()) as ArrayRef;
    let columns = vec![
        int(&|d| Some(d.pos)),
        int(&|d| Some(d.first_pos)),
        int(&|d| Some(d.first_doc)),
        text(&|d| d.first_file.clone()),
        int(&|d| d.first_line),
        text(&|d| d.first_id.clone()),
        int(&|d| d.anchor),
        text(&|d| d.batch.clone()),
    ];
    let fields: Vec<Field> =
        ["pos", "first_pos", "first_doc", "first_file", "first_line", "first_id", "anchor", "batch"]
            .iter()
            .zip(&columns)
            .map(|(n, c)| Field::new(*n, c.data_type().clone(), *n != "pos" && *n != "first_pos"))
            .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns).expect("drops batch");
    let mut w = ArrowWriter::try_new(File::create(path).expect("drops file"), schema, None).expect("writer");
    w.write(&batch).expect("write drops");
    w.close().expect("close drops");
}

/// A drop list for shard `pos >> 32` with one row: `pos` first kept by the
/// cluster index (batch 0, anchor 1).
pub fn write_one_drop(work: &Path, pos: i64) {
    let dir = work.join("drops").join(format!("shard={}", pos >> 32));
    fs::create_dir_all(&dir).expect("drops dir");
    let d = Drop {
        pos,
        first_pos: -1,
        first_doc: i64::MIN,
        first_file: None,
        first_line: None,
        first_id: None,
        anchor: Some(1),
        batch: Some("b".into()),
    };
    write_drops(&dir.join("part-0.parquet"), &[d]);
}
