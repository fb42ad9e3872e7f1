//! Memory per windowed event, measured with a counting allocator: the seed's workload shape
//! (10,000 users, ~150 events each in the window, timestamps slightly out of order).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicIsize, Ordering};

use edgescore_engine::window::Windows;

mod workload;

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

/// The count is process-wide: one measurement at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Issue 15's budget: 100 bytes per user plus 12 per windowed event.
fn budget(users: usize, events: usize) -> f64 {
    100.0 * users as f64 + 12.0 * events as f64
}

#[test]
fn windowed_events_fit_the_budget_of_12_bytes_each_and_100_per_user() {
    let _alone = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let users: Vec<String> = (0..10_000).map(|u| format!("user-{u}")).collect();
    let before = LIVE.load(Ordering::Relaxed);
    let mut windows = Windows::new(300.0);
    // 5,000 events/s for 600 s: the window is full and has turned over once.
    workload::feed(&mut windows, &users, 3_000_000);
    let bytes = (LIVE.load(Ordering::Relaxed) - before) as f64;
    let events = windows.events() as f64;
    let per_event = bytes / events;
    let budget = budget(windows.users(), windows.events());
    println!(
        "{} events in {} windows: {:.2} bytes per event (all allocations, incl. user ids and indexes); self-reported {:.2}; {bytes} bytes, {:.3} of the budget",
        events,
        windows.users(),
        per_event,
        windows.heap_bytes() as f64 / events,
        bytes / budget
    );
    assert!((1_400_000.0..1_600_000.0).contains(&events), "{events}");
    assert!(
        bytes <= budget,
        "{bytes} bytes, over the budget of {budget}"
    );
    drop(users);
}

#[test]
fn a_user_with_one_event_takes_at_most_112_bytes() {
    // Issue 15's budget: 100 bytes per user plus 12 per windowed event. 200,000 users with one
    // event each (the shape of a wide, sparse audience), ids like the seed's.
    let _alone = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let users: Vec<String> = (0..200_000).map(|u| format!("user-{u}")).collect();
    let before = LIVE.load(Ordering::Relaxed);
    let mut windows = Windows::new(300.0);
    for (i, user) in users.iter().enumerate() {
        let t = 1_700_000_000.0 + i as f64 / 1000.0;
        windows.advance(t);
        windows.insert(user, t, (i % 1000) as f32 / 1000.0);
    }
    windows.expire();
    let per_user = (LIVE.load(Ordering::Relaxed) - before) as f64 / windows.users() as f64;
    println!(
        "{} users with one event: {per_user:.1} bytes per user (all allocations)",
        windows.users()
    );
    assert_eq!(windows.users(), 200_000);
    assert_eq!(windows.events(), 200_000);
    assert!(per_user <= 112.0, "{per_user:.1} bytes per user");
    drop(windows);
}
