//! The service's one error type: an [`ApiError`] of the contract (status, JSON body,
//! `Retry-After`) as an axum response, so handlers return `Result<_, Error>` and use `?`.

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use edgescore_contract::ApiError;
use edgescore_contract::errors::ErrorHeader;

#[derive(Debug)]
pub struct Error(pub ApiError);

impl<E: Into<ApiError>> From<E> for Error {
    fn from(e: E) -> Self {
        Error(e.into())
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let ApiError {
            status,
            mut body,
            retry_after,
            header,
        } = self.0;
        body.request_id = crate::routes::request_id::current();
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some((name, value)) = header.map(ErrorHeader::pair) {
            response.headers_mut().insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        response
    }
}

pub type Result<T> = std::result::Result<T, Error>;
