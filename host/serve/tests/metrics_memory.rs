//! The Prometheus metrics stay bounded however long nobody scrapes them: the exporter keeps each
//! histogram sample until it is folded into the buckets, so the service folds them itself.
//! Measured with a counting allocator, in a test binary of its own (one test: no other thread
//! allocates meanwhile).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use edgescore_serve::Metrics;

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn record(metrics: &Metrics, n: u32) {
    for i in 0..n {
        let elapsed = Duration::from_micros(200 + u64::from(i % 1000));
        metrics.record_request("/ingest", 200, elapsed);
        metrics.record_component_call("ingest", elapsed);
    }
}

#[test]
fn histograms_nobody_scrapes_keep_a_bounded_memory() {
    let metrics = Metrics::new(&["/ingest"]);
    // Registration and the first blocks of samples.
    record(&metrics, 10_000);
    let before = LIVE.load(Ordering::Relaxed);
    // 400,000 samples: 9.6 MB if they were all kept.
    record(&metrics, 200_000);
    let grown = LIVE.load(Ordering::Relaxed) - before;
    assert!(
        grown < 1 << 20,
        "{grown} bytes more after 400,000 samples nobody scraped"
    );
    // And nothing recorded is lost: a scrape counts every sample.
    let text = metrics.render();
    let count = text
        .lines()
        .find(|l| l.starts_with("edgescore_http_request_duration_seconds_count"))
        .expect("the request histogram's count");
    assert!(count.ends_with(" 210000"), "{count}");
}
