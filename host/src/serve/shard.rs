//! A shard: one thread owning one engine instance of the component and the windows of the users
//! that hash to it. Requests reach it through a bounded queue; it drains whatever is waiting and
//! scores all queued ingests in one component call (batching across concurrent requests without
//! waiting for more), then answers each request with its part of the report.
//!
//! Nothing accepted is lost when the guest fails: the shard keeps a log of what it recorded since
//! its last checkpoint (engine snapshot); after a trap or deadline it rebuilds the instance from
//! the checkpoint and replays the log, and only the requests in the failed call get an error.
//!
//! A hot reload reaches the shard as two commands: `Prepare` loads the new model into the instance
//! (tract's load and optimization, while the old model keeps serving), `Swap` switches to it in
//! queue order — every ingest queued before it is scored by the old model, every one after by the
//! new — and costs no load. The switch is logged, so a rebuild replays it in the same place.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use edgescore_core::{EngineStats, Event, Rejection, UserMedian};
use tokio::sync::{mpsc, oneshot};

use super::stats::Counters;
use super::watermark::Watermark;
use crate::guest::{CallError, GuestEvent, LoadedModel, ScoringEngine, guest_event};

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

/// A shard's answer to one ingest: indices are positions in the events it was sent.
#[derive(Debug)]
pub struct ShardReport {
    pub accepted: u32,
    pub rejections: Vec<Rejection>,
    /// The largest accepted timestamp, for the request to raise the service watermark with once
    /// all of it is recorded (not before: another shard must not judge this request's earlier
    /// events against its later ones).
    pub max_timestamp: Option<f64>,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("shard {shard}: {error}")]
pub struct ShardError {
    pub shard: usize,
    pub error: CallError,
}

type Reply<T> = oneshot::Sender<Result<T, ShardError>>;

pub enum Command {
    Ingest {
        events: Vec<Event>,
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
    /// False while the shard cannot score (its rebuild failed); it retries on the next command.
    unhealthy: AtomicBool,
    restarts: AtomicU64,
    checkpoints: AtomicU64,
}

impl Shard {
    /// `version`: the label of the engine's model, under which its events are counted.
    pub fn spawn(
        index: usize,
        engine: ScoringEngine,
        version: String,
        watermark: Arc<Watermark>,
        counters: Arc<Counters>,
        config: ShardConfig,
    ) -> std::io::Result<Shard> {
        let (queue, rx) = mpsc::channel(config.queue_depth.max(1));
        let status = Arc::new(ShardStatus::default());
        let worker = Worker {
            index,
            engine,
            rx,
            watermark,
            counters,
            config,
            status: status.clone(),
            seen_watermark: None,
            log: Vec::new(),
            log_events: 0,
            state_events: 0,
            last_checkpoint: Instant::now(),
            needs_rebuild: false,
            prepared: None,
            checkpoint_version: version.clone(),
            version,
        };
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

    pub fn checkpoints(&self) -> u64 {
        self.status.checkpoints.load(Ordering::Relaxed)
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

/// What the shard recorded since its last checkpoint, to replay after a rebuild.
enum LogEntry {
    Advance(f64),
    Ingest { events: Vec<GuestEvent>, now: f64 },
    Swap { onnx: Arc<[u8]>, version: String },
}

struct Worker {
    index: usize,
    engine: ScoringEngine,
    rx: mpsc::Receiver<Command>,
    watermark: Arc<Watermark>,
    /// Accepted events and the shard's own rejections are counted here, when recorded, so that
    /// `/stats` is exact even for requests whose client went away.
    counters: Arc<Counters>,
    config: ShardConfig,
    status: Arc<ShardStatus>,
    /// The service watermark this engine was last advanced to.
    seen_watermark: Option<f64>,
    log: Vec<LogEntry>,
    log_events: usize,
    /// Events in the windows at the last checkpoint: what a checkpoint costs to take.
    state_events: u64,
    last_checkpoint: Instant,
    needs_rebuild: bool,
    /// A model loaded by `Prepare`, waiting for its `Swap`.
    prepared: Option<LoadedModel>,
    /// The label of the model scoring now, and of the one at the last checkpoint.
    version: String,
    checkpoint_version: String,
}

/// Checkpoints copy the whole state out of the guest, so they wait until the log is worth it.
const MIN_CHECKPOINT_EVENTS: usize = 1 << 16;

impl Worker {
    fn run(mut self) {
        while let Some(first) = self.rx.blocking_recv() {
            let mut queued = first.events();
            let mut commands = vec![first];
            while queued < self.config.max_merge_events {
                match self.rx.try_recv() {
                    Ok(command) => {
                        queued += command.events();
                        commands.push(command);
                    }
                    Err(_) => break,
                }
            }
            let stop = commands.iter().any(|c| matches!(c, Command::Stop));
            self.handle(commands);
            if stop {
                break;
            }
            if self.checkpoint_due() {
                self.checkpoint();
            }
        }
    }

    /// Handles drained commands in order, merging consecutive ingests into one call.
    fn handle(&mut self, commands: Vec<Command>) {
        let mut group = Vec::new();
        for command in commands {
            match command {
                Command::Ingest { events, now, reply } => group.push((events, now, reply)),
                other => {
                    self.ingest(std::mem::take(&mut group));
                    match self.ready() {
                        Ok(()) => self.answer(other),
                        Err(e) => fail(other, &e),
                    }
                }
            }
        }
        self.ingest(group);
    }

    /// Rebuilds the instance if the last call failed, and brings it to the service watermark.
    fn ready(&mut self) -> Result<(), ShardError> {
        if self.needs_rebuild {
            self.rebuild()?;
        }
        let Some(w) = self.watermark.get() else {
            return Ok(());
        };
        if self.seen_watermark.is_some_and(|seen| seen >= w) {
            return Ok(());
        }
        self.guarded(|engine| engine.advance(w))?;
        self.seen_watermark = Some(w);
        self.log.push(LogEntry::Advance(w));
        Ok(())
    }

    fn ingest(&mut self, group: Vec<(Vec<Event>, f64, Reply<ShardReport>)>) {
        if group.is_empty() {
            return;
        }
        if let Err(e) = self.ready() {
            for (_, _, reply) in group {
                let _ = reply.send(Err(e.clone()));
            }
            return;
        }
        let total: usize = group.iter().map(|(events, ..)| events.len()).sum();
        let mut merged: Vec<GuestEvent> = Vec::with_capacity(total);
        let mut parts = Vec::with_capacity(group.len());
        let mut now = f64::MIN;
        for (events, job_now, reply) in group {
            parts.push((merged.len(), events.len(), reply));
            merged.extend(events.into_iter().map(guest_event));
            now = now.max(job_now);
        }
        let len = merged.len();
        let started = Instant::now();
        let report = self.guarded(|engine| {
            let report = engine.ingest_guest_events(&merged, now)?;
            // The guest is sandboxed, not trusted: an answer that does not fit the batch is a
            // guest failure (rebuild), never an out-of-bounds index in the host.
            let fits = report.rejections.iter().all(|r| (r.index as usize) < len)
                && report.accepted as usize + report.rejections.len() == len;
            if fits {
                Ok(report)
            } else {
                Err(CallError::Trap(
                    "the component's ingest report does not match the batch".into(),
                ))
            }
        });
        self.counters
            .metrics
            .record_component_call("ingest", started.elapsed());
        let report = match report {
            Ok(report) => report,
            Err(e) => {
                for (_, _, reply) in parts {
                    let _ = reply.send(Err(e.clone()));
                }
                return;
            }
        };

        let mut rejected = vec![false; merged.len()];
        let mut by_part: Vec<Vec<Rejection>> = parts.iter().map(|_| Vec::new()).collect();
        for mut r in report.rejections {
            rejected[r.index as usize] = true;
            self.counters.reject(r.reason);
            // Parts are in order: the last one starting at or before the index holds it.
            let part = parts.partition_point(|(start, ..)| *start as u32 <= r.index) - 1;
            r.index -= parts[part].0 as u32;
            by_part[part].push(r);
        }
        let accepted: Vec<GuestEvent> = merged
            .into_iter()
            .zip(rejected)
            .filter_map(|(e, rejected)| (!rejected).then_some(e))
            .collect();
        Counters::count(&self.counters.events_processed, accepted.len() as u64);
        self.counters.scored(&self.version, accepted.len() as u64);
        let rows: Vec<f32> = accepted
            .iter()
            .flat_map(|e| e.features.iter().copied())
            .collect();
        self.counters.observe_features(&rows);
        self.log_events += accepted.len();
        self.log.push(LogEntry::Ingest {
            events: accepted,
            now,
        });
        let log = match self.log.last() {
            Some(LogEntry::Ingest { events, .. }) => &events[..],
            _ => &[],
        };
        let mut accepted = log.iter();
        for ((_, len, reply), rejections) in parts.into_iter().zip(by_part) {
            let n = len - rejections.len();
            let max_timestamp = accepted
                .by_ref()
                .take(n)
                .map(|e| e.timestamp)
                .reduce(f64::max);
            let _ = reply.send(Ok(ShardReport {
                accepted: n as u32,
                rejections,
                max_timestamp,
            }));
        }
    }

    fn answer(&mut self, command: Command) {
        match command {
            Command::Median { user_id, reply } => {
                let _ = reply.send(self.guarded(|engine| engine.median(&user_id)));
            }
            Command::Stats { reply } => {
                let _ = reply.send(self.guarded(|engine| engine.stats()));
            }
            Command::Prepare { onnx, reply } => {
                if let Some(old) = self.prepared.take() {
                    self.engine.discard_model(old);
                }
                let loaded = self.guarded(|engine| engine.load_model(onnx));
                let _ = reply.send(loaded.map(|model| self.prepared = Some(model)));
            }
            Command::Swap { version, reply } => {
                let _ = reply.send(self.swap(version));
            }
            Command::Ingest { .. } | Command::Stop => {}
        }
    }

    /// Switches to the prepared model (loading it again only if the instance was rebuilt since).
    fn swap(&mut self, version: String) -> Result<(), ShardError> {
        let Some(model) = self.prepared.take() else {
            return Err(ShardError {
                shard: self.index,
                error: CallError::Trap("swap: no model was prepared".into()),
            });
        };
        self.guarded(|engine| engine.replace_model(model))?;
        tracing::debug!(shard = self.index, version, "model swapped in");
        self.log.push(LogEntry::Swap {
            onnx: self.engine.model().clone(),
            version: version.clone(),
        });
        self.version = version;
        Ok(())
    }

    /// One call on the engine; a guest failure marks the instance for a rebuild.
    fn guarded<R>(
        &mut self,
        f: impl FnOnce(&mut ScoringEngine) -> Result<R, CallError>,
    ) -> Result<R, ShardError> {
        let result = f(&mut self.engine);
        if let Err(e) = &result
            && e.is_guest_failure()
        {
            tracing::error!(shard = self.index, error = %e, "scoring component failed; rebuilding the shard from its checkpoint");
            self.needs_rebuild = true;
        }
        result.map_err(|error| ShardError {
            shard: self.index,
            error,
        })
    }

    /// A new instance from the last checkpoint, then the log replayed on it.
    fn rebuild(&mut self) -> Result<(), ShardError> {
        let started = Instant::now();
        self.version = self.checkpoint_version.clone();
        let result = self.engine.rebuild().and_then(|()| {
            for entry in &self.log {
                match entry {
                    LogEntry::Advance(w) => self.engine.advance(*w)?,
                    LogEntry::Ingest { events, now } => {
                        self.engine.ingest_guest_events(events, *now)?;
                    }
                    LogEntry::Swap { onnx, version } => {
                        let model = self.engine.load_model(onnx.clone())?;
                        self.engine.replace_model(model)?;
                        self.version = version.clone();
                    }
                }
            }
            Ok(())
        });
        self.status.restarts.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(()) => {
                self.needs_rebuild = false;
                self.status.unhealthy.store(false, Ordering::Relaxed);
                tracing::warn!(
                    shard = self.index,
                    replayed_events = self.log_events,
                    elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                    "shard rebuilt from its checkpoint and log"
                );
                Ok(())
            }
            Err(error) => {
                self.status.unhealthy.store(true, Ordering::Relaxed);
                tracing::error!(shard = self.index, error = %error, "shard rebuild failed; retrying on the next request");
                Err(ShardError {
                    shard: self.index,
                    error,
                })
            }
        }
    }

    /// Due when the log is at least an eighth of the state and `checkpoint_interval` old, or half
    /// the state: the copy then costs a bounded amount per event ingested, whatever the state's
    /// size, and the log (host memory, replay time) stays bounded too.
    fn checkpoint_due(&self) -> bool {
        let log = self.log_events as u64;
        if self.needs_rebuild || self.log.is_empty() {
            return false;
        }
        let aged = self.last_checkpoint.elapsed() >= self.config.checkpoint_interval
            && log * 8 >= self.state_events;
        aged || log >= (self.state_events / 2).max(MIN_CHECKPOINT_EVENTS as u64)
    }

    fn checkpoint(&mut self) {
        let started = Instant::now();
        let result = self
            .guarded(|engine| engine.checkpoint())
            .and_then(|()| self.guarded(|engine| engine.stats()));
        match result {
            Ok(stats) => {
                self.log.clear();
                self.log_events = 0;
                self.checkpoint_version = self.version.clone();
                self.state_events = stats.events_in_windows;
                self.last_checkpoint = Instant::now();
                self.status.checkpoints.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    shard = self.index,
                    events = stats.events_in_windows,
                    elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                    "checkpoint"
                );
            }
            Err(e) => tracing::error!(error = %e, "checkpoint failed; the log is kept"),
        }
    }
}

fn fail(command: Command, e: &ShardError) {
    match command {
        Command::Ingest { reply, .. } => drop(reply.send(Err(e.clone()))),
        Command::Median { reply, .. } => drop(reply.send(Err(e.clone()))),
        Command::Stats { reply } => drop(reply.send(Err(e.clone()))),
        Command::Prepare { reply, .. } | Command::Swap { reply, .. } => {
            drop(reply.send(Err(e.clone())))
        }
        Command::Stop => {}
    }
}
