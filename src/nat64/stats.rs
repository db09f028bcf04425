//! Jool's counters from `jool stats display --csv [--all] [--explain]`: `Stat,Value` or
//! `Stat,Value,Explanation` (the explanation quoted, possibly over several lines).
//!
//! The list differs by version (68 to 84 counters across 4.1.x), so counters are kept by name
//! in the order printed, unknown names included. A 4.1.9-4.1.11 client talking to a newer
//! module stops at the first counter it does not know (exit 234); what it printed before is
//! still parsed here, and the caller reports the rest as missing.

use super::csv::{column_index, header, Records};
use super::{clip, text, ParseError};
use serde::Serialize;

/// One counter as Jool printed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stat {
    pub name: String,
    pub value: u64,
    /// Jool's own explanation, present only with `--explain`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
}

/// Whether a value only grows (a counter) or goes up and down (a gauge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StatKind {
    Counter,
    Gauge,
}

/// Stats that hold a current amount rather than a running total. Every other name, known or
/// not, is a counter: all of Jool's other stats only ever increase.
pub const GAUGES: [&str; 2] = ["JSTAT_BIB_ENTRIES", "JSTAT_SESSIONS"];

impl Stat {
    pub fn kind(&self) -> StatKind {
        kind_of(&self.name)
    }
}

pub fn kind_of(name: &str) -> StatKind {
    if GAUGES.contains(&name) {
        StatKind::Gauge
    } else {
        StatKind::Counter
    }
}

const FORMAT: &str = "stats display --csv";

/// Parses the CSV counters. Extra columns are ignored; a name must be non-empty and printable
/// ASCII without spaces, a value a decimal `u64`.
pub fn parse_stats(bytes: &[u8]) -> Result<Vec<Stat>, ParseError> {
    let text = text(bytes)?;
    let mut records = Records::new(text);
    let head = header(&mut records, FORMAT, "Stat")?;
    let cols = column_index(&head, FORMAT, &["Stat", "Value"])?;
    let explain = head.iter().position(|h| h.trim() == "Explanation");
    let need = cols.iter().copied().max().unwrap_or(0) + 1;
    let mut out = Vec::with_capacity(90);
    while let Some(r) = records.next_record()? {
        if r.fields.len() < need || r.fields.len() > head.len() {
            return Err(ParseError::FieldCount {
                line: r.line,
                fields: r.fields.len(),
                expected: head.len(),
            });
        }
        let name = r.fields[cols[0]].trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b'"') {
            return Err(ParseError::Field {
                line: r.line,
                column: "Stat",
                value: clip(name),
                what: "a counter name",
            });
        }
        let raw = r.fields[cols[1]].trim();
        let value = if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
            raw.parse::<u64>().ok()
        } else {
            None
        }
        .ok_or_else(|| ParseError::Field {
            line: r.line,
            column: "Value",
            value: clip(raw),
            what: "a whole number",
        })?;
        out.push(Stat {
            name: name.to_string(),
            value,
            explanation: explain.and_then(|i| r.fields.get(i)).map(|e| e.to_string()),
        });
    }
    Ok(out)
}

/// Looks a counter up by name.
pub fn get(stats: &[Stat], name: &str) -> Option<u64> {
    stats.iter().find(|s| s.name == name).map(|s| s.value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_are_kept_in_order() {
        let s = parse_stats(b"Stat,Value\nJSTAT_FROM_THE_FUTURE,7\nJSTAT_SESSIONS,3\n").unwrap();
        assert_eq!(s[0].name, "JSTAT_FROM_THE_FUTURE");
        assert_eq!(s[0].kind(), StatKind::Counter);
        assert_eq!(s[1].kind(), StatKind::Gauge);
        assert_eq!(get(&s, "JSTAT_SESSIONS"), Some(3));
    }

    #[test]
    fn bad_values_are_typed_errors() {
        for bad in [
            &b"Stat,Value\nJSTAT_X,-1\n"[..],
            b"Stat,Value\nJSTAT_X,18446744073709551616\n",
            b"Stat,Value\nJSTAT_X\n",
            b"Stat,Value\n,1\n",
            b"Stat,Value\nJSTAT X,1\n",
            b"Stat,Value\nJSTAT_X,1,2\n",
        ] {
            assert!(
                parse_stats(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            parse_stats(b""),
            Err(ParseError::Empty { expected: FORMAT })
        );
        assert!(matches!(
            parse_stats(b"JSTAT_X: 1\n"),
            Err(ParseError::Header { .. })
        ));
    }
}
