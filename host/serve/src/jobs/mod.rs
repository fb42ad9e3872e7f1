//! Batch jobs: `POST /batch` queues instances for scoring and answers a job id at once; a small
//! pool of workers scores queued jobs in chunks, pausing while ingest requests wait in the shard
//! queues so that ingest traffic keeps priority; `GET /batch/{id}` reports status, progress and,
//! when done, the predictions. Finished jobs are forgotten after a retention time, and the oldest
//! first when more than `max_finished` jobs or `max_result_bytes` of predictions are kept. With a
//! data directory, jobs are kept on disk too ([`files`]): a restart queues the
//! unfinished ones again and serves the finished ones within their retention.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

mod files;
mod view;

pub use files::JobFiles;
pub use view::{JobStatus, JobView, Progress};

use crate::models::Predictor;
use files::{FinishedJob, QueuedJob, unix_now};

#[derive(Debug, Clone, Copy)]
pub struct JobsConfig {
    /// Jobs scored at once.
    pub workers: usize,
    /// Jobs waiting for a worker before new ones get 429.
    pub queue: usize,
    /// Instances scored per component call.
    pub chunk: usize,
    /// How long a finished job stays readable.
    pub retention: Duration,
    /// Finished jobs kept at most; the oldest is forgotten first.
    pub max_finished: usize,
    /// Bytes of finished jobs' predictions kept at most (8 per prediction); the oldest job is
    /// forgotten first.
    pub max_result_bytes: usize,
}

struct Job {
    view: JobView,
    finished: Option<Instant>,
}

struct Work {
    id: String,
    rows: Vec<f32>,
    predictor: Arc<Predictor>,
}

pub struct Jobs {
    config: JobsConfig,
    jobs: Mutex<Board>,
    queue: mpsc::Sender<Work>,
    /// Where jobs are kept on disk (none: in memory only).
    files: Option<JobFiles>,
}

/// Every job known, and the finished ones oldest first with what their results weigh.
#[derive(Default)]
struct Board {
    by_id: HashMap<String, Job>,
    finished: VecDeque<(String, usize)>,
    finished_bytes: usize,
}

impl Board {
    /// Forgets the oldest finished job; returns its id.
    fn forget_oldest(&mut self) -> Option<String> {
        let (id, bytes) = self.finished.pop_front()?;
        self.by_id.remove(&id);
        self.finished_bytes -= bytes;
        Some(id)
    }
}

/// Why a job was not queued.
#[derive(Debug)]
pub enum SubmitError {
    QueueFull,
    /// It could not be kept on disk.
    Storage(std::io::Error),
}

impl Jobs {
    /// Starts the workers on the current tokio runtime. `busy` tells whether ingest is waiting.
    /// With `files`, the jobs kept there are served again: the unfinished ones queued again with
    /// the predictor `predictor_of` finds for their version.
    pub fn start(
        config: JobsConfig,
        busy: impl Fn() -> bool + Send + Sync + 'static,
        files: Option<JobFiles>,
        predictor_of: impl Fn(&str) -> Option<Arc<Predictor>>,
    ) -> Arc<Jobs> {
        let (queue, rx) = mpsc::channel::<Work>(config.queue.max(1));
        let jobs = Arc::new(Jobs {
            config,
            jobs: Mutex::new(Board::default()),
            queue,
            files,
        });
        jobs.restore(predictor_of);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let busy = Arc::new(busy);
        for _ in 0..config.workers {
            let (jobs, rx, busy) = (Arc::downgrade(&jobs), rx.clone(), busy.clone());
            tokio::spawn(async move {
                loop {
                    let Some(work) = rx.lock().await.recv().await else {
                        return;
                    };
                    let Some(jobs) = jobs.upgrade() else { return };
                    jobs.run(work, busy.as_ref()).await;
                }
            });
        }
        jobs
    }

    /// The jobs of the data directory, served again: finished ones until their retention ends,
    /// unfinished ones queued again (in a task: the queue may be shorter than their number).
    fn restore(self: &Arc<Self>, predictor_of: impl Fn(&str) -> Option<Arc<Predictor>>) {
        let Some(files) = &self.files else { return };
        let (queued, finished) = files.load();
        for job in finished {
            self.restore_finished(files, job);
        }
        let again: Vec<Work> = queued
            .into_iter()
            .filter_map(|job| self.restore_queued(job, &predictor_of))
            .collect();
        if !again.is_empty() {
            tracing::info!(
                jobs = again.len(),
                "batch jobs queued again after the restart"
            );
            let queue = self.queue.clone();
            tokio::spawn(async move {
                for work in again {
                    let _ = queue.send(work).await;
                }
            });
        }
    }

    /// A finished job, served until its retention (counted from when it finished) ends.
    fn restore_finished(&self, files: &JobFiles, job: FinishedJob) {
        let age = Duration::from_secs_f64((unix_now() - job.finished_unix).max(0.0));
        let Some(at) = Instant::now()
            .checked_sub(age)
            .filter(|_| age < self.config.retention)
        else {
            files.forget(&job.view.job_id);
            return;
        };
        let bytes = job
            .view
            .predictions
            .as_ref()
            .map_or(0, |p| p.len() * size_of::<f64>());
        let id = job.view.job_id.clone();
        let mut board = self.lock();
        board.by_id.insert(
            id.clone(),
            Job {
                view: job.view,
                finished: Some(at),
            },
        );
        board.finished.push_back((id, bytes));
        board.finished_bytes += bytes;
    }

    /// A job that was queued or running: listed as queued, and its work to queue again; failed
    /// when its model version is no longer served.
    fn restore_queued(
        &self,
        job: QueuedJob,
        predictor_of: impl Fn(&str) -> Option<Arc<Predictor>>,
    ) -> Option<Work> {
        let predictor = predictor_of(&job.model_version);
        let width = predictor
            .as_ref()
            .map_or(1, |p| p.info.input_width as usize);
        let rows = if predictor.is_some() {
            job.rows.len()
        } else {
            0
        };
        let view = Self::view(&job.id, &job.model_version, rows, width);
        self.lock().by_id.insert(
            job.id.clone(),
            Job {
                view,
                finished: None,
            },
        );
        let Some(predictor) = predictor else {
            let error = format!("model version {} is no longer served", job.model_version);
            self.finish(&job.id, Err(error));
            return None;
        };
        Some(Work {
            id: job.id,
            rows: job.rows,
            predictor,
        })
    }

    /// A queued job's view.
    fn view(id: &str, version: &str, rows: usize, width: usize) -> JobView {
        JobView {
            job_id: id.to_string(),
            status: JobStatus::Queued,
            progress: Progress {
                done: 0,
                total: rows / width.max(1),
            },
            model_version: version.to_string(),
            predictions: None,
            error: None,
        }
    }

    /// Queues a job of `rows` (row-major, the predictor's width); returns its id. With a data
    /// directory the job is on disk before this returns (blocking: call it off the async
    /// workers).
    pub fn submit(&self, rows: Vec<f32>, predictor: Arc<Predictor>) -> Result<String, SubmitError> {
        self.forget_expired();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let width = predictor.info.input_width.max(1) as usize;
        let version = predictor.model.version_label();
        let view = Self::view(&id, &version, rows.len(), width);
        let rows = match &self.files {
            Some(files) => {
                let job = QueuedJob {
                    id: id.clone(),
                    model_version: version,
                    rows,
                };
                files.queued(&job).map_err(SubmitError::Storage)?;
                job.rows
            }
            None => rows,
        };
        // Registered before it is queued, so that a fast worker always finds it.
        self.lock().by_id.insert(
            id.clone(),
            Job {
                view,
                finished: None,
            },
        );
        let work = Work {
            id: id.clone(),
            rows,
            predictor,
        };
        if self.queue.try_send(work).is_err() {
            self.lock().by_id.remove(&id);
            if let Some(files) = &self.files {
                files.forget(&id);
            }
            return Err(SubmitError::QueueFull);
        }
        Ok(id)
    }

    pub fn get(&self, id: &str) -> Option<JobView> {
        self.forget_expired();
        self.lock().by_id.get(id).map(|j| j.view.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Board> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets finished jobs past their retention (the oldest finished first).
    fn forget_expired(&self) {
        let retention = self.config.retention;
        let mut board = self.lock();
        while let Some((id, _)) = board.finished.front() {
            let expired = board
                .by_id
                .get(id)
                .and_then(|j| j.finished)
                .is_none_or(|at| at.elapsed() >= retention);
            if !expired {
                break;
            }
            let id = board.forget_oldest();
            if let (Some(files), Some(id)) = (&self.files, id) {
                files.forget(&id);
            }
        }
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut Job)) {
        if let Some(job) = self.lock().by_id.get_mut(id) {
            f(job);
        }
    }

    async fn run(&self, work: Work, busy: &(dyn Fn() -> bool + Send + Sync)) {
        self.update(&work.id, |j| j.view.status = JobStatus::Running);
        let width = work.predictor.info.input_width.max(1) as usize;
        let mut predictions = Vec::with_capacity(work.rows.len() / width);
        for chunk in work.rows.chunks(self.config.chunk.max(1) * width) {
            // Ingest first: wait while requests queue at the shards.
            while busy() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let (predictor, chunk) = (work.predictor.clone(), chunk.to_vec());
            let scored = tokio::task::spawn_blocking(move || {
                fail::fail_point!("batch-score", |_| Err(edgescore_runtime::CallError::Trap(
                    "injected by the batch-score fail point".into()
                )));
                predictor.score(&chunk)
            })
            .await;
            match scored {
                Ok(Ok(scores)) => {
                    if let Err(e) = edgescore_contract::predict::check_predictions(&scores) {
                        let at = predictions.len();
                        return self.finish(
                            &work.id,
                            Err(format!("{} (from instance {at} on)", e.message())),
                        );
                    }
                    predictions.extend(scores.into_iter().map(f64::from));
                    let done = predictions.len();
                    self.update(&work.id, |j| j.view.progress.done = done);
                }
                Ok(Err(e)) => return self.finish(&work.id, Err(e.to_string())),
                Err(e) => return self.finish(&work.id, Err(e.to_string())),
            }
        }
        self.finish(&work.id, Ok(predictions));
    }

    fn finish(&self, id: &str, outcome: Result<Vec<f64>, String>) {
        let bytes = outcome.as_ref().map_or(0, |p| p.len() * size_of::<f64>());
        self.update(id, |j| {
            match outcome {
                Ok(predictions) => {
                    j.view.status = JobStatus::Done;
                    j.view.predictions = Some(predictions);
                }
                Err(e) => {
                    j.view.status = JobStatus::Failed;
                    j.view.error = Some(format!("scoring failed: {e}"));
                }
            }
            j.finished = Some(Instant::now());
        });
        if let Some(files) = &self.files {
            let view = self.lock().by_id.get(id).map(|j| j.view.clone());
            if let Some(view) = view {
                let job = FinishedJob {
                    view,
                    finished_unix: unix_now(),
                };
                if let Err(e) = files.finished(&job) {
                    tracing::error!(job = id, error = %e, "keeping a finished batch job failed; a restart scores it again");
                }
            }
        }
        let mut board = self.lock();
        board.finished.push_back((id.to_string(), bytes));
        board.finished_bytes += bytes;
        // The newest job stays even alone over the bytes cap: its client is waiting for it.
        while board.finished.len() > self.config.max_finished.max(1)
            || (board.finished_bytes > self.config.max_result_bytes && board.finished.len() > 1)
        {
            let id = board.forget_oldest();
            if let (Some(files), Some(id)) = (&self.files, id) {
                files.forget(&id);
            }
        }
    }
}
