//! The session table of `jool session display --numeric --csv [--tcp|--udp|--icmp]`, kept
//! compact: addresses as numbers, ports as `u16`, state as a one-byte tag, so 100,000 sessions
//! take about 6 MB.
//!
//! Header (Jool 4.1.x, every release):
//! `Protocol,IPv6 Remote Address,IPv6 Remote L4-ID,IPv6 Local Address,IPv6 Local L4-ID,
//! IPv4 Local Address,IPv4 Local L4-ID,IPv4 Remote Address,IPv4 Remote L4-ID,Expires in,State`.
//! UDP and ICMP rows stop before State. Without `--numeric` the client prints service and host
//! names (`https`, `ssh`), which cannot be parsed; such a row is refused with a hint.

use super::{clip, text, ParseError};
use serde::Serialize;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Transport protocol of a session or BIB entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
}

impl Proto {
    pub const ALL: [Proto; 3] = [Proto::Tcp, Proto::Udp, Proto::Icmp];

    /// Lower-case name, as the API and metrics write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
        }
    }

    /// The `jool session display` flag that selects this protocol.
    pub fn flag(self) -> &'static str {
        match self {
            Proto::Tcp => "--tcp",
            Proto::Udp => "--udp",
            Proto::Icmp => "--icmp",
        }
    }

    /// Reads Jool's `TCP`/`UDP`/`ICMP` (and, for API filters, the lower-case forms).
    pub fn parse(s: &str) -> Option<Proto> {
        match s {
            "TCP" | "tcp" => Some(Proto::Tcp),
            "UDP" | "udp" => Some(Proto::Udp),
            "ICMP" | "icmp" => Some(Proto::Icmp),
            _ => None,
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Session state. TCP sessions carry one of Jool's TCP states; UDP and ICMP sessions have none.
/// A state this code does not know is kept by its text in the table (`Other(index)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// UDP and ICMP: Jool tracks no state.
    None,
    Established,
    V4Init,
    V6Init,
    V4FinRcv,
    V6FinRcv,
    V4FinV6FinRcv,
    Trans,
    /// Jool's own `UNKNOWN` (possible in theory).
    Unknown,
    /// Any other text, stored once in [`SessionTable::other_states`].
    Other(u16),
}

impl State {
    /// Known states in the order the API lists them.
    pub const KNOWN: [State; 9] = [
        State::None,
        State::Established,
        State::V4Init,
        State::V6Init,
        State::V4FinRcv,
        State::V6FinRcv,
        State::V4FinV6FinRcv,
        State::Trans,
        State::Unknown,
    ];

    /// Jool's name of a known state (`""` for UDP/ICMP, `None` for `Other`).
    pub fn known_name(self) -> Option<&'static str> {
        Some(match self {
            State::None => "",
            State::Established => "ESTABLISHED",
            State::V4Init => "V4_INIT",
            State::V6Init => "V6_INIT",
            State::V4FinRcv => "V4_FIN_RCV",
            State::V6FinRcv => "V6_FIN_RCV",
            State::V4FinV6FinRcv => "V4_FIN_V6_FIN_RCV",
            State::Trans => "TRANS",
            State::Unknown => "UNKNOWN",
            State::Other(_) => return None,
        })
    }

    fn from_known(s: &str) -> Option<State> {
        // Most TCP sessions are established: one comparison for them.
        if s == "ESTABLISHED" {
            return Some(State::Established);
        }
        Some(match s {
            "" => State::None,
            "ESTABLISHED" => State::Established,
            "V4_INIT" => State::V4Init,
            "V6_INIT" => State::V6Init,
            "V4_FIN_RCV" => State::V4FinRcv,
            "V6_FIN_RCV" => State::V6FinRcv,
            "V4_FIN_V6_FIN_RCV" => State::V4FinV6FinRcv,
            "TRANS" => State::Trans,
            "UNKNOWN" => State::Unknown,
            _ => return None,
        })
    }

    /// Index into per-state arrays: 0..9 for known states.
    pub(crate) fn known_index(self) -> Option<usize> {
        State::KNOWN.iter().position(|&k| k == self)
    }
}

/// One NAT64 session: an IPv6 client talking to an IPv4 server through a pool4 address.
/// Fields mirror Jool's columns; "remote"/"local" are as Jool names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    /// IPv6 Remote Address: the IPv6 client.
    pub v6_remote: u128,
    /// IPv6 Local Address: the server's address inside pool6 (e.g. `64:ff9b::c633:6407`).
    pub v6_local: u128,
    /// IPv4 Local Address: the pool4 address the client is masqueraded as.
    pub v4_local: u32,
    /// IPv4 Remote Address: the IPv4 server.
    pub v4_remote: u32,
    /// Remaining lifetime in milliseconds, relative to when `jool` printed the table.
    pub expires_ms: u64,
    pub v6_remote_id: u16,
    pub v6_local_id: u16,
    pub v4_local_id: u16,
    pub v4_remote_id: u16,
    pub proto: Proto,
    pub state: State,
}

impl Session {
    pub fn client(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.v6_remote)
    }
}

/// Sessions of one instance, all protocols, in the order Jool printed them, plus the text of
/// any state this code does not know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionTable {
    pub sessions: Vec<Session>,
    pub other_states: Vec<Box<str>>,
}

impl SessionTable {
    /// Jool's name for a session's state (`""` for UDP/ICMP).
    pub fn state_name(&self, state: State) -> &str {
        match state {
            State::Other(i) => self
                .other_states
                .get(i as usize)
                .map(|s| &**s)
                .unwrap_or("?"),
            known => known.known_name().unwrap_or("?"),
        }
    }

    /// Appends the rows of one `session display --numeric --csv` output.
    pub fn parse_append(&mut self, bytes: &[u8]) -> Result<(), ParseError> {
        let text = text(bytes)?;
        let mut lines = text.split('\n');
        let header = match lines.next() {
            None | Some("") => return Err(ParseError::Empty { expected: FORMAT }),
            Some(h) => h.strip_suffix('\r').unwrap_or(h),
        };
        let cols = Columns::from_header(header)?;
        self.sessions.reserve(text.len() / 110);
        for (n, line) in lines.enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            let s = self.parse_row(&cols, line, n + 2)?;
            self.sessions.push(s);
        }
        Ok(())
    }

    fn parse_row(
        &mut self,
        cols: &Columns,
        line: &str,
        lineno: usize,
    ) -> Result<Session, ParseError> {
        let mut f: [&str; MAX_COLS] = [""; MAX_COLS];
        let mut n = 0;
        let mut start = 0;
        let bytes = line.as_bytes();
        loop {
            let end = next_comma(bytes, start);
            if n == cols.width {
                return Err(ParseError::FieldCount {
                    line: lineno,
                    fields: line.split(',').count(),
                    expected: cols.width,
                });
            }
            // Splitting at an ASCII comma keeps both sides valid UTF-8.
            f[n] = line.get(start..end).unwrap_or("");
            n += 1;
            if end == bytes.len() {
                break;
            }
            start = end + 1;
        }
        // UDP/ICMP rows lack the trailing State; anything shorter than the needed columns is bad.
        if n < cols.min_fields {
            return Err(ParseError::FieldCount {
                line: lineno,
                fields: n,
                expected: cols.width,
            });
        }
        let bad = |col: usize, what: &'static str| ParseError::Field {
            line: lineno,
            column: NAMES[col],
            value: clip(f[cols.at[col]]),
            what,
        };
        let proto =
            Proto::parse(f[cols.at[C_PROTO]]).ok_or_else(|| bad(C_PROTO, "TCP, UDP or ICMP"))?;
        let v6 = |col: usize| -> Result<u128, ParseError> {
            parse_ipv6(f[cols.at[col]])
                .ok_or(())
                .map_err(|_| bad(col, "an IPv6 address (names mean --numeric was left out)"))
        };
        let v4 = |col: usize| -> Result<u32, ParseError> {
            parse_ipv4(f[cols.at[col]])
                .ok_or(())
                .map_err(|_| bad(col, "an IPv4 address (names mean --numeric was left out)"))
        };
        let id = |col: usize| -> Result<u16, ParseError> {
            parse_u16(f[cols.at[col]]).ok_or_else(|| {
                bad(
                    col,
                    "a port or ICMP id (names such as `https` mean --numeric was left out)",
                )
            })
        };
        let expires_ms = parse_expires(f[cols.at[C_EXPIRES]])
            .ok_or_else(|| bad(C_EXPIRES, "a time as H:MM:SS or H:MM:SS.mmm"))?;
        let state_text = match cols.at.get(C_STATE) {
            Some(&i) if i < n => f[i],
            _ => "",
        };
        let state = match State::from_known(state_text) {
            Some(s) => s,
            None => self.intern_state(state_text, lineno)?,
        };
        Ok(Session {
            v6_remote: v6(C_V6R)?,
            v6_local: v6(C_V6L)?,
            v4_local: v4(C_V4L)?,
            v4_remote: v4(C_V4R)?,
            expires_ms,
            v6_remote_id: id(C_V6R_ID)?,
            v6_local_id: id(C_V6L_ID)?,
            v4_local_id: id(C_V4L_ID)?,
            v4_remote_id: id(C_V4R_ID)?,
            proto,
            state,
        })
    }

    fn intern_state(&mut self, s: &str, line: usize) -> Result<State, ParseError> {
        if let Some(i) = self.other_states.iter().position(|o| &**o == s) {
            return Ok(State::Other(i as u16));
        }
        let i = u16::try_from(self.other_states.len())
            .map_err(|_| ParseError::TooManyStates { line })?;
        self.other_states.push(clip(s).into_boxed_str());
        Ok(State::Other(i))
    }
}

/// Parses one `session display --numeric --csv` output on its own.
pub fn parse_sessions(bytes: &[u8]) -> Result<SessionTable, ParseError> {
    let mut t = SessionTable::default();
    t.parse_append(bytes)?;
    Ok(t)
}

const FORMAT: &str = "session display --csv";
const MAX_COLS: usize = 16;
const NAMES: [&str; 11] = [
    "Protocol",
    "IPv6 Remote Address",
    "IPv6 Remote L4-ID",
    "IPv6 Local Address",
    "IPv6 Local L4-ID",
    "IPv4 Local Address",
    "IPv4 Local L4-ID",
    "IPv4 Remote Address",
    "IPv4 Remote L4-ID",
    "Expires in",
    "State",
];
const C_PROTO: usize = 0;
const C_V6R: usize = 1;
const C_V6R_ID: usize = 2;
const C_V6L: usize = 3;
const C_V6L_ID: usize = 4;
const C_V4L: usize = 5;
const C_V4L_ID: usize = 6;
const C_V4R: usize = 7;
const C_V4R_ID: usize = 8;
const C_EXPIRES: usize = 9;
const C_STATE: usize = 10;

/// Where each needed column sits in this output's header.
struct Columns {
    at: [usize; 11],
    width: usize,
    /// Fields a row needs at least: every column but State must be present.
    min_fields: usize,
}

impl Columns {
    fn from_header(header: &str) -> Result<Columns, ParseError> {
        let names: Vec<&str> = header.split(',').map(str::trim).collect();
        if names.first() != Some(&"Protocol") || names.len() > MAX_COLS {
            return Err(ParseError::Header {
                expected: FORMAT,
                found: clip(header),
            });
        }
        let mut at = [0; 11];
        for (k, name) in NAMES.iter().enumerate() {
            at[k] = names
                .iter()
                .position(|h| h == name)
                .ok_or(ParseError::MissingColumn {
                    format: FORMAT,
                    column: name,
                })?;
        }
        let min_fields = at[..C_STATE].iter().max().map_or(0, |m| m + 1);
        Ok(Columns {
            at,
            width: names.len(),
            min_fields,
        })
    }
}

/// An IPv6 address as `inet_ntop` prints it, fast: hex groups with at most one `::`. Any
/// other form (embedded IPv4, odd input) goes to the standard parser, so the result is always
/// exactly what `Ipv6Addr::from_str` gives (the `jool_ipv6` fuzz target checks this).
pub fn parse_ipv6(s: &str) -> Option<u128> {
    fast_ipv6(s.as_bytes()).or_else(|| s.parse::<Ipv6Addr>().ok().map(u128::from))
}

fn fast_ipv6(b: &[u8]) -> Option<u128> {
    if b.len() < 2 || b.len() > 39 {
        return None;
    }
    // Groups before the `::` accumulate in `head`, after it in `tail`; no arrays, no copies.
    let (mut head, mut tail) = (0u128, 0u128);
    let (mut nh, mut nt) = (0u32, 0u32);
    let mut gap = false;
    let mut i = 0;
    if b[0] == b':' {
        if b[1] != b':' {
            return None;
        }
        gap = true;
        i = 2;
    }
    while i < b.len() {
        let mut v: u32 = 0;
        let start = i;
        while i < b.len() && i - start < 4 {
            let c = b[i];
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => break,
            };
            v = (v << 4) | u32::from(d);
            i += 1;
        }
        if i == start {
            return None;
        }
        if gap {
            tail = (tail << 16) | u128::from(v);
            nt += 1;
        } else {
            head = (head << 16) | u128::from(v);
            nh += 1;
        }
        if nh + nt > 8 {
            return None;
        }
        if i == b.len() {
            break;
        }
        if b[i] != b':' {
            return None; // '.', a fifth hex digit, anything else: let std decide
        }
        i += 1;
        if i == b.len() {
            return None;
        }
        if b[i] == b':' {
            if gap {
                return None;
            }
            gap = true;
            i += 1;
        }
    }
    if (!gap && nh != 8) || (gap && nh + nt > 7) {
        return None;
    }
    Some(match (gap, nh) {
        (false, _) => head,
        (true, 0) => tail,
        // 1 <= nh <= 7 here, so the shift is 16..=112 bits.
        (true, _) => (head << (16 * (8 - nh))) | tail,
    })
}

/// A dotted-quad IPv4 address, fast, with the standard parser as the judge of anything odd.
pub fn parse_ipv4(s: &str) -> Option<u32> {
    fast_ipv4(s.as_bytes()).or_else(|| s.parse::<Ipv4Addr>().ok().map(u32::from))
}

fn fast_ipv4(b: &[u8]) -> Option<u32> {
    let mut out: u32 = 0;
    let mut i = 0;
    for k in 0..4 {
        let start = i;
        let mut v: u32 = 0;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 3 {
            v = v * 10 + u32::from(b[i] - b'0');
            i += 1;
        }
        let len = i - start;
        // No digits, over 255, or a leading zero (std refuses those): not the fast path.
        if len == 0 || v > 255 || (len > 1 && b[start] == b'0') {
            return None;
        }
        out = (out << 8) | v;
        if k < 3 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
    }
    (i == b.len()).then_some(out)
}

/// Index of the first `,` at or after `from`, or `b.len()`. Eight bytes at a time (fields
/// average ten bytes, and a byte loop here was the largest cost of parsing a big table).
fn next_comma(b: &[u8], from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const COMMAS: u64 = 0x2c2c_2c2c_2c2c_2c2c;
    let mut i = from;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let x = u64::from_le_bytes(w) ^ COMMAS;
        // A zero byte in x is a comma; the lowest flagged byte is always a true one.
        let found = x.wrapping_sub(ONES) & !x & HIGHS;
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    b.get(i..)
        .and_then(|rest| rest.iter().position(|&c| c == b','))
        .map_or(b.len(), |p| i + p)
}

/// Decimal `u16` with no sign, no spaces, no leading `+`.
fn parse_u16(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 {
        return None;
    }
    let mut v: u32 = 0;
    for b in s.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(b - b'0');
    }
    u16::try_from(v).ok()
}

/// Jool's `timeout2str`: `H:MM:SS` or `H:MM:SS.mmm`, hours unpadded (at most 9 digits here).
pub fn parse_expires(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let colon = b.iter().position(|&c| c == b':')?;
    if colon == 0 || colon > 9 {
        return None;
    }
    let mut h: u64 = 0;
    for &c in &b[..colon] {
        if !c.is_ascii_digit() {
            return None;
        }
        h = h * 10 + u64::from(c - b'0');
    }
    // After the hours: ":MM:SS" and optionally ".mmm".
    let rest = &b[colon..];
    let two = |x: &[u8]| -> Option<u64> {
        match x {
            [a @ b'0'..=b'5', d @ b'0'..=b'9'] => {
                Some(u64::from(a - b'0') * 10 + u64::from(d - b'0'))
            }
            _ => None,
        }
    };
    let (m, sec, ms) = match rest.len() {
        6 | 10 if rest[0] == b':' && rest[3] == b':' => {
            let ms = if rest.len() == 10 {
                if rest[6] != b'.' {
                    return None;
                }
                let mut v = 0u64;
                for &c in &rest[7..10] {
                    if !c.is_ascii_digit() {
                        return None;
                    }
                    v = v * 10 + u64::from(c - b'0');
                }
                v
            } else {
                0
            };
            (two(&rest[1..3])?, two(&rest[4..6])?, ms)
        }
        _ => return None,
    };
    Some(((h * 60 + m) * 60 + sec) * 1000 + ms)
}

/// Formats milliseconds the way Jool prints them, for the API and the page.
pub fn format_expires(ms: u64) -> String {
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, milli) = (rest / 1000, rest % 1000);
    if milli == 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{h}:{m:02}:{s:02}.{milli:03}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn expires_round_trip() {
        for (s, ms) in [
            ("1:59:57.328", 7_197_328),
            ("0:00:02", 2_000),
            ("12:00:00.004", 43_200_004),
            ("0:00:00", 0),
        ] {
            assert_eq!(parse_expires(s), Some(ms), "{s}");
            assert_eq!(format_expires(ms), s);
        }
        for bad in [
            "",
            "1:2:03",
            "1:60:00",
            "a:00:00",
            "0:00:00.5",
            "0:00:00.",
            "1:00",
            "0:00:00:00",
            "-1:00:00",
        ] {
            assert_eq!(parse_expires(bad), None, "{bad}");
        }
    }

    #[test]
    fn fast_address_parsers_agree_with_std() {
        for a in [
            "2001:db8:100::1a",
            "::",
            "::1",
            "1::",
            "64:ff9b::c633:6407",
            "1:2:3:4:5:6:7:8",
            "2001:db8:100:0:5054:ff:fe12:3456",
            "::ffff:192.0.2.1",
            "64:ff9b::192.0.2.1",
            "1::2:3:4:5:6:7",
            "1:2:3:4:5:6:7::",
            "FFFF::ABCD",
        ] {
            assert_eq!(
                parse_ipv6(a),
                Some(u128::from(a.parse::<Ipv6Addr>().unwrap())),
                "{a}"
            );
        }
        for bad in [
            "",
            ":",
            ":::",
            "1:2:3:4:5:6:7:8:9",
            "1::2::3",
            "12345::",
            "1:2:3:4:5:6:7:8::",
            "::1:2:3:4:5:6:7:8",
            "1:",
            "g::",
            "https",
            "1.2.3.4",
            "1:2:3:4:5:6:7",
        ] {
            assert_eq!(parse_ipv6(bad), None, "{bad}");
            assert!(bad.parse::<Ipv6Addr>().is_err(), "{bad}");
        }
        for a in ["192.0.2.1", "0.0.0.0", "255.255.255.255", "198.51.100.53"] {
            assert_eq!(
                parse_ipv4(a),
                Some(u32::from(a.parse::<Ipv4Addr>().unwrap())),
                "{a}"
            );
        }
        for bad in [
            "",
            "1.2.3",
            "1.2.3.4.5",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3.4 ",
            "a.b.c.d",
            "1..2.3",
        ] {
            assert_eq!(parse_ipv4(bad), None, "{bad}");
        }
    }

    #[test]
    fn comma_search_matches_a_byte_loop() {
        let text = "a,bb,,ccccccccccccccccccc,d,\u{e9}\u{e9}\u{e9}\u{e9},ffffffff,,";
        let b = text.as_bytes();
        for from in 0..=b.len() {
            let want = b[from..]
                .iter()
                .position(|&c| c == b',')
                .map_or(b.len(), |p| from + p);
            assert_eq!(next_comma(b, from), want, "from {from}");
        }
        let mut all = [b'x'; 40];
        for k in 0..40 {
            all[k] = b',';
            assert_eq!(next_comma(&all, 0), k);
            all[k] = 0x2d; // '-' (one above ',') must not match
            assert_eq!(next_comma(&all, 0), 40);
            all[k] = 0xac; // ',' with the high bit set must not match
            assert_eq!(next_comma(&all, 0), 40);
            all[k] = b'x';
        }
    }

    #[test]
    fn u16_strict() {
        assert_eq!(parse_u16("65535"), Some(65535));
        assert_eq!(parse_u16("0"), Some(0));
        for bad in ["65536", "", "+1", "-1", " 1", "https", "100000"] {
            assert_eq!(parse_u16(bad), None, "{bad}");
        }
    }

    #[test]
    fn columns_found_by_name_not_position() {
        // Same data, columns shuffled and an extra column a future Jool might add.
        let text = "Protocol,State,Extra,Expires in,IPv4 Remote L4-ID,IPv4 Remote Address,IPv4 Local L4-ID,IPv4 Local Address,IPv6 Local L4-ID,IPv6 Local Address,IPv6 Remote L4-ID,IPv6 Remote Address\n\
                    TCP,ESTABLISHED,x,0:00:01,443,198.51.100.7,61024,192.0.2.1,443,64:ff9b::c633:6407,50234,2001:db8:100::1a\n";
        let t = parse_sessions(text.as_bytes()).unwrap();
        assert_eq!(t.sessions.len(), 1);
        let s = t.sessions[0];
        assert_eq!(s.client(), "2001:db8:100::1a".parse::<Ipv6Addr>().unwrap());
        assert_eq!(s.v4_remote_id, 443);
        assert_eq!(s.v6_remote_id, 50234);
        assert_eq!(s.state, State::Established);
        assert_eq!(s.expires_ms, 1000);
    }

    #[test]
    fn unknown_state_is_kept() {
        let text = "Protocol,IPv6 Remote Address,IPv6 Remote L4-ID,IPv6 Local Address,IPv6 Local L4-ID,IPv4 Local Address,IPv4 Local L4-ID,IPv4 Remote Address,IPv4 Remote L4-ID,Expires in,State\n\
            TCP,::1,1,64:ff9b::1,2,192.0.2.1,3,0.0.0.1,4,0:00:01,SOMETHING_NEW\n\
            TCP,::1,1,64:ff9b::1,2,192.0.2.1,5,0.0.0.1,4,0:00:01,SOMETHING_NEW\n\
            TCP,::1,1,64:ff9b::1,2,192.0.2.1,6,0.0.0.1,4,0:00:01,UNKNOWN\n";
        let t = parse_sessions(text.as_bytes()).unwrap();
        assert_eq!(t.sessions[0].state, State::Other(0));
        assert_eq!(t.sessions[1].state, State::Other(0));
        assert_eq!(t.state_name(t.sessions[1].state), "SOMETHING_NEW");
        assert_eq!(t.sessions[2].state, State::Unknown);
        assert_eq!(t.other_states.len(), 1);
    }

    #[test]
    fn session_is_compact() {
        assert!(
            std::mem::size_of::<Session>() <= 64,
            "{}",
            std::mem::size_of::<Session>()
        );
    }
}
