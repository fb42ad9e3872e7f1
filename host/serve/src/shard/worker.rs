//! The shard's thread: drains its queue, merges consecutive ingests into one component call,
//! answers the other commands in queue order, and checkpoints when it is due.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use edgescore_runtime::{CallError, LoadedModel, ScoringEngine};
use tokio::sync::mpsc;

use super::merge::{Job, Merged};
use super::recovery::Recovery;
use super::startup::Started;
use super::{Command, ShardConfig, ShardError, ShardFault, ShardStatus};
use crate::storage::committer::Done;
use crate::storage::record::rejection_counts;
use crate::storage::shard::ShardDurable;
use crate::telemetry::Counters;
use crate::watermark::Watermark;

/// What a worker shares with the service.
pub struct Shared {
    pub watermark: Arc<Watermark>,
    /// Accepted events and the shard's own rejections are counted here, when recorded, so that
    /// `/stats` is exact even for requests whose client went away.
    pub counters: Arc<Counters>,
    pub config: ShardConfig,
    pub(super) status: Arc<ShardStatus>,
}

pub struct Worker {
    index: usize,
    engine: ScoringEngine,
    rx: mpsc::Receiver<Command>,
    shared: Shared,
    /// The service watermark this engine was last advanced to.
    seen_watermark: Option<f64>,
    recovery: Recovery,
    /// A model loaded by `Prepare`, waiting for its `Swap`.
    prepared: Option<LoadedModel>,
    /// The label of the model scoring now.
    version: String,
    /// When a failed rebuild may be tried again.
    rebuild_backoff: Backoff,
    /// The shard's files (none with `--ephemeral`).
    durable: Option<ShardDurable>,
}

/// A shard whose capacity is used up answers 503 for this long before it is asked again.
const FULL_FOR: Duration = Duration::from_secs(1);

/// Pauses between rebuild attempts that fail: 100 ms, doubling, at most 5 s (a rebuild that
/// cannot succeed must not take the shard's whole time).
#[derive(Default)]
struct Backoff {
    failures: u32,
    not_before: Option<Instant>,
}

impl Backoff {
    /// Counts a failure; returns the pause before the next attempt.
    fn failed(&mut self) -> Duration {
        let wait = Duration::from_millis(100 << self.failures.min(6)).min(Duration::from_secs(5));
        self.failures += 1;
        self.not_before = Some(Instant::now() + wait);
        wait
    }

    /// The time left before the next attempt, if any.
    fn remaining(&self) -> Option<Duration> {
        let left = self.not_before?.checked_duration_since(Instant::now())?;
        (!left.is_zero()).then_some(left)
    }
}

impl Worker {
    pub fn new(
        index: usize,
        started: Started,
        rx: mpsc::Receiver<Command>,
        shared: Shared,
    ) -> Worker {
        Worker {
            index,
            engine: started.engine,
            rx,
            shared,
            seen_watermark: None,
            recovery: started.recovery,
            prepared: None,
            version: started.version,
            rebuild_backoff: Backoff::default(),
            durable: started.durable,
        }
    }

    /// A failed write of the log: the engine holds what the log does not, so it is rebuilt from
    /// its checkpoint and the in-memory log (which has nothing of the failed call either).
    fn storage_failed(&mut self, e: std::io::Error) -> ShardError {
        tracing::error!(shard = self.index, error = %e, "writing the shard's log failed; nothing of the call is acknowledged");
        self.recovery.needs_rebuild = true;
        ShardError::new(self.index, ShardFault::Storage(e.to_string()))
    }

    pub fn run(mut self) {
        while let Some(first) = self.rx.blocking_recv() {
            let mut queued = first.events();
            let mut commands = vec![first];
            while queued < self.shared.config.max_merge_events {
                match self.rx.try_recv() {
                    Ok(command) => {
                        queued += command.events();
                        commands.push(command);
                    }
                    Err(_) => break,
                }
            }
            let stop = commands.iter().any(|c| matches!(c, Command::Stop));
            // A panic in the host's handling must not leave the shard dead with its users'
            // requests failing: the requests being handled get no answer (500, nothing of them
            // acknowledged), and the instance is rebuilt from its checkpoint and log.
            let handled = std::panic::catch_unwind(AssertUnwindSafe(|| self.handle(commands)));
            if handled.is_err() {
                self.recover_from_panic();
            }
            if stop {
                break;
            }
            if self.checkpoint_due() {
                self.checkpoint();
            }
        }
    }

    fn recover_from_panic(&mut self) {
        self.shared.status.panics.fetch_add(1, Ordering::Relaxed);
        self.shared.status.unhealthy.store(true, Ordering::Relaxed);
        self.recovery.needs_rebuild = true;
        tracing::error!(
            shard = self.index,
            "the shard's thread panicked; rebuilding it from its checkpoint and log"
        );
        // Now rather than on the next request, so that /ready turns healthy again by itself.
        let _ = self.rebuild();
    }

    /// Handles drained commands in order, merging consecutive ingests into one call.
    fn handle(&mut self, commands: Vec<Command>) {
        fail::fail_point!("shard-handle");
        let mut group = Vec::new();
        for command in commands {
            match command {
                Command::Ingest { events, now, reply } => group.push(Job { events, now, reply }),
                other => {
                    self.ingest(std::mem::take(&mut group));
                    match self.ready() {
                        Ok(()) => self.answer(other),
                        Err(e) => other.fail(&e),
                    }
                }
            }
        }
        self.ingest(group);
    }

    /// Rebuilds the instance if the last call failed (or a sync of its log did), and brings it
    /// to the service watermark.
    fn ready(&mut self) -> Result<(), ShardError> {
        if let Some(durable) = &mut self.durable
            && let Some(reason) = durable.take_failed_sync()
        {
            tracing::error!(shard = self.index, error = %reason, "syncing the shard's log failed: nothing it covered is acknowledged; the log is cut back to its last synced record and the shard rebuilt from it");
            self.recovery.needs_rebuild = true;
        }
        if self.recovery.needs_rebuild {
            if let Some(wait) = self.rebuild_backoff.remaining() {
                return Err(ShardError::new(
                    self.index,
                    CallError::Instantiate(format!(
                        "its rebuild failed; the next attempt is in {:.1} s",
                        wait.as_secs_f64()
                    )),
                ));
            }
            self.rebuild()?;
        }
        let Some(w) = self.shared.watermark.get() else {
            return Ok(());
        };
        if self.seen_watermark.is_some_and(|seen| seen >= w) {
            return Ok(());
        }
        self.guarded(|engine| engine.advance(w))?;
        // Best effort: a lost advance changes nothing a restart restores (each shard's events
        // raise its engine's watermark again, and the next request advances it to the service's),
        // and a read must not fail because the disk is full.
        if let Some(durable) = &mut self.durable
            && let Err(e) = durable.advanced(w)
        {
            tracing::warn!(shard = self.index, error = %e, "logging a watermark advance failed");
        }
        self.seen_watermark = Some(w);
        self.recovery.advanced(w);
        // Expiry may have made room.
        self.observe_capacity();
        Ok(())
    }

    /// Scores and records a group of queued ingests in one component call.
    fn ingest(&mut self, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        let merged = Merged::new(jobs);
        if let Err(e) = self.ready() {
            return merged.fail(&e);
        }
        let started = Instant::now();
        let report = self.guarded(|engine| {
            let report = engine.ingest_guest_events(&merged.events, merged.now)?;
            if merged.fits(&report) {
                Ok(report)
            } else {
                Err(CallError::Trap(
                    "the component's ingest report does not match the batch".into(),
                ))
            }
        });
        let counters = &self.shared.counters;
        counters
            .metrics
            .record_component_call("ingest", started.elapsed());
        let report = match report {
            Ok(report) => report,
            Err(e) => return merged.fail(&e),
        };
        let reasons: Vec<_> = report.rejections.iter().map(|r| r.reason).collect();
        let now = merged.now;
        let (recorded, answers) = merged.answer(report);
        let rejected = rejection_counts(reasons.iter().copied());
        // Durable before anyone is told (and before it counts).
        if let Some(durable) = &mut self.durable
            && let Err(e) = durable.ingested(&recorded, now, &rejected, &self.version)
        {
            let e = self.storage_failed(e);
            return answers.fail(&e);
        }
        fail::fail_point!("shard-logged");
        let rows: Vec<f32> = recorded
            .iter()
            .flat_map(|e| e.features.iter().copied())
            .collect();
        let count = recorded.len() as u64;
        // Kept before anyone is told: an acknowledged event is always in what a rebuild replays
        // (the shard's log, or with `--ephemeral` the copy in memory).
        self.recovery.ingested(recorded, now);
        // Counted and answered once durable: a failed sync acknowledges and counts nothing.
        let (counters, version, index) = (counters.clone(), self.version.clone(), self.index);
        self.after_sync(Box::new(move |synced| match synced {
            Ok(()) => {
                for reason in reasons {
                    counters.reject(reason);
                }
                Counters::count(&counters.events_processed, count);
                counters.scored(&version, count);
                counters.observe_features(&rows);
                answers.send();
            }
            Err(reason) => answers.fail(&ShardError::new(index, ShardFault::Storage(reason))),
        }));
        self.observe_capacity();
    }

    /// Runs `done` once everything the shard logged so far is durable (at once without a
    /// committer), or with why it cannot be.
    fn after_sync(&self, done: Done) {
        match &self.durable {
            Some(durable) => durable.after_sync(done),
            None => done(Ok(())),
        }
    }

    /// A read's answer, sent once what it may have seen is durable: it never shows an event
    /// that a failed sync then takes back.
    fn answer_when_durable<T: Send + 'static>(
        &self,
        reply: super::Reply<T>,
        answer: Result<T, ShardError>,
    ) {
        let index = self.index;
        self.after_sync(Box::new(move |synced| {
            let synced =
                synced.map_err(|reason| ShardError::new(index, ShardFault::Storage(reason)));
            let _ = reply.send(synced.and(answer));
        }));
    }

    /// Publishes how full the engine is and how much memory it has grown to.
    fn observe_capacity(&mut self) {
        let Ok(fill) = self.guarded(|engine| engine.fill()) else {
            return;
        };
        let status = &self.shared.status;
        status.fill_permille.store(fill, Ordering::Relaxed);
        status
            .memory_bytes
            .store(self.engine.memory_bytes(), Ordering::Relaxed);
        let full = (fill >= 1000).then(|| Instant::now() + FULL_FOR);
        *status.full_until.lock().unwrap_or_else(|p| p.into_inner()) = full;
    }

    fn answer(&mut self, command: Command) {
        match command {
            Command::Median { user_id, reply } => {
                let median = self.guarded(|engine| engine.median(&user_id));
                self.answer_when_durable(reply, median);
            }
            Command::Stats { reply } => {
                let stats = self.guarded(|engine| engine.stats());
                self.answer_when_durable(reply, stats);
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
        fail::fail_point!("shard-swap", |_| Err(ShardError::new(
            self.index,
            CallError::Trap("injected by the shard-swap fail point".into()),
        )));
        let Some(model) = self.prepared.take() else {
            return Err(ShardError::new(
                self.index,
                CallError::Trap("swap: no model was prepared".into()),
            ));
        };
        self.guarded(|engine| engine.replace_model(model))?;
        if let Some(durable) = &mut self.durable
            && let Err(e) = durable.swapped(&version, self.engine.model())
        {
            return Err(self.storage_failed(e));
        }
        tracing::debug!(shard = self.index, version, "model swapped in");
        self.recovery
            .swapped(self.engine.model().clone(), version.clone());
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
            self.recovery.needs_rebuild = true;
            // Not able to score until rebuilt: /ready says so.
            self.shared.status.unhealthy.store(true, Ordering::Relaxed);
        }
        result.map_err(|error| ShardError::new(self.index, error))
    }

    /// The engine's new instance; returns the model version it serves.
    fn rebuild_engine(&mut self) -> Result<String, CallError> {
        fail::fail_point!("shard-rebuild", |_| Err(CallError::Instantiate(
            "injected by the shard-rebuild fail point".into()
        )));
        self.recovery
            .rebuild(&mut self.engine, self.durable.as_mut())
    }

    /// A new instance from the last checkpoint, then the log replayed on it.
    fn rebuild(&mut self) -> Result<(), ShardError> {
        let started = Instant::now();
        let result = self.rebuild_engine();
        self.shared.status.restarts.fetch_add(1, Ordering::Relaxed);
        let healthy = result.is_ok();
        self.shared
            .status
            .unhealthy
            .store(!healthy, Ordering::Relaxed);
        match result {
            Ok(version) => {
                self.version = version;
                // Advances are logged best effort: the next request advances the rebuilt
                // engine to the service watermark again, whatever the log held.
                self.seen_watermark = None;
                self.recovery.needs_rebuild = false;
                self.rebuild_backoff = Backoff::default();
                tracing::warn!(
                    shard = self.index,
                    replayed_events = self.recovery.log_events(),
                    elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                    "shard rebuilt from its checkpoint and log"
                );
                Ok(())
            }
            Err(error) => {
                let wait = self.rebuild_backoff.failed();
                tracing::error!(shard = self.index, error = %error, retry_in_ms = wait.as_millis() as u64, "shard rebuild failed; retrying after a pause");
                Err(ShardError::new(self.index, error))
            }
        }
    }

    fn checkpoint_due(&self) -> bool {
        self.recovery
            .checkpoint_due(self.shared.config.checkpoint_interval)
    }

    fn checkpoint(&mut self) {
        // The checkpoint must hold only what is on disk: everything handed to the committer
        // synced first (a failure is taken, and the shard rebuilt, before its next call).
        if let Some(durable) = &self.durable
            && let Err(e) = durable.flush()
        {
            return tracing::warn!(shard = self.index, error = %e, "no checkpoint: a sync failed");
        }
        let started = Instant::now();
        let chunks = match self.guarded(|engine| engine.checkpoint()) {
            Ok(chunks) => chunks,
            Err(e) => return tracing::error!(error = %e, "checkpoint failed; the log is kept"),
        };
        self.shared
            .status
            .checkpoint_micros
            .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        if let Some(durable) = &mut self.durable {
            match durable.snapshot(chunks, &self.version, self.seen_watermark) {
                // The snapshot's file becomes the copy a rebuild reads: the engine keeps none
                // once the writer is done with it.
                Ok(()) => self.engine.release_checkpoint(),
                // The current log goes on; the next checkpoint tries again.
                Err(e) => {
                    tracing::error!(shard = self.index, error = %e, "starting the next log failed; the snapshot is not written")
                }
            }
        }
        // The checkpoint holds everything logged so far: a rebuild replays only what follows
        // (the next log's records, or the current one's from here if it could not be started).
        let next = self.durable.as_ref().map(|d| d.log.mark());
        self.recovery.checkpointed(self.version.clone(), next);
        if let Some(durable) = &mut self.durable {
            durable.checkpoint_totals = durable.totals.clone();
        }
        self.shared
            .status
            .checkpoints
            .fetch_add(1, Ordering::Relaxed);
        let stats = self.guarded(|engine| {
            fail::fail_point!("shard-stats-after-checkpoint", |_| Err(CallError::Trap(
                "injected by the shard-stats-after-checkpoint fail point".into()
            )));
            engine.stats()
        });
        if let Ok(stats) = stats {
            self.recovery.sized(stats.events_in_windows);
            tracing::debug!(
                shard = self.index,
                events = stats.events_in_windows,
                elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                "checkpoint"
            );
        }
    }
}
