//! Stopping a server the way an orchestrator asks: SIGINT or SIGTERM stop accepting, the requests
//! in flight finish (up to a timeout), then the process exits 0.

use std::pin::Pin;
use std::time::Duration;

use anyhow::Result;

/// A future that resolves on the first SIGINT or SIGTERM.
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs `serve`, handing it the shutdown signal, until it ends after the signal, or `timeout`
/// after the signal if requests are still in flight then.
pub async fn serve_until_signalled<Serving>(
    serve: impl FnOnce(Shutdown) -> Serving,
    timeout: Duration,
) -> Result<()>
where
    Serving: Future<Output = std::io::Result<()>>,
{
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let signalled = move || {
        let mut stopping = stopping.clone();
        async move {
            let _ = stopping.wait_for(|&s| s).await;
        }
    };
    let serving = serve(Box::pin(signalled()));
    tokio::pin!(serving);
    tokio::select! {
        result = &mut serving => result?,
        () = async { signalled().await; tokio::time::sleep(timeout).await } => {
            tracing::warn!(timeout_ms = timeout.as_millis() as u64, "requests still in flight at the shutdown timeout; exiting");
        }
    }
    Ok(())
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
