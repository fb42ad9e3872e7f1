//! Events as the engine takes them, and why one can be turned away.

/// The longest user id the service keeps, in bytes of UTF-8 (the spec's limit).
pub const MAX_USER_ID_BYTES: usize = 256;

/// One scored event: whose it is, when it happened (Unix seconds) and the model's input row.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub user_id: String,
    pub timestamp: f64,
    pub features: Vec<f32>,
}

/// Why one event of a batch was not accepted. The others of the batch are unaffected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectionReason {
    /// The user id is empty or longer than [`MAX_USER_ID_BYTES`].
    InvalidUserId,
    /// The timestamp is not a finite number.
    InvalidTimestamp,
    /// The features are not exactly the model's input width.
    WrongWidth,
    /// A feature is NaN or infinite.
    NonFiniteFeature,
    /// The timestamp is further ahead of the host's clock than the allowed skew.
    Future,
    /// The timestamp is at or before the window's start (watermark − window).
    Late,
    /// Not an event at all: a JSON value that is not an object (decided by the host's parser).
    MalformedEvent,
}

impl RejectionReason {
    pub const ALL: [RejectionReason; 7] = [
        RejectionReason::InvalidUserId,
        RejectionReason::InvalidTimestamp,
        RejectionReason::WrongWidth,
        RejectionReason::NonFiniteFeature,
        RejectionReason::Future,
        RejectionReason::Late,
        RejectionReason::MalformedEvent,
    ];

    /// The stable snake_case name used in stats and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionReason::InvalidUserId => "invalid_user_id",
            RejectionReason::InvalidTimestamp => "invalid_timestamp",
            RejectionReason::WrongWidth => "wrong_width",
            RejectionReason::NonFiniteFeature => "non_finite_feature",
            RejectionReason::Future => "future",
            RejectionReason::Late => "late",
            RejectionReason::MalformedEvent => "malformed_event",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// A rejected event: its position in the batch, the reason and a sentence naming the field.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub index: u32,
    pub reason: RejectionReason,
    pub message: String,
}

/// The outcome of ingesting one batch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IngestReport {
    pub accepted: u32,
    pub rejections: Vec<Rejection>,
}
