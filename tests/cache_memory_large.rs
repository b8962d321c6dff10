//! The read cache's memory bound is a bound with large answers too: 5,000 answers of about
//! 20 KB (a list of 50 teams) into 16 MiB grow the process by no more than `max_bytes` × 1.25.
//! A process of its own, so that no other test's memory is counted.

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_large_entries_stay_within_the_byte_bound() {
    support::cache_fill::fill(5_000, 20_000).await;
}
