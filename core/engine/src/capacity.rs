//! How much state an engine takes on. A host that bounds the engine's memory (the component's
//! linear memory) gives it a budget of state bytes; the engine estimates what it holds from its
//! users and events and admits events while they fit:
//!
//! - an event of a user the engine does not hold is rejected as `capacity` once the estimate is
//!   within a tenth of the budget, so that the users it holds keep room;
//! - an event of a user it holds is rejected as `capacity` only when even that does not fit.
//!
//! The estimate is deliberately high: [`USER_BYTES`] and [`EVENT_BYTES`] are what a user and an
//! event take in the component's linear memory, allocator slack and growth included, measured
//! there (`tests/tests/capacity.rs` holds them above the measurement).

use edgescore_types::{Rejection, RejectionReason};

/// Linear memory one user costs, with its first event (slot, index entry, id, the event inline):
/// 153 bytes measured at 100,000 users, 109 at 200,000.
pub const USER_BYTES: u64 = 180;
/// Linear memory each further event of a user costs: 29.3 bytes measured at 2,000 users with 150
/// events, 17.4 at 10,000 (a window of up to 1,024 events is one array of 12 bytes per event).
pub const EVENT_BYTES: u64 = 36;

/// What the engine holds, as the admission counts it.
pub fn estimate(users: usize, events: usize) -> u64 {
    users as u64 * USER_BYTES + events.saturating_sub(users) as u64 * EVENT_BYTES
}

/// Events admitted one at a time against a budget, starting from the state's estimate.
pub struct Admission {
    budget: u64,
    estimate: u64,
}

/// Why an event was not admitted.
pub enum Refusal {
    /// A user the engine does not hold, with the budget nearly used.
    NewUser,
    /// A user it holds, with the budget used.
    Full,
}

impl Admission {
    pub fn new(budget: u64, estimate: u64) -> Admission {
        Admission { budget, estimate }
    }

    /// Admits one event of a user the engine holds (`held`) or not, counting its cost.
    pub fn admit(&mut self, held: bool) -> Result<(), Refusal> {
        let (cost, limit, refusal) = if held {
            (EVENT_BYTES, self.budget, Refusal::Full)
        } else {
            (USER_BYTES, self.budget - self.budget / 10, Refusal::NewUser)
        };
        if self.estimate + cost > limit {
            return Err(refusal);
        }
        self.estimate += cost;
        Ok(())
    }
}

impl Refusal {
    /// The rejection of the event at `index`.
    pub fn rejection(&self, index: u32) -> Rejection {
        let message = match self {
            Refusal::NewUser => {
                "user_id: this shard holds as many users as its memory allows; the events of \
                 users it holds are still accepted, new users again once windows expire"
            }
            Refusal::Full => {
                "capacity: this shard's memory is full; the event is not kept (retry once \
                 windows expire)"
            }
        };
        Rejection {
            index,
            reason: RejectionReason::Capacity,
            message: message.into(),
        }
    }
}

/// How full a budget is, in thousandths (0 without a budget).
pub fn fill_permille(budget: Option<u64>, estimate: u64) -> u32 {
    match budget {
        Some(b) if b > 0 => (estimate.saturating_mul(1000) / b).min(u64::from(u32::MAX)) as u32,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_users_stop_at_nine_tenths_and_held_ones_at_the_budget() {
        let budget = 10 * USER_BYTES;
        let mut admission = Admission::new(budget, 0);
        let new_users = (0..20).filter(|_| admission.admit(false).is_ok()).count();
        assert_eq!(new_users, 9, "nine users fit in nine tenths");
        let held = (0..100).filter(|_| admission.admit(true).is_ok()).count();
        assert_eq!(
            held as u64,
            USER_BYTES / EVENT_BYTES,
            "the last tenth goes to held users"
        );
        assert!(matches!(admission.admit(true), Err(Refusal::Full)));
        assert!(matches!(admission.admit(false), Err(Refusal::NewUser)));
        assert_eq!(fill_permille(Some(budget), budget), 1000);
        assert_eq!(fill_permille(None, budget), 0);
    }
}
