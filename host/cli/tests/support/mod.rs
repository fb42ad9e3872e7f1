//! A running `edgescore` process for the tests: its address, its JSON log lines, plain HTTP.
#![allow(dead_code)] // each test file uses its own part

pub mod events;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn edgescore() -> Command {
    Command::new(env!("CARGO_BIN_EXE_edgescore"))
}

/// A running `edgescore serve` and the log lines it has written so far.
pub struct Served {
    pub child: Child,
    pub address: String,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
    /// The data directory made for it, when none was given.
    _data_dir: Option<tempfile::TempDir>,
}

/// A test that fails, or is done with its server, leaves no process behind.
impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Served {
    pub fn start(env: &[(&str, &str)]) -> Served {
        Served::start_with(&["serve"], env)
    }

    /// `edgescore <command...> --port 0 --log-format json`, with a data directory of its own
    /// unless `env` names one.
    pub fn start_with(command: &[&str], env: &[(&str, &str)]) -> Served {
        let own = (!env.iter().any(|(k, _)| *k == "EDGESCORE_DATA_DIR"))
            .then(|| tempfile::tempdir().unwrap());
        let mut served = Served::spawn(command, env, own.as_ref().map(|d| d.path()));
        served._data_dir = own;
        // The first start may compile the component (~15 s in a debug host).
        let listening = served.wait_for(|l| l["message"] == "listening", 120);
        served.address = listening["address"].as_str().unwrap().to_string();
        served
    }

    /// The process started, not yet waited for.
    pub fn spawn(
        command: &[&str],
        env: &[(&str, &str)],
        data_dir: Option<&std::path::Path>,
    ) -> Served {
        let mut process = edgescore();
        process
            .args(command)
            .args(["--port", "0", "--log-format", "json"])
            .envs(env.iter().copied());
        if let Some(dir) = data_dir {
            process.env("EDGESCORE_DATA_DIR", dir);
        }
        let mut child = process
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Served {
            child,
            address: String::new(),
            lines,
            seen: Vec::new(),
            _data_dir: None,
        }
    }

    pub fn wait_for(&mut self, what: impl Fn(&Value) -> bool, seconds: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no such log line; seen: {:#?}", self.seen));
            self.seen.push(line.clone());
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|_| panic!("a log line that is not JSON: {line}"));
            if what(&value) {
                return value;
            }
        }
    }

    /// SIGKILL, and the process reaped.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, and waits for a clean exit.
    pub fn terminate(mut self) {
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}");
    }

    /// Waits for the process to end; its status and the log lines it wrote.
    pub fn exit(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let status = self.child.wait().unwrap();
        let mut lines = std::mem::take(&mut self.seen);
        lines.extend(self.lines.try_iter());
        (status, lines)
    }

    /// A plain HTTP/1.1 POST of a JSON body; returns the status, the headers and the body.
    pub fn post(&self, path: &str, body: &str) -> (u16, String, Value) {
        post(&self.address, path, body).expect("the server answers")
    }

    /// A plain HTTP/1.1 GET; returns the status and the JSON body.
    pub fn get(&self, path: &str) -> (u16, Value) {
        self.get_with(path, &[])
    }

    /// A GET with these headers besides `Host`.
    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut stream = TcpStream::connect(&self.address).unwrap();
        let extra: String = headers
            .iter()
            .map(|(name, value)| format!("{name}: {value}\r\n"))
            .collect();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\n{extra}Connection: close\r\n\r\n",
            self.address
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let status = answer[9..12].parse().unwrap();
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }
}

/// A plain HTTP/1.1 POST of a JSON body to `address`; the status, the head and the JSON body, or
/// an error when the connection fails or is cut before a whole answer.
pub fn post(address: &str, path: &str, body: &str) -> std::io::Result<(u16, String, Value)> {
    let mut stream = TcpStream::connect(address)?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no whole answer"))?;
    let status = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    let body = serde_json::from_str(body).map_err(|_| std::io::Error::other("a cut body"))?;
    Ok((status, head.to_string(), body))
}
