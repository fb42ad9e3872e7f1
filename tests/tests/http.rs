//! The native service over real HTTP: the shared contract suite, then what only a native host
//! does (overload with 503, trap recovery, graceful shutdown with requests in flight).

use edgescore_tests::contract;
use edgescore_tests::http::{NativeServer, service_config};
use edgescore_tests::runtime;

async fn native() -> NativeServer {
    NativeServer::start(runtime(), service_config()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_contract() {
    let server = native().await;
    contract::seed_contract(&server.client).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_ready() {
    contract::health_and_ready(&native().await.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_bad_bodies() {
    contract::refuses_bad_bodies(&native().await.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_bad_events_alone() {
    contract::rejects_bad_events_alone(&native().await.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_follow_the_reference() {
    contract::windows_follow_the_reference(&native().await.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_lose_nothing() {
    contract::concurrent_clients_lose_nothing(&native().await.client).await;
}
