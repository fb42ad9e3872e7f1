//! The Spin app under the real Spin runtime: `spin up --from spin.toml`, unchanged, on a free
//! loopback port, with a state directory of its own (where Spin keeps its default SQLite store),
//! killed when dropped.
//!
//! The binary is `$EDGESCORE_SPIN`, else `spin` on the `PATH`. Spin is not in the package
//! registries, so a machine without it skips these tests with one line, "skipped: no spin
//! binary"; CI sets `EDGESCORE_SPIN` and requires it (`cargo xtask test` fails if the variable
//! names no binary).

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::http::Client;

/// The `spin` binary, if there is one.
pub fn binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("EDGESCORE_SPIN") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "EDGESCORE_SPIN={} is not a file",
            path.display()
        );
        return Some(path);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("spin"))
            .find(|candidate| candidate.is_file())
    })
}

/// Where the app keeps its state under Spin.
#[derive(Debug, Clone)]
pub enum SpinStore {
    /// Spin's default key-value store: SQLite in the state directory.
    Default,
    /// Redis, through a runtime config file (`[key_value_store.default] type = "redis"`).
    Redis(String),
}

/// How `spin up` is started.
#[derive(Debug, Clone)]
pub struct SpinOptions {
    pub store: SpinStore,
    /// Application variables (`--variable name=value`), e.g. `api_token`.
    pub variables: Vec<(String, String)>,
    /// Environment of the component (`--env KEY=VALUE`), over spin.toml's.
    pub env: Vec<(String, String)>,
}

impl Default for SpinOptions {
    fn default() -> Self {
        SpinOptions {
            store: SpinStore::Default,
            variables: Vec::new(),
            env: Vec::new(),
        }
    }
}

pub struct SpinApp {
    pub client: Client,
    child: Option<Child>,
    options: SpinOptions,
    port: u16,
    /// The state directory (Spin's SQLite store, the component logs) and the runtime config.
    dir: tempfile::TempDir,
}

impl SpinApp {
    /// Spin's default store, no variables: `spin up` as a user runs it. None, after printing
    /// "skipped: no spin binary", when there is no Spin.
    pub async fn start() -> Option<SpinApp> {
        SpinApp::start_with(SpinOptions::default()).await
    }

    pub async fn start_with(options: SpinOptions) -> Option<SpinApp> {
        let Some(spin) = binary() else {
            println!("skipped: no spin binary (set EDGESCORE_SPIN or put spin on the PATH)");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut app = SpinApp {
            client: Client::new(&format!("http://127.0.0.1:{port}")),
            child: None,
            options,
            port,
            dir: tempfile::tempdir().unwrap(),
        };
        app.run(&spin).await;
        Some(app)
    }

    /// The state directory Spin was given.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Kills Spin (SIGKILL) and starts it again on the same state and port.
    pub async fn restart(&mut self) {
        self.kill();
        // Nothing of the killed Spin may answer for the new one.
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "the killed Spin still listens");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let spin = binary().expect("spin ran before");
        self.run(&spin).await;
    }

    /// SIGKILL to Spin's process group: `spin up` runs the app in a child process of its own
    /// (`spin trigger http`), which a kill of `spin up` alone would leave serving.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let group = -(child.id() as i32);
            // SAFETY: kill(2) with a process group id; no memory is shared.
            unsafe { libc::kill(group, libc::SIGKILL) };
            let _ = child.wait();
        }
    }

    async fn run(&mut self, spin: &Path) {
        let log = self.dir.path().join("spin.log");
        let mut command = Command::new(spin);
        command
            .arg("up")
            .arg("--from")
            .arg(crate::repo_root().join("spin.toml"))
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--state-dir")
            .arg(self.state_dir());
        if let SpinStore::Redis(url) = &self.options.store {
            let config = self.dir.path().join("runtime-config.toml");
            std::fs::write(
                &config,
                format!("[key_value_store.default]\ntype = \"redis\"\nurl = \"{url}\"\n"),
            )
            .unwrap();
            command.arg("--runtime-config-file").arg(config);
        }
        for (name, value) in &self.options.variables {
            command.args(["--variable", &format!("{name}={value}")]);
        }
        for (name, value) in &self.options.env {
            command.args(["--env", &format!("{name}={value}")]);
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", spin.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(120);
        let health = reqwest::Client::new();
        loop {
            let answered = health
                .get(format!("http://127.0.0.1:{}/health", self.port))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if answered {
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("spin up exited ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "spin up did not answer /health in 120 s: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What Spin and the app printed (the app's stderr among it).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("spin.log")).unwrap_or_default()
    }
}

impl Drop for SpinApp {
    fn drop(&mut self) {
        self.kill();
    }
}
