//! A small HTTP client for the contract tests, and the native service started in-process on an
//! ephemeral port (the real router, shards and component; only the process is shared).

use std::sync::Arc;

use edgescore_app_harness::AppConfig;
use edgescore_registry::Registry;
use edgescore_runtime::Runtime;
use edgescore_serve::{self as serve, ModelSet, Service, ServiceConfig};
use serde_json::Value;
use tokio::sync::oneshot;

/// A status, the headers that matter here, and the body as JSON (`Value::Null` when not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub www_authenticate: Option<String>,
    pub content_type: Option<String>,
    /// The `x-request-id` the answer echoes.
    pub request_id: Option<String>,
    pub body: Value,
}

impl Answer {
    /// The error sentence of an error body (panics when the body has none).
    pub fn error(&self) -> &str {
        self.body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error sentence in {} {}", self.status, self.body))
    }
}

#[derive(Clone)]
pub struct Client {
    pub base: String,
    /// Where GETs go: `base`, or another replica of the same service.
    read_base: String,
    http: reqwest::Client,
    /// Sent as `Authorization: Bearer <token>` with every request, when set.
    token: Option<String>,
    /// Sent with every request.
    headers: Vec<(String, String)>,
}

impl Client {
    pub fn new(base: &str) -> Self {
        Client::split(base, base)
    }

    /// A client that writes (POST) through one replica and reads (GET) through another.
    pub fn split(write_base: &str, read_base: &str) -> Self {
        Client {
            base: write_base.trim_end_matches('/').to_string(),
            read_base: read_base.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            token: None,
            headers: Vec::new(),
        }
    }

    /// The same client, sending `token` as its bearer token.
    pub fn with_token(&self, token: &str) -> Client {
        Client {
            token: Some(token.to_string()),
            ..self.clone()
        }
    }

    /// The same client, sending this header with every request.
    pub fn with_header(&self, name: &str, value: &str) -> Client {
        let mut client = self.clone();
        client.headers.push((name.to_string(), value.to_string()));
        client
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let base = match method {
            reqwest::Method::GET => &self.read_base,
            _ => &self.base,
        };
        let mut request = self.http.request(method, format!("{base}{path}"));
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        let response = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        answer(response).await
    }

    /// A GET whose answer is text: the status, content type and body.
    pub async fn get_text(&self, path: &str) -> (u16, String, String) {
        let response = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        (
            status,
            content_type,
            response.text().await.expect("a text body"),
        )
    }

    pub async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> Answer {
        self.post_as(path, Some("application/json"), body).await
    }

    /// A POST with this content type (`None`: no `content-type` header at all).
    pub async fn post_as(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        let mut request = self.request(reqwest::Method::POST, path).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        answer(response).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Answer {
        self.post(path, body.to_string()).await
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (retry_after, content_type) = (header("retry-after"), header("content-type"));
    let www_authenticate = header("www-authenticate");
    let request_id = header("x-request-id");
    let bytes = response.bytes().await.expect("a complete body");
    Answer {
        status,
        retry_after,
        www_authenticate,
        content_type,
        request_id,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// The defaults of `edgescore serve`, with two shards so that users are always split.
pub fn service_config() -> ServiceConfig {
    ServiceConfig {
        shards: 2,
        ..ServiceConfig::default()
    }
}

/// The native service on 127.0.0.1 and a free port, until [`NativeServer::stop`] or drop.
pub struct NativeServer {
    pub client: Client,
    pub service: Arc<Service>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl NativeServer {
    /// Starts the service on the seed model v2 (the default), on the current tokio runtime.
    pub async fn start(runtime: &Runtime, config: ServiceConfig) -> NativeServer {
        let models = ModelSet::from_registry(&Registry::embedded(), None, None)
            .expect("the embedded registry");
        NativeServer::start_with(runtime, models, config).await
    }

    /// Starts the service on `models`, on the current tokio runtime.
    pub async fn start_with(
        runtime: &Runtime,
        models: ModelSet,
        config: ServiceConfig,
    ) -> NativeServer {
        let service = Service::start(runtime, models, config).expect("the service starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve::serve(listener, service.clone(), async move {
            let _ = stopped.await;
        }));
        NativeServer {
            client: Client::new(&base),
            service,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Graceful shutdown: stops accepting, finishes requests in flight, drains the shards.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server ended cleanly");
        }
    }
}

impl Drop for NativeServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// What `edgescore serve-app` runs the app with by default: the store `default`, no environment
/// or variables (the app's defaults), default limits.
pub fn app_config(reuse: usize, max_instances: usize) -> AppConfig {
    AppConfig {
        store: "default".into(),
        backend: edgescore_app_harness::StoreBackend::Memory,
        durability: edgescore_app_harness::Durability::Fsync,
        env: Vec::new(),
        variables: Vec::new(),
        reuse,
        max_instances,
        instance_wait: std::time::Duration::from_secs(30),
        max_body_bytes: 8 << 20,
        limits: edgescore_runtime::GuestLimits::default(),
    }
}

/// The Spin app under the wasmtime harness (`edgescore serve-app`) on 127.0.0.1 and a free port,
/// with a key-value store of its own; until dropped.
pub struct AppServer {
    pub client: Client,
    pub app: Arc<edgescore_app_harness::App>,
    stop: Option<oneshot::Sender<()>>,
}

impl AppServer {
    /// `reuse`: requests per instance (Spin: 128; 1 = a fresh instance for every request).
    pub async fn start(reuse: usize) -> AppServer {
        AppServer::start_with(reuse, 64).await
    }

    /// … and at most `max_instances` alive at once.
    pub async fn start_with(reuse: usize, max_instances: usize) -> AppServer {
        AppServer::start_config(app_config(reuse, max_instances)).await
    }

    pub async fn start_config(config: AppConfig) -> AppServer {
        use edgescore_app_harness::App;
        let app = App::new(edgescore_embedded::APP, config).expect("the app compiles and links");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = app.clone();
        tokio::spawn(async move {
            serving
                .serve(listener, async move {
                    let _ = stopped.await;
                })
                .await
        });
        AppServer {
            client: Client::new(&base),
            app,
            stop: Some(stop),
        }
    }
}

impl Drop for AppServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
