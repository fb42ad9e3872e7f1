//! The protocol's routes under `/v2`, and the model and version a path names.

/// A route of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /v2`: the server's metadata.
    Server,
    /// `GET /v2/health/live`.
    Live,
    /// `GET /v2/health/ready`.
    Ready,
    /// `GET /v2/models/{name}[/versions/{v}]`.
    ModelMetadata(ModelPath),
    /// `GET /v2/models/{name}[/versions/{v}]/ready`.
    ModelReady(ModelPath),
    /// `POST /v2/models/{name}[/versions/{v}]/infer`.
    Infer(ModelPath),
    /// `POST /v2/repository/index`.
    RepositoryIndex,
}

/// The model a path names, and its version when it names one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPath {
    pub name: String,
    pub version: Option<String>,
}

impl Route {
    /// The route of `segments` (the path after `/v2`, split at `/`, percent-decoded), and the
    /// method it answers; none when the protocol has no such path.
    pub fn of(segments: &[&str]) -> Option<(Route, &'static str)> {
        let model = |name: &str, version: Option<&str>| ModelPath {
            name: name.to_string(),
            version: version.map(str::to_string),
        };
        Some(match segments {
            [] | [""] => (Route::Server, "GET"),
            ["health", "live"] => (Route::Live, "GET"),
            ["health", "ready"] => (Route::Ready, "GET"),
            ["repository", "index"] => (Route::RepositoryIndex, "POST"),
            ["models", name] => (Route::ModelMetadata(model(name, None)), "GET"),
            ["models", name, "versions", v] => (Route::ModelMetadata(model(name, Some(v))), "GET"),
            ["models", name, "ready"] => (Route::ModelReady(model(name, None)), "GET"),
            ["models", name, "versions", v, "ready"] => {
                (Route::ModelReady(model(name, Some(v))), "GET")
            }
            ["models", name, "infer"] => (Route::Infer(model(name, None)), "POST"),
            ["models", name, "versions", v, "infer"] => {
                (Route::Infer(model(name, Some(v))), "POST")
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_of_the_protocol_is_found_with_its_model_and_method() {
        let split = |path: &str| -> Option<(Route, &'static str)> {
            let segments: Vec<&str> = path.split('/').skip(2).collect();
            Route::of(&segments)
        };
        let m = |name: &str, version: Option<&str>| ModelPath {
            name: name.into(),
            version: version.map(Into::into),
        };
        assert_eq!(split("/v2"), Some((Route::Server, "GET")));
        assert_eq!(split("/v2/health/ready"), Some((Route::Ready, "GET")));
        assert_eq!(
            split("/v2/models/seed-mlp/versions/2/infer"),
            Some((Route::Infer(m("seed-mlp", Some("2"))), "POST"))
        );
        assert_eq!(
            split("/v2/models/seed-mlp/ready"),
            Some((Route::ModelReady(m("seed-mlp", None)), "GET"))
        );
        assert_eq!(split("/v2/models/seed-mlp/versions"), None);
        assert_eq!(
            split("/v2/repository/index"),
            Some((Route::RepositoryIndex, "POST"))
        );
    }
}
