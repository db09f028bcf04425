//! Jool NAT64 state from the `jool` command's CSV output: parsers, the compact session table,
//! aggregation and the snapshot the daemon publishes. The parsers, tables, aggregation and
//! snapshot are pure: nothing there runs a process or reads the clock; `sys::jool` runs `jool`
//! and hands the bytes in. `service` (the sampler thread), `api` and `metrics` plug the area
//! into the daemon; `demo` writes a fake `jool` that prints recorded output.
//!
//! Every format is parsed exactly as the Jool 4.1.x client prints it (recorded in
//! `tests/fixtures/jool/`, see its README): columns are found by header name, never by
//! position; UDP and ICMP session rows have one field fewer than the header (no State);
//! counters are kept by name, including names this code has never heard of.

pub mod aggregate;
pub mod api;
pub mod csv;
pub mod demo;
pub mod instance;
pub mod metrics;
pub mod service;
pub mod session;
pub mod snapshot;
pub mod stats;
pub mod tables;

pub use aggregate::{ClientCount, Pool4Usage, SessionSummary, StateCount};
pub use instance::{InstanceEntry, InstanceStatus};
pub use service::start;
pub use session::{Proto, Session, SessionTable, State};
pub use snapshot::{
    InstanceSnapshot, Nat64Snapshot, Nat64Source, Problem, ProblemCode, SessionFilter,
};
pub use stats::{Stat, StatKind};

/// Why output from `jool` could not be parsed. Each names the line (1-based) and what was
/// expected, so the message can be compared with what `jool` prints by hand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing on stdout although `jool` exited 0. Check that the configured path is the Jool
    /// client and not a wrapper that swallows its output.
    #[error("jool printed nothing; expected the {expected} header")]
    Empty { expected: &'static str },
    /// The first line is not the header of this format: wrong command, or a Jool version whose
    /// format this code does not know.
    #[error("line 1 is not the {expected} header: {found:?}")]
    Header {
        expected: &'static str,
        found: String,
    },
    /// A column this code needs is absent from the header.
    #[error("the {format} header has no {column:?} column")]
    MissingColumn {
        format: &'static str,
        column: &'static str,
    },
    /// A row has more fields than the header, or too few to hold the needed columns.
    #[error("line {line}: {fields} fields, the header has {expected}")]
    FieldCount {
        line: usize,
        fields: usize,
        expected: usize,
    },
    /// A field does not hold what its column says.
    #[error("line {line}, column {column:?}: {value:?} is not {what}")]
    Field {
        line: usize,
        column: &'static str,
        value: String,
        what: &'static str,
    },
    /// A quoted field runs to the end of the output.
    #[error("line {line}: quoted field never closed")]
    Unterminated { line: usize },
    /// The output is not UTF-8 (Jool prints ASCII).
    #[error("output is not text (invalid UTF-8 at byte {at})")]
    NotText { at: usize },
    /// More distinct unknown session states than fit the compact table: this is not Jool.
    #[error("line {line}: too many distinct unknown session states")]
    TooManyStates { line: usize },
}

/// Shortens outside text put into an error message, so garbage cannot flood a log line.
pub(crate) fn clip(s: &str) -> String {
    const MAX: usize = 80;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Checks that `bytes` is UTF-8, with a typed error instead of a panic.
pub(crate) fn text(bytes: &[u8]) -> Result<&str, ParseError> {
    std::str::from_utf8(bytes).map_err(|e| ParseError::NotText {
        at: e.valid_up_to(),
    })
}
