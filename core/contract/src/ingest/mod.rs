//! `POST /ingest`: the body parser ([`parse`]) and the pipeline both hosts run a request through
//! ([`pipeline`]): parse → judge against the watermark → the accepted events for the host to
//! record → the answer, with every rejection at its position in the request.

mod parse;
mod pipeline;

pub use parse::{IngestParseError, ParsedEvent, parse_ingest};
pub use pipeline::{Accepted, Ingest, IngestResponse, Judged, Parsed, RejectedEvent};
