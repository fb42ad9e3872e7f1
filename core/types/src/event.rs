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
    /// The model scored the event as NaN or infinite: it is not kept (a non-finite score has no
    /// place in a median). The batch's other events are unaffected.
    NonFiniteScore,
    /// The shard holds as much state as its memory allows: events of users it does not hold are
    /// refused first, then, when even held users' events do not fit, those too.
    Capacity,
}

impl RejectionReason {
    pub const ALL: [RejectionReason; 9] = [
        RejectionReason::InvalidUserId,
        RejectionReason::InvalidTimestamp,
        RejectionReason::WrongWidth,
        RejectionReason::NonFiniteFeature,
        RejectionReason::Future,
        RejectionReason::Late,
        RejectionReason::MalformedEvent,
        RejectionReason::NonFiniteScore,
        RejectionReason::Capacity,
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
            RejectionReason::NonFiniteScore => "non_finite_score",
            RejectionReason::Capacity => "capacity",
        }
    }

    /// Position in [`RejectionReason::ALL`], for counters kept in an array.
    pub fn index(self) -> usize {
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

impl Rejection {
    /// An event its model scored as NaN or infinite, at position `index`.
    pub fn non_finite_score(index: u32, score: f32) -> Rejection {
        Rejection {
            index,
            reason: RejectionReason::NonFiniteScore,
            message: format!("score: the model scored this event as {score}, which is not finite"),
        }
    }
}

/// The outcome of ingesting one batch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IngestReport {
    pub accepted: u32,
    pub rejections: Vec<Rejection>,
}
