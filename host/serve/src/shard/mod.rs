//! A shard: one thread owning one engine instance of the component and the windows of the users
//! that hash to it. Requests reach it through a bounded queue; it drains whatever is waiting and
//! scores all queued ingests in one component call (batching across concurrent requests without
//! waiting for more), then answers each request with its part of the report.
//!
//! - [`worker`]: the thread's loop — drain, merge, call, answer;
//! - [`merge`]: many requests' events as one component call, and the answer split back, every
//!   rejection at its position in its request;
//! - [`recovery`]: nothing accepted is lost when the guest fails — what was recorded since the
//!   last checkpoint (engine snapshot), replayed on a rebuilt instance from the shard's durable
//!   log (or, with `--ephemeral`, from memory);
//! - [`replay`]: the log replayed into an engine, the one path of a start and of a rebuild;
//! - [`startup`]: what a shard starts from: an empty engine or its files.
//!
//! A hot reload reaches the shard as two commands: `Prepare` loads the new model into the instance
//! (tract's load and optimization, while the old model keeps serving), `Swap` switches to it in
//! queue order — every ingest queued before it is scored by the old model, every one after by the
//! new — and costs no load. The switch is logged, so a rebuild replays it in the same place.

mod merge;
mod recovery;
mod replay;
mod startup;
mod worker;

pub use replay::Replayed;
pub use startup::Started;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use edgescore_contract::ApiError;
use edgescore_contract::ingest::Accepted;
use edgescore_runtime::CallError;
use edgescore_types::{EngineStats, Rejection, UserMedian};
use tokio::sync::{mpsc, oneshot};

use crate::telemetry::Counters;
use crate::watermark::Watermark;

/// How a shard batches and checkpoints.
#[derive(Debug, Clone, Copy)]
pub struct ShardConfig {
    /// Requests waiting in one shard's queue before new ones are turned away (503).
    pub queue_depth: usize,
    /// Events scored in one component call, at most (queued ingests are merged up to this).
    pub max_merge_events: usize,
    /// How often the shard's state is checkpointed when events keep coming.
    pub checkpoint_interval: Duration,
}

/// A shard's answer to one ingest: rejections are at their positions in the request.
#[derive(Debug)]
pub struct ShardReport {
    pub accepted: u32,
    pub rejections: Vec<Rejection>,
    /// The watermark this part's recorded events raise the service's to (never past the clock
    /// the request was judged at), for the request to raise it with once all of it is recorded
    /// (not before: another shard must not judge this request's earlier events against its
    /// later ones).
    pub watermark: Option<f64>,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("shard {shard}: {error}")]
pub struct ShardError {
    pub shard: usize,
    pub error: ShardFault,
}

/// What went wrong in a shard.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ShardFault {
    #[error(transparent)]
    Call(#[from] CallError),
    /// Its log could not be written or synced: nothing of the call was acknowledged.
    #[error(
        "writing its log failed ({0}); nothing of this request was acknowledged, retry after 1 s"
    )]
    Storage(String),
}

impl ShardError {
    pub fn new(shard: usize, error: impl Into<ShardFault>) -> ShardError {
        ShardError {
            shard,
            error: error.into(),
        }
    }

    /// The answer to a request the shard could not serve: 503 with `Retry-After` when its
    /// component could not be (re)started or its log not written — nothing was done, and a
    /// later request may succeed — else 500.
    pub fn to_api_error(&self) -> ApiError {
        match self.error {
            ShardFault::Call(CallError::Instantiate(_)) | ShardFault::Storage(_) => {
                ApiError::unavailable(self.to_string(), 1)
            }
            _ => ApiError::internal(self.to_string()),
        }
    }
}

pub type Reply<T> = oneshot::Sender<Result<T, ShardError>>;

pub enum Command {
    Ingest {
        events: Vec<Accepted>,
        now: f64,
        reply: Reply<ShardReport>,
    },
    Median {
        user_id: String,
        reply: Reply<UserMedian>,
    },
    Stats {
        reply: Reply<EngineStats>,
    },
    /// Loads a model to swap in later (replacing one prepared before and not swapped in).
    Prepare {
        onnx: Arc<[u8]>,
        reply: Reply<()>,
    },
    /// Scores with the prepared model from now on; `version` labels its events in `/stats`.
    Swap {
        version: String,
        reply: Reply<()>,
    },
    Stop,
}

impl Command {
    fn events(&self) -> usize {
        match self {
            Command::Ingest { events, .. } => events.len(),
            _ => 0,
        }
    }

    /// Answers the command with `e` instead of doing it.
    fn fail(self, e: &ShardError) {
        let _ = match self {
            Command::Ingest { reply, .. } => reply.send(Err(e.clone())).map_err(drop),
            Command::Median { reply, .. } => reply.send(Err(e.clone())).map_err(drop),
            Command::Stats { reply } => reply.send(Err(e.clone())).map_err(drop),
            Command::Prepare { reply, .. } | Command::Swap { reply, .. } => {
                reply.send(Err(e.clone())).map_err(drop)
            }
            Command::Stop => Ok(()),
        };
    }
}

/// The handle the service keeps: the queue, and what the shard reports about itself.
pub struct Shard {
    pub index: usize,
    pub queue: mpsc::Sender<Command>,
    status: Arc<ShardStatus>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct ShardStatus {
    /// True while the shard cannot score (a guest failure, until its rebuild succeeds).
    unhealthy: AtomicBool,
    restarts: AtomicU64,
    /// Panics of the shard's thread caught (each followed by a rebuild).
    panics: AtomicU64,
    checkpoints: AtomicU64,
    /// How long the last checkpoint held the shard (copying its state out of the guest), µs.
    checkpoint_micros: AtomicU64,
    /// How full the engine's capacity is, in thousandths, after its last call.
    fill_permille: AtomicU32,
    /// The guest's linear memory, in bytes.
    memory_bytes: AtomicU64,
    /// Until when the shard is full (no room even for the users it holds): requests for it
    /// are answered 503 until then, without queueing anything.
    full_until: Mutex<Option<Instant>>,
}

impl Shard {
    /// `started`: the engine and what it was restored from.
    pub fn spawn(
        index: usize,
        started: Started,
        watermark: Arc<Watermark>,
        counters: Arc<Counters>,
        config: ShardConfig,
    ) -> std::io::Result<Shard> {
        let (queue, rx) = mpsc::channel(config.queue_depth.max(1));
        let status = Arc::new(ShardStatus::default());
        let shared = worker::Shared {
            watermark,
            counters,
            config,
            status: status.clone(),
        };
        let worker = worker::Worker::new(index, started, rx, shared);
        let thread = std::thread::Builder::new()
            .name(format!("shard-{index}"))
            .spawn(move || worker.run())?;
        Ok(Shard {
            index,
            queue,
            status,
            thread: std::sync::Mutex::new(Some(thread)),
        })
    }

    pub fn healthy(&self) -> bool {
        !self.status.unhealthy.load(Ordering::Relaxed)
    }

    /// Times the shard's instance was rebuilt after a guest failure.
    pub fn restarts(&self) -> u64 {
        self.status.restarts.load(Ordering::Relaxed)
    }

    /// Requests waiting in the queue.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// How full the shard's capacity is, in thousandths.
    pub fn fill_permille(&self) -> u32 {
        self.status.fill_permille.load(Ordering::Relaxed)
    }

    /// The shard's guest memory, in bytes.
    pub fn memory_bytes(&self) -> u64 {
        self.status.memory_bytes.load(Ordering::Relaxed)
    }

    /// Whether the shard has no room even for the users it holds (for a second after it said
    /// so; then a request may find that windows have expired).
    pub fn full(&self) -> bool {
        let until = *self
            .status
            .full_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        until.is_some_and(|until| Instant::now() < until)
    }

    /// Panics of the shard's thread that were caught and recovered from.
    pub fn panics(&self) -> u64 {
        self.status.panics.load(Ordering::Relaxed)
    }

    pub fn checkpoints(&self) -> u64 {
        self.status.checkpoints.load(Ordering::Relaxed)
    }

    /// How long the last checkpoint held the shard's thread.
    pub fn last_checkpoint(&self) -> Duration {
        Duration::from_micros(self.status.checkpoint_micros.load(Ordering::Relaxed))
    }

    /// Lets the shard finish what is queued, then ends its thread.
    pub async fn stop(&self) {
        let _ = self.queue.send(Command::Stop).await;
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}
