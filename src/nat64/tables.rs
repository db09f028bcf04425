//! The smaller tables: `pool4 display --csv`, `bib display --numeric --csv` and
//! `global display --csv`.

use super::csv::{column_index, header, Record, Records};
use super::session::Proto;
use super::{clip, text, ParseError};
use serde::Serialize;
use std::net::{Ipv4Addr, Ipv6Addr};

/// One pool4 entry: an address and a port (or ICMP id) range for one protocol and mark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pool4Entry {
    pub mark: u32,
    pub proto: Proto,
    pub address: Ipv4Addr,
    pub min_port: u16,
    pub max_port: u16,
    pub iterations: u32,
    pub iterations_fixed: bool,
}

impl Pool4Entry {
    /// Ports (or ICMP ids) this entry offers.
    pub fn ports(&self) -> u64 {
        u64::from(self.max_port.saturating_sub(self.min_port)) + 1
    }
}

/// One BIB entry: an IPv6 transport address bound to a pool4 transport address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BibEntry {
    pub proto: Proto,
    pub v6_address: Ipv6Addr,
    pub v6_id: u16,
    pub v4_address: Ipv4Addr,
    pub v4_id: u16,
    #[serde(rename = "static")]
    pub is_static: bool,
}

fn field<T: std::str::FromStr>(
    r: &Record<'_>,
    at: usize,
    column: &'static str,
    what: &'static str,
) -> Result<T, ParseError> {
    let raw = r.fields.get(at).map(|f| f.trim()).unwrap_or("");
    // FromStr for integers accepts a leading '+'; Jool never prints one.
    if raw.starts_with('+') {
        return Err(bad(r, column, raw, what));
    }
    raw.parse().map_err(|_| bad(r, column, raw, what))
}

fn bad(r: &Record<'_>, column: &'static str, raw: &str, what: &'static str) -> ParseError {
    ParseError::Field {
        line: r.line,
        column,
        value: clip(raw),
        what,
    }
}

fn flag(r: &Record<'_>, at: usize, column: &'static str) -> Result<bool, ParseError> {
    match r.fields.get(at).map(|f| f.trim()) {
        Some("1") => Ok(true),
        Some("0") => Ok(false),
        other => Err(bad(r, column, other.unwrap_or(""), "0 or 1")),
    }
}

fn proto(r: &Record<'_>, at: usize) -> Result<Proto, ParseError> {
    let raw = r.fields.get(at).map(|f| f.trim()).unwrap_or("");
    Proto::parse(raw).ok_or_else(|| bad(r, "Protocol", raw, "TCP, UDP or ICMP"))
}

fn check_width(r: &Record<'_>, width: usize) -> Result<(), ParseError> {
    if r.fields.len() == width {
        Ok(())
    } else {
        Err(ParseError::FieldCount {
            line: r.line,
            fields: r.fields.len(),
            expected: width,
        })
    }
}

pub fn parse_pool4(bytes: &[u8]) -> Result<Vec<Pool4Entry>, ParseError> {
    const F: &str = "pool4 display --csv";
    let mut records = Records::new(text(bytes)?);
    let head = header(&mut records, F, "Mark")?;
    let names = [
        "Mark",
        "Protocol",
        "Address",
        "Min port",
        "Max port",
        "Iterations",
        "Iterations fixed",
    ];
    let c = column_index(&head, F, &names)?;
    let mut out = Vec::new();
    while let Some(r) = records.next_record()? {
        check_width(&r, head.len())?;
        let e = Pool4Entry {
            mark: field(&r, c[0], "Mark", "a mark (u32)")?,
            proto: proto(&r, c[1])?,
            address: field(&r, c[2], "Address", "an IPv4 address")?,
            min_port: field(&r, c[3], "Min port", "a port")?,
            max_port: field(&r, c[4], "Max port", "a port")?,
            iterations: field(&r, c[5], "Iterations", "a whole number")?,
            iterations_fixed: flag(&r, c[6], "Iterations fixed")?,
        };
        if e.min_port > e.max_port {
            return Err(bad(
                &r,
                "Max port",
                &e.max_port.to_string(),
                "at least Min port",
            ));
        }
        out.push(e);
    }
    Ok(out)
}

pub fn parse_bib(bytes: &[u8]) -> Result<Vec<BibEntry>, ParseError> {
    const F: &str = "bib display --csv";
    let mut records = Records::new(text(bytes)?);
    let head = header(&mut records, F, "Protocol")?;
    let names = [
        "Protocol",
        "IPv6 Address",
        "IPv6 L4-ID",
        "IPv4 Address",
        "IPv4 L4-ID",
        "Static?",
    ];
    let c = column_index(&head, F, &names)?;
    let mut out = Vec::new();
    while let Some(r) = records.next_record()? {
        check_width(&r, head.len())?;
        out.push(BibEntry {
            proto: proto(&r, c[0])?,
            v6_address: field(&r, c[1], "IPv6 Address", "an IPv6 address (use --numeric)")?,
            v6_id: field(&r, c[2], "IPv6 L4-ID", "a port or ICMP id (use --numeric)")?,
            v4_address: field(&r, c[3], "IPv4 Address", "an IPv4 address")?,
            v4_id: field(&r, c[4], "IPv4 L4-ID", "a port or ICMP id")?,
            is_static: flag(&r, c[5], "Static?")?,
        });
    }
    Ok(out)
}

/// `global display --csv`: name and value, values kept as printed (`TRUE`, `2:00:00`,
/// `64:ff9b::/96`, a quoted list), in order.
pub fn parse_globals(bytes: &[u8]) -> Result<Vec<(String, String)>, ParseError> {
    const F: &str = "global display --csv";
    let mut records = Records::new(text(bytes)?);
    let head = header(&mut records, F, "Field")?;
    let c = column_index(&head, F, &["Field", "Value"])?;
    let mut out = Vec::new();
    while let Some(r) = records.next_record()? {
        check_width(&r, head.len())?;
        out.push((
            r.fields[c[0]].trim().to_string(),
            r.fields[c[1]].to_string(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pool4_rejects_bad_rows() {
        let h = "Mark,Protocol,Address,Min port,Max port,Iterations,Iterations fixed\n";
        for row in [
            "0,TCP,192.0.2.1,70000,65535,1024,0",
            "0,SCTP,192.0.2.1,1,2,1024,0",
            "0,TCP,192.0.2.1,9,2,1024,0",
            "0,TCP,192.0.2.1,+1,2,1024,0",
            "0,TCP,192.0.2.1,1,2,1024,2",
            "0,TCP,192.0.2.1,1,2,1024",
        ] {
            assert!(
                parse_pool4(format!("{h}{row}\n").as_bytes()).is_err(),
                "{row}"
            );
        }
        let ok = parse_pool4(format!("{h}7,ICMP,192.0.2.9,0,65535,1024,1\n").as_bytes()).unwrap();
        assert_eq!(ok[0].ports(), 65536);
        assert!(ok[0].iterations_fixed);
    }
}
