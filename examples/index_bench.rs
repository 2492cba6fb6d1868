//! Benchmark for the index module: `cargo run --release --example index_bench`.
//! Builds a 10M-key index in 10 commits of 1M, then measures open, lookups,
//! a 1M-key commit, bytes/key and peak RSS. Uses a temp dir under /tmp.
//! `--fill DIR MILLIONS` only builds an index in DIR (for `benches/index.sh`).

use newsdedup::index::{Batch, Entry, Index, RunInfo};
use std::time::Instant;

#[path = "../src/index/tests/keys.rs"]
mod keys;
use keys::{key, splitmix};

fn entries(lo: u64, hi: u64) -> Vec<Entry> {
    (lo..hi).map(|i| Entry { key: key(i), doc: i / 10, batch: 0 }).collect()
}
fn vm_hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM")).map(|l| l.to_string()))
        .unwrap_or_default()
}
fn run(n: u64) -> RunInfo {
    RunInfo {
        timestamp: 1_700_000_000,
        docs: n / 10,
        paragraphs: n,
        label: "bench".into(),
        batch: Batch::Named(b"bench".to_vec()),
    }
}

fn lookups(idx: &Index, keys: &[u128], threads: usize) -> (f64, usize) {
    let t = Instant::now();
    let found: usize = std::thread::scope(|s| {
        let hs: Vec<_> = keys
            .chunks(keys.len().div_ceil(threads))
            .map(|c| s.spawn(move || c.iter().filter(|k| idx.get(**k).is_some()).count()))
            .collect();
        hs.into_iter().map(|h| h.join().expect("thread")).sum()
    });
    (keys.len() as f64 / t.elapsed().as_secs_f64(), found)
}

fn lookups_many(idx: &Index, keys: &[u128], threads: usize) -> (f64, usize) {
    let t = Instant::now();
    let found: usize = std::thread::scope(|s| {
        let hs: Vec<_> = keys
            .chunks(keys.len().div_ceil(threads))
            .map(|c| {
                s.spawn(move || {
                    let mut out = vec![None; 1024];
                    let mut n = 0;
                    for kc in c.chunks(1024) {
                        idx.get_many(kc, &mut out);
                        n += out[..kc.len()].iter().filter(|o| o.is_some()).count();
                    }
                    n
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("thread")).sum()
    });
    (keys.len() as f64 / t.elapsed().as_secs_f64(), found)
}

/// `--fill DIR MILLIONS [--settle]`: leave an index of that many random keys
/// in DIR, committed one million at a time (one "day" each), for
/// `benches/index.sh`. With `--settle`, the tiering merge then due is done
/// (by a commit of no keys), so that the next run has none pending.
fn fill(dir: &str, millions: &str, settle: bool) -> Result<(), Box<dyn std::error::Error>> {
    const M: u64 = 1_000_000;
    let dir = std::path::Path::new(dir);
    for day in 0..millions.parse::<u64>()? {
        Index::open(dir)?.commit(entries(day * M, (day + 1) * M), run(M))?;
    }
    if settle {
        Index::open(dir)?.commit(Vec::new(), run(0))?;
    }
    print!("{}", Index::open(dir)?.stats());
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const M: u64 = 1_000_000;
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--fill") {
        let (Some(dir), Some(millions)) = (args.get(2), args.get(3)) else {
            return Err("usage: index_bench --fill DIR MILLIONS [--settle]".into());
        };
        return fill(dir, millions, args.get(4).map(String::as_str) == Some("--settle"));
    }
    let commits: u64 = std::env::args().nth(1).map_or(Ok(10), |a| a.parse())?;
    let tmp = tempfile::Builder::new().prefix("index_bench").tempdir_in("/tmp")?;
    let dir = tmp.path().join("idx");
    let t = Instant::now();
    for c in 0..commits {
        let new = entries(c * M, (c + 1) * M);
        let t1 = Instant::now();
        let idx = Index::open(&dir)?;
        let t2 = Instant::now();
        idx.commit(new, run(M))?;
        println!(
            "build commit {:2}: open {:6.1} ms, commit {:6.1} ms",
            c + 1,
            (t2 - t1).as_secs_f64() * 1e3,
            t2.elapsed().as_secs_f64() * 1e3
        );
    }
    println!(
        "build total {:.2} s = {:.0} ms amortized per 1M-key commit (incl. tiered merges)",
        t.elapsed().as_secs_f64(),
        t.elapsed().as_secs_f64() * 1e3 / commits as f64
    );
    let n = commits * M;
    let mut x = 12345u64;
    let mut rnd = || {
        x = splitmix(x);
        x
    };
    let hits: Vec<u128> = (0..M).map(|_| key(rnd() % n)).collect();
    let misses: Vec<u128> = (0..M).map(|_| key(n + 1_000_000_000 + rnd() % n)).collect();
    let mixed: Vec<u128> =
        (0..M).map(|i| if i % 2 == 0 { key(rnd() % n) } else { key(n + 2_000_000_000 + i) }).collect();

    let t = Instant::now();
    let idx = Index::open(&dir)?;
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    let st = idx.stats();
    println!(
        "open {:.1} ms; stats: keys {} segments {:?} bytes {} ({:.2} B/key)",
        open_ms,
        st.keys,
        st.segment_keys,
        st.bytes_on_disk,
        st.bytes_on_disk as f64 / st.keys as f64
    );
    // Each measurement is repeated 5 times; the median is reported (this VM is noisy).
    let median = |f: &dyn Fn() -> (f64, usize), expect: usize, name: &str| {
        let mut r: Vec<f64> = (0..5)
            .map(|_| {
                let (rate, found) = f();
                assert_eq!(found, expect, "{name}");
                rate
            })
            .collect();
        r.sort_by(f64::total_cmp);
        r[2]
    };
    for (name, keys, expect) in
        [("hits", &hits, M as usize), ("misses", &misses, 0), ("50/50", &mixed, (M / 2) as usize)]
    {
        for th in [1, 2] {
            let rate = median(&|| lookups(&idx, keys, th), expect, name);
            println!(
                "get      {name:6} {th} thread(s): {:6.2} M/s ({:5.0} ns/lookup/thread)",
                rate / 1e6,
                th as f64 * 1e9 / rate
            );
            let rate = median(&|| lookups_many(&idx, keys, th), expect, name);
            println!(
                "get_many {name:6} {th} thread(s): {:6.2} M/s ({:5.0} ns/lookup/thread)",
                rate / 1e6,
                th as f64 * 1e9 / rate
            );
        }
    }
    // One daily run: open + 1M lookups (2 threads, 50/50) + commit 1M new keys.
    drop(idx);
    let new = entries(n, n + M);
    // As `newsdedup clean --index` does it: the tiering merge runs in the
    // background while the lookups run, and the commit publishes it.
    let t = Instant::now();
    let mut idx = Index::open(&dir)?;
    idx.start_merge()?;
    let t_open = t.elapsed();
    let (_, _) = lookups_many(&idx, &mixed, 2);
    let t_look = t.elapsed() - t_open;
    idx.commit(new, run(M))?;
    let t_all = t.elapsed();
    println!(
        "daily run on {} keys: open+start merge {:.1} ms + 1M get_many (2 thr, merge running) {:.1} ms + commit 1M (waits for the merge) {:.1} ms = {:.1} ms",
        n,
        t_open.as_secs_f64() * 1e3,
        t_look.as_secs_f64() * 1e3,
        (t_all - t_look - t_open).as_secs_f64() * 1e3,
        t_all.as_secs_f64() * 1e3
    );
    let idx = Index::open(&dir)?;
    println!("after: segments {:?}", idx.stats().segment_keys);
    let new = entries(n + M, n + 2 * M);
    let t = Instant::now();
    idx.commit(new, run(M))?;
    println!("next commit of 1M, merge inline: {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    let idx = Index::open(&dir)?;
    println!("after: segments {:?}", idx.stats().segment_keys);
    let t = Instant::now();
    idx.compact()?;
    println!("compact {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    println!("{}", vm_hwm());
    if std::env::args().any(|a| a == "--hashmap") {
        // Alternative rejected: build an in-memory hash map of the whole index at open.
        let t = Instant::now();
        let mut h: std::collections::HashMap<u128, (u64, u32)> = std::collections::HashMap::with_capacity(n as usize);
        for i in 0..n {
            h.insert(key(i), (i / 10, (i % 10) as u32));
        }
        let build = t.elapsed();
        let t = Instant::now();
        let found = mixed.iter().filter(|k| h.contains_key(*k)).count();
        println!(
            "alternative HashMap<u128,(u64,u32)>: build {} keys {:.0} ms, 1M lookups 50/50 {:.0} ms (found {found}); {}",
            n,
            build.as_secs_f64() * 1e3,
            t.elapsed().as_secs_f64() * 1e3,
            vm_hwm()
        );
    }
    Ok(())
}
