//! What one instance's store holds, and the views wasmtime's WASI, HTTP, key-value and variables
//! implementations take of it.

use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    Error as HttpError, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

use crate::keyvalue::{KeyValue, RequestScope};
use crate::variables::Variables;

/// What one instance's store holds.
pub struct AppState {
    pub table: ResourceTable,
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub hooks: NoOutgoingHttp,
    pub kv: KeyValue,
    /// What the key-value host keeps of the request being served.
    pub request: RequestScope,
    pub variables: Variables,
    pub limits: StoreLimits,
}

/// The app is granted no outgoing HTTP: every request it sends is denied.
pub struct NoOutgoingHttp;

type OutgoingResponse = (
    axum::http::Response<wasmtime_wasi_http::WasiBody>,
    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
);

impl WasiHttpHooks for NoOutgoingHttp {
    fn send_request(
        &mut self,
        _request: axum::http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = Result<OutgoingResponse, HttpError>> + Send> {
        Box::new(async { Err(HttpError::HttpRequestDenied) })
    }
}

impl WasiView for AppState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for AppState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}
