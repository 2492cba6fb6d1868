//! Room made ahead for what a record shard adds to the run's lists, one
//! entry a record, so that they do not grow by doubling on the ordered step
//! (see [`Decider::expect_documents`]).

use super::{Decider, FileRow, SharedLine};

/// The most records of a shard [`records_expected`] answers: room for more
/// is then made by doubling as before. Room made ahead is faulted in, so an
/// estimate too high (a shard whose first records are much shorter than the
/// rest) costs memory: at most ~17 MiB for the documents (16 bytes each,
/// and a sixteenth) and as much for their ids.
const EXPECTED_RECORDS_MAX: usize = 1 << 20;

/// The most dropped records room is made for ahead (104 bytes each: ~8 MiB
/// with the quarter added): the first records decided may all be dropped
/// (a day's export that starts with the day before's) and the rest none.
const DROPPED_AHEAD_MAX: usize = 1 << 16;

/// About how many records a shard of `size` bytes holds, from its first
/// batch's bytes per record (a compressed shard holds more), at most
/// [`EXPECTED_RECORDS_MAX`]; the first batch's count when it is empty.
pub(super) fn records_expected(size: u64, first: &[(u64, SharedLine)]) -> usize {
    let bytes: u64 = first.iter().map(|(_, raw)| raw.len() as u64 + 1).sum();
    if bytes == 0 {
        return first.len();
    }
    let records = u128::from(size) * first.len() as u128 / u128::from(bytes);
    usize::try_from(records).unwrap_or(usize::MAX).clamp(first.len(), EXPECTED_RECORDS_MAX.max(first.len()))
}

/// Room for the rest of a shard's `records` (expected) in the lists that
/// grow with them, made once some records are decided: the run's documents
/// and ids (as many ids as the records decided so far had, in proportion:
/// `ids_before` were the run's before the shard), and the shard's dropped
/// records (in the proportion dropped so far, plus a quarter). See
/// [`Decider::expect_documents`].
pub(super) fn reserve_for_shard(decider: &mut Decider, row: &mut FileRow, records: usize, ids_before: usize) {
    let seen = usize::try_from(row.stats.documents_read).unwrap_or(usize::MAX).max(1);
    let rest = records.saturating_sub(seen);
    let like = |n: usize| rest.saturating_mul(n) / seen;
    decider.expect_documents(rest + rest / 16, like(decider.ids.len().saturating_sub(ids_before)));
    let dropped = like(row.dropped_records.len()).min(DROPPED_AHEAD_MAX);
    if dropped > 0 {
        crate::threads::reserve_touched(&mut row.dropped_records, dropped + dropped / 4);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(lens: &[usize]) -> Vec<(u64, SharedLine)> {
        lens.iter().enumerate().map(|(i, &n)| (i as u64 + 1, SharedLine::from(vec![b'x'; n]))).collect()
    }

    #[test]
    fn a_shard_is_expected_to_hold_its_size_over_the_first_batchs_bytes_per_record() {
        // 4 records of 99 bytes and their newlines: 100 bytes a record.
        let first = lines(&[99, 99, 99, 99]);
        assert_eq!(records_expected(400, &first), 4, "the first batch is the whole shard");
        assert_eq!(records_expected(1_000_000, &first), 10_000);
        assert_eq!(records_expected(10, &first), 4, "never fewer than the first batch holds");
        assert_eq!(records_expected(u64::MAX, &first), EXPECTED_RECORDS_MAX, "at most");
        assert_eq!(records_expected(1000, &lines(&[])), 0, "an empty first batch says nothing");
        // Empty lines are a byte each (their newline).
        assert_eq!(records_expected(1000, &lines(&[0, 0])), 1000);
    }

    /// After 100 records, 40 of them with an id and 10 dropped, of 1,000
    /// expected: room for the other 900 documents (and a sixteenth), 360 ids
    /// and 90 dropped records (and a quarter), values kept.
    #[test]
    fn the_rest_of_a_shard_is_made_room_for_in_the_proportions_seen() {
        use crate::config::{Config, Input, Output};
        use crate::report::DroppedRecord;
        let cfg = Config::new(Input::Path("in".into()), Output::DryRun);
        let mut decider = Decider::new(&cfg, &crate::threads::Budget::new(2)).expect("decider");
        let ids_before = 5;
        for doc in 0..ids_before + 40 {
            decider.ids.insert(doc as u32, &format!("id-{doc}"));
        }
        decider.docs.extend((0..100).map(|line| (0, line)));
        let mut row = FileRow::default();
        row.stats.documents_read = 100;
        row.dropped_records = (0..10).map(|line| DroppedRecord { line, ..DroppedRecord::default() }).collect();
        reserve_for_shard(&mut decider, &mut row, 1000, ids_before);
        let within = |got: usize, want: usize| (want..2 * want).contains(&got);
        assert!(within(decider.docs.capacity(), 100 + 900 + 900 / 16), "{}", decider.docs.capacity());
        assert!(within(decider.ids.capacity(), 45 + 360), "{}", decider.ids.capacity());
        assert!(within(row.dropped_records.capacity(), 10 + 90 + 90 / 4), "{}", row.dropped_records.capacity());
        assert_eq!(decider.docs.len(), 100);
        assert_eq!(decider.ids.get(44), Some("id-44"));
        assert_eq!(row.dropped_records[9].line, 9);
        // Nothing dropped so far: no room made for dropped records.
        let mut clean = FileRow::default();
        clean.stats.documents_read = 100;
        reserve_for_shard(&mut decider, &mut clean, 1000, ids_before);
        assert_eq!(clean.dropped_records.capacity(), 0);
        // All of the first records dropped: room for at most
        // `DROPPED_AHEAD_MAX` more (and a quarter), whatever the estimate.
        let mut all = FileRow::default();
        all.stats.documents_read = 10;
        all.dropped_records = vec![DroppedRecord::default(); 10];
        reserve_for_shard(&mut decider, &mut all, EXPECTED_RECORDS_MAX, ids_before);
        let cap = DROPPED_AHEAD_MAX + DROPPED_AHEAD_MAX / 4;
        assert!(within(all.dropped_records.capacity(), 10 + cap), "{}", all.dropped_records.capacity());
    }
}
