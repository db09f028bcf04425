//! The relay state file (`<state.dir>/relays.json`): what each relay was last asked to be, its
//! auto-off deadline (absolute, so a restart never extends it) and its last turn-off (for
//! `min_off` across restarts). Parsing and rendering are pure; the controller writes it with
//! `sys::atomic_file`. Entries for relays no longer in the config are kept, not dropped.

use std::collections::BTreeMap;

use super::relay::{RelayState, Source};

/// The file format version.
pub const VERSION: u32 = 1;

/// One relay's saved state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Saved {
    /// What the relay was last set to by a person, switch or timer (not by shutdown).
    pub on: bool,
    /// Wall time (Unix ms) of that change.
    pub since_ms: u64,
    /// Wall time the auto-off fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_off_at_ms: Option<u64>,
    /// Wall time the relay last went off, shutdown included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off_since_ms: Option<u64>,
    /// `api`, `switch`, `timer`, `boot`, `sense`.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

impl Saved {
    /// The saved form of a relay state.
    pub fn from_state(s: &RelayState) -> Self {
        Saved {
            on: s.on,
            since_ms: s.since_ms,
            auto_off_at_ms: s.auto_off_at_ms,
            off_since_ms: s.off_since_ms,
            source: s.source.kind().to_string(),
            client: s.source.client().map(str::to_string),
        }
    }

    /// What to save when pirouterd drives the relay safe on the way out: the wish is kept
    /// (`at_start = "restore"` brings it back), the physical turn-off is recorded for `min_off`.
    pub fn at_shutdown(s: &RelayState, now_ms: u64) -> Self {
        let mut saved = Saved::from_state(s);
        if s.on {
            saved.off_since_ms = Some(now_ms);
        }
        saved
    }

    /// The saved source, if it is one we know.
    pub fn source(&self) -> Option<Source> {
        Source::from_parts(&self.source, self.client.as_deref())
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct File {
    version: u32,
    relays: BTreeMap<String, serde_json::Value>,
}

/// Why the state file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Not JSON, or not our shape: the controller sets the file aside and starts fresh.
    #[error("relay state file is not valid: {0}")]
    Syntax(#[from] serde_json::Error),
    /// Written by a newer pirouterd.
    #[error("relay state file has version {0}, this pirouterd reads version {VERSION}")]
    Version(u32),
}

/// The parsed file: known entries, plus every entry as written (kept for rewriting).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateFile {
    raw: BTreeMap<String, serde_json::Value>,
}

impl StateFile {
    /// Parses the file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, StoreError> {
        let f: File = serde_json::from_slice(bytes)?;
        if f.version != VERSION {
            return Err(StoreError::Version(f.version));
        }
        Ok(StateFile { raw: f.relays })
    }

    /// One relay's saved state. An entry that does not parse is treated as absent (and kept
    /// in the file as written until this relay changes).
    pub fn get(&self, relay: &str) -> Option<Saved> {
        self.raw
            .get(relay)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    pub fn set(&mut self, relay: &str, saved: &Saved) {
        if let Ok(v) = serde_json::to_value(saved) {
            self.raw.insert(relay.to_string(), v);
        }
    }

    /// The file's bytes.
    pub fn render(&self) -> Vec<u8> {
        let f = File {
            version: VERSION,
            relays: self.raw.clone(),
        };
        let mut out = serde_json::to_vec_pretty(&f).unwrap_or_default();
        out.push(b'\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_unknown_relays() {
        let text = br#"{"version":1,"relays":{
            "fireplace":{"on":true,"since_ms":1000,"auto_off_at_ms":5000,"source":"api","client":"192.0.2.7"},
            "old-relay":{"on":false,"since_ms":1,"source":"boot","future_field":3},
            "broken":{"on":"maybe"}}}"#;
        let mut f = StateFile::parse(text).expect("parse");
        let s = f.get("fireplace").expect("fireplace");
        assert!(s.on);
        assert_eq!(s.auto_off_at_ms, Some(5000));
        assert_eq!(
            s.source(),
            Some(Source::Api {
                client: "192.0.2.7".into()
            })
        );
        assert!(f.get("broken").is_none());
        f.set(
            "fireplace",
            &Saved {
                on: false,
                since_ms: 6000,
                auto_off_at_ms: None,
                off_since_ms: Some(6000),
                source: "timer".into(),
                client: None,
            },
        );
        let again = StateFile::parse(&f.render()).expect("reparse");
        assert_eq!(again.get("fireplace").expect("fp").source, "timer");
        assert!(again.get("old-relay").is_some(), "unknown relay kept");
        assert!(again.raw.contains_key("broken"), "unparsable entry kept");
    }

    #[test]
    fn refuses_garbage_and_future_versions() {
        assert!(matches!(
            StateFile::parse(b"{not json"),
            Err(StoreError::Syntax(_))
        ));
        assert!(matches!(
            StateFile::parse(br#"{"version":2,"relays":{}}"#),
            Err(StoreError::Version(2))
        ));
    }
}
