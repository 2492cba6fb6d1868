//! Fills a persistent index with random keys, for benchmarks:
//! `cargo run --release --example fill_index -- DIR MILLIONS`.
//! Commits one million keys at a time (one "day" each), as daily runs would.

use newsdedup::index::{Entry, Index, RunInfo};

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(millions)) = (args.get(1), args.get(2)) else {
        return Err("usage: fill_index DIR MILLIONS".into());
    };
    let millions: u64 = millions.parse()?;
    for day in 0..millions {
        let entries: Vec<Entry> = (day * 1_000_000..(day + 1) * 1_000_000)
            .map(|i| Entry {
                key: (u128::from(splitmix(2 * i)) << 64) | u128::from(splitmix(2 * i + 1)),
                doc: splitmix(i / 10),
                para: (i % 10) as u32,
            })
            .collect();
        let run = RunInfo {
            timestamp: 1_700_000_000 + day * 86_400,
            docs: 100_000,
            paragraphs: 1_000_000,
            label: format!("fill day {day}"),
        };
        Index::open(std::path::Path::new(dir))?.commit(entries, run)?;
    }
    print!("{}", Index::open(std::path::Path::new(dir))?.stats());
    Ok(())
}
