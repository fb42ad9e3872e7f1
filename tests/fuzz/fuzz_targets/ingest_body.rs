//! `POST /ingest` bodies through the one ingest pipeline (parse, then judge against the rules):
//! no panic, and every event of the request ends up accepted or rejected, exactly once, with
//! the accepted ones passing the rules and the watermark never passing the clock.
#![no_main]

use edgescore_contract::ingest::Ingest;
use edgescore_types::{EngineConfig, Rules};
use libfuzzer_sys::fuzz_target;

const NOW: f64 = 1_700_000_000.0;
const MAX_EVENTS: usize = 64;

fuzz_target!(|body: &[u8]| {
    let rules = Rules {
        config: EngineConfig::default(),
        width: 3,
    };
    let watermark = Some(NOW - 30.0);
    let Ok((ingest, judged)) = Ingest::start(body, MAX_EVENTS, &rules, watermark, NOW) else {
        return;
    };
    let mut positions: Vec<u32> = judged.events.iter().map(|a| a.position).collect();
    assert!(positions.is_sorted(), "accepted events in request order");
    positions.extend(ingest.rejections().iter().map(|r| r.index));
    positions.sort_unstable();
    let n = positions.len();
    assert!(n <= MAX_EVENTS);
    assert!(
        positions.iter().copied().eq(0..n as u32),
        "each position once: {positions:?}"
    );
    for a in &judged.events {
        let e = &a.event;
        assert!(rules.check(e, NOW, watermark).is_ok(), "{e:?}");
        assert!(e.features.iter().all(|f| f.is_finite()));
    }
    if let Some(w) = judged.watermark {
        assert!(w <= NOW, "the watermark {w} passed the clock");
    }
});
