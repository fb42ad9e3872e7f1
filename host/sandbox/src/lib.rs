//! The WASI context the scoring component runs in, in every host of this project (the runtime's
//! instances, and the instance `edgescore-preinit` snapshots at build time): no preopened
//! folders, sockets, environment, arguments or stdio; randomness; and stopped clocks, so that the
//! guest's only time is the `now` the host passes in.

use std::time::Duration;

use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx};

/// A WASI context that grants the scoring component nothing but randomness.
pub fn wasi() -> WasiCtx {
    WasiCtx::builder()
        .wall_clock(StoppedClock)
        .monotonic_clock(StoppedClock)
        .build()
}

/// A clock that always reads zero: the guest gets no ambient time.
struct StoppedClock;

impl HostWallClock for StoppedClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for StoppedClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}
