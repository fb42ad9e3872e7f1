//! Batch jobs on disk (`DIR/jobs/`): a job's instances are kept (`<id>.queued`) before its 202
//! goes out, and its outcome (`<id>.done`) when it finishes; a restart queues the unfinished
//! ones again and serves the finished ones until their retention ends.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use edgescore_durable::atomic;
use serde::{Deserialize, Serialize};

use super::view::JobView;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueuedJob {
    pub id: String,
    pub model_version: String,
    /// Row-major instances of the model's width.
    pub rows: Vec<f32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinishedJob {
    pub view: JobView,
    /// When it finished, Unix seconds (its retention runs from then, across restarts).
    pub finished_unix: f64,
}

#[derive(Debug, Clone)]
pub struct JobFiles {
    dir: PathBuf,
}

pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl JobFiles {
    pub fn open(data_dir: &Path) -> std::io::Result<JobFiles> {
        let dir = data_dir.join("jobs");
        std::fs::create_dir_all(&dir)?;
        Ok(JobFiles { dir })
    }

    fn path(&self, id: &str, kind: &str) -> PathBuf {
        self.dir.join(format!("{id}.{kind}"))
    }

    pub fn queued(&self, job: &QueuedJob) -> std::io::Result<()> {
        let bytes = postcard::to_allocvec(job).map_err(std::io::Error::other)?;
        atomic::write(&self.path(&job.id, "queued"), [bytes.as_slice()])
    }

    pub fn finished(&self, job: &FinishedJob) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(job).map_err(std::io::Error::other)?;
        atomic::write(&self.path(&job.view.job_id, "done"), [bytes.as_slice()])?;
        let _ = std::fs::remove_file(self.path(&job.view.job_id, "queued"));
        Ok(())
    }

    pub fn forget(&self, id: &str) {
        let _ = std::fs::remove_file(self.path(id, "queued"));
        let _ = std::fs::remove_file(self.path(id, "done"));
    }

    /// The jobs kept: unfinished ones, and finished ones oldest first. A file that does not
    /// read is reported and left.
    pub fn load(&self) -> (Vec<QueuedJob>, Vec<FinishedJob>) {
        let (mut queued, mut finished) = (Vec::new(), Vec::new());
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return (queued, finished);
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let read = match path.extension().and_then(|e| e.to_str()) {
                Some("queued") => postcard::from_bytes(&bytes)
                    .map(|job| queued.push(job))
                    .map_err(|e| e.to_string()),
                Some("done") => serde_json::from_slice(&bytes)
                    .map(|job| finished.push(job))
                    .map_err(|e| e.to_string()),
                _ => Ok(()),
            };
            if let Err(e) = read {
                tracing::warn!(file = %path.display(), error = e, "a batch job's file does not read; it is left as it is");
            }
        }
        let done: std::collections::HashSet<String> = finished
            .iter()
            .map(|j: &FinishedJob| j.view.job_id.clone())
            .collect();
        queued.retain(|j: &QueuedJob| !done.contains(&j.id));
        finished.sort_by(|a, b| a.finished_unix.total_cmp(&b.finished_unix));
        (queued, finished)
    }
}
