//! `jool instance display --csv` (NAT64 instances of every network namespace) and
//! `jool [-i NAME] instance status` (`Running`, `Dead` plus a reason, `Status unknown`).

use super::csv::{column_index, header, Records};
use super::{clip, text, ParseError};
use serde::Serialize;

/// One row of `instance display --csv`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceEntry {
    /// Low 32 bits of the kernel's `struct net` pointer, hex: tells namespaces apart, nothing
    /// more.
    pub namespace: String,
    pub name: String,
    /// `netfilter` or `iptables`.
    pub framework: String,
}

const FORMAT: &str = "instance display --csv";

pub fn parse_instances(bytes: &[u8]) -> Result<Vec<InstanceEntry>, ParseError> {
    let text = text(bytes)?;
    let mut records = Records::new(text);
    let head = header(&mut records, FORMAT, "Namespace")?;
    let cols = column_index(&head, FORMAT, &["Namespace", "Name", "Framework"])?;
    let mut out = Vec::new();
    while let Some(r) = records.next_record()? {
        if r.fields.len() != head.len() {
            return Err(ParseError::FieldCount {
                line: r.line,
                fields: r.fields.len(),
                expected: head.len(),
            });
        }
        let name = r.fields[cols[1]].trim();
        // Jool's limit: 15 printable ASCII characters.
        if name.is_empty() || name.len() > 15 || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ParseError::Field {
                line: r.line,
                column: "Name",
                value: clip(name),
                what: "an instance name (1-15 printable ASCII characters)",
            });
        }
        out.push(InstanceEntry {
            namespace: r.fields[cols[0]].trim().to_string(),
            name: name.to_string(),
            framework: r.fields[cols[2]].trim().to_string(),
        });
    }
    Ok(out)
}

/// What `instance status` says about an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum InstanceStatus {
    /// `Running`: the instance exists and translates.
    Running,
    /// `Dead`: no such instance (or no module); the detail is Jool's explanation line.
    Dead(Option<String>),
    /// `Status unknown`: the client could not ask (see the error it printed).
    Unknown,
    /// Any other first line, kept as printed.
    Other(String),
    /// Not asked yet or the run failed before printing.
    NotRead,
}

impl InstanceStatus {
    pub fn is_running(&self) -> bool {
        matches!(self, InstanceStatus::Running)
    }

    /// One word for the page and the API.
    pub fn label(&self) -> &str {
        match self {
            InstanceStatus::Running => "running",
            InstanceStatus::Dead(_) => "dead",
            InstanceStatus::Unknown => "unknown",
            InstanceStatus::Other(s) => s,
            InstanceStatus::NotRead => "not_read",
        }
    }
}

/// Parses `instance status` stdout. Empty output is an error: Jool always prints a line.
pub fn parse_status(bytes: &[u8]) -> Result<InstanceStatus, ParseError> {
    let text = text(bytes)?;
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().ok_or(ParseError::Empty {
        expected: "instance status",
    })?;
    Ok(match first {
        "Running" => InstanceStatus::Running,
        "Dead" => InstanceStatus::Dead(
            lines
                .next()
                .map(|l| clip(l.trim_start_matches('(').trim_end_matches(')'))),
        ),
        "Status unknown" => InstanceStatus::Unknown,
        other => InstanceStatus::Other(clip(other)),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn status_forms() {
        assert_eq!(parse_status(b"Running\n").unwrap(), InstanceStatus::Running);
        assert_eq!(
            parse_status(b"Status unknown\n").unwrap(),
            InstanceStatus::Unknown
        );
        assert_eq!(
            parse_status(b"Sleeping\n").unwrap(),
            InstanceStatus::Other("Sleeping".into())
        );
        assert!(parse_status(b"").is_err());
        assert!(parse_status(b"\xff\xfe").is_err());
    }

    #[test]
    fn long_names_refused() {
        assert!(
            parse_instances(b"Namespace,Name,Framework\nab,sixteen_chars_xx,netfilter\n").is_err()
        );
        assert!(parse_instances(b"Namespace,Name,Framework\nab,x\n").is_err());
    }
}
