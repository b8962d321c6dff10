//! The read cache's memory bound is a bound: filled with 100,000 small answers (many times
//! what fits), the process grows by no more than `max_bytes` × 1.25. A process of its own, so
//! that no other test's memory is counted (large answers: `cache_memory_large.rs`).

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_small_entries_stay_within_the_byte_bound() {
    support::cache_fill::fill(100_000, 0).await;
}
