//! Who may send what: request bodies must be JSON (a web page cannot post a simple cross-site
//! form here: `text/plain` and form types are refused with 415), and, when the service has an
//! API token, every route but the probes needs `Authorization: Bearer <token>` (401).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::errors::ApiError;

/// 415 unless a request body is JSON: `application/json` or any `<type>/<subtype>+json`, with or
/// without parameters; a missing content type is read as JSON.
pub fn check_json_body(content_type: Option<&[u8]>) -> Result<(), ApiError> {
    let Some(value) = content_type else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(value);
    let essence = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let json = essence == "application/json"
        || essence
            .split_once('/')
            .is_some_and(|(kind, subtype)| !kind.is_empty() && subtype.ends_with("+json"));
    if json {
        return Ok(());
    }
    Err(ApiError::new(
        415,
        format!("content-type: {text:?} is not JSON; send the body as application/json"),
    ))
}

/// The routes that answer without a token: liveness, readiness (also the inference protocol's),
/// metrics scrapes, the API's
/// description (`/openapi.json`, the `/docs` page) and the dashboard's page (its data comes from
/// the other routes, with the token): nothing in them is a user's.
pub fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/health"
            | "/ready"
            | "/metrics"
            | "/openapi.json"
            | "/dashboard"
            | "/v2/health/live"
            | "/v2/health/ready"
    ) || path == "/docs"
        || path.starts_with("/docs/")
}

/// The API token a service requires. Only its digest is kept; a presented token is hashed and
/// compared in constant time, so neither its content nor its length shows in the timing.
#[derive(Clone)]
pub struct ApiToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(..)")
    }
}

/// `WWW-Authenticate` of a 401.
pub const CHALLENGE: &str = r#"Bearer realm="edgescore""#;

impl ApiToken {
    pub fn new(token: &str) -> ApiToken {
        ApiToken {
            digest: Sha256::digest(token.as_bytes()).into(),
        }
    }

    /// Checks an `Authorization` header: 401 with `WWW-Authenticate` unless it is
    /// `Bearer <the token>`.
    pub fn check(&self, authorization: Option<&[u8]>) -> Result<(), ApiError> {
        let presented = authorization.and_then(|value| {
            let (scheme, token) = value.split_at_checked(7)?;
            scheme.eq_ignore_ascii_case(b"bearer ").then_some(token)
        });
        let Some(presented) = presented else {
            return Err(unauthorized(
                "authorization: this service needs `Authorization: Bearer <token>`",
            ));
        };
        let digest: [u8; 32] = Sha256::digest(presented).into();
        if bool::from(digest.ct_eq(&self.digest)) {
            Ok(())
        } else {
            Err(unauthorized("authorization: the bearer token is not valid"))
        }
    }
}

fn unauthorized(message: &str) -> ApiError {
    let mut error = ApiError::new(401, message);
    error.header = Some(crate::errors::ErrorHeader::WwwAuthenticate(CHALLENGE));
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies_pass_and_others_are_415() {
        for ok in [
            None,
            Some("application/json"),
            Some("Application/JSON; charset=utf-8"),
            Some("application/vnd.edgescore.v1+json"),
            Some("application/problem+json"),
        ] {
            assert_eq!(check_json_body(ok.map(str::as_bytes)), Ok(()), "{ok:?}");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonp",
            "+json",
            "",
        ] {
            let e = check_json_body(Some(bad.as_bytes())).unwrap_err();
            assert_eq!(e.status, 415, "{bad}");
            assert!(e.message().starts_with("content-type:"), "{}", e.message());
        }
    }

    #[test]
    fn only_the_bearer_token_passes() {
        let token = ApiToken::new("s3cret");
        assert_eq!(token.check(Some(b"Bearer s3cret")), Ok(()));
        assert_eq!(token.check(Some(b"bearer s3cret")), Ok(()));
        for bad in [
            None,
            Some(&b"Bearer s3cre"[..]),
            Some(b"Bearer s3cret "),
            Some(b"Basic czNjcmV0"),
            Some(b"s3cret"),
            Some(b"Bearer"),
        ] {
            let e = token.check(bad).unwrap_err();
            assert_eq!(
                (e.status, e.header),
                (
                    401,
                    Some(crate::errors::ErrorHeader::WwwAuthenticate(CHALLENGE))
                )
            );
        }
        assert!(!format!("{token:?}").contains("s3cret"));
    }
}
