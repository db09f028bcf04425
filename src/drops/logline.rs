//! Kernel packet-log lines, as written by nftables `log` rules (and iptables `LOG`) through
//! the kernel's syslog logger and printed by syslog, `journalctl -k` or `dmesg`:
//!
//! ```text
//! Jan  3 05:03:21 home2 kernel: nft-dropped: IN=astound OUT= MAC=66:69:69:69:69:69:6c:9c:ed:92:00:26:08:00 SRC=79.124.56.246 DST=207.229.169.25 LEN=40 TOS=0x00 PREC=0x00 TTL=239 ID=47457 PROTO=TCP SPT=56038 DPT=6961 WINDOW=1024 RES=0x00 SYN URGP=0
//! [12345.678901] nft-dropped: IN=eth0 OUT= ... (dmesg)
//! 2026-01-03T05:03:21.123456+00:00 home2 kernel: nft-dropped: IN=... (rsyslog RFC 3339)
//! ```
//!
//! The layout follows the kernel's `nf_log_syslog.c`: the prefix is printed immediately
//! before `IN=`, then `OUT=`, the link header (`MAC=` or, with `flags ether`,
//! `MACSRC=/MACDST=/MACPROTO=`), the IP header, then the transport fields. Fields inside
//! `[...]` (the packet quoted by an ICMP error) belong to another packet and are skipped.
//! Unknown fields are ignored; a known field with a value that does not parse is an error,
//! since it means a cut or corrupted line.

use super::{DropEvent, IfName, Mac, Proto, TcpFlags};
use std::net::{IpAddr, Ipv4Addr};

/// A parsed kernel log line: the syslog envelope and the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine<'a> {
    /// When the line was logged, if the line carries a timestamp this parser knows.
    pub time: Option<Timestamp>,
    /// The syslog hostname (`home1`), absent in `dmesg` output.
    pub host: Option<&'a str>,
    pub event: DropEvent<'a>,
}

/// A log timestamp. Syslog's classic form has no year, `dmesg` counts from boot, so the
/// three kinds are only comparable among themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timestamp {
    /// Unix time in milliseconds (RFC 3339 syslog, `journalctl -o short-iso`, `dmesg -T`).
    Unix(i64),
    /// Milliseconds since 1 January 00:00 of an unknown year (`Jan  3 04:18:26`).
    Yearless(i64),
    /// Milliseconds since boot (`[12345.678901]`).
    Boot(i64),
}

impl Timestamp {
    /// Milliseconds from `self` to `later`, if both are of the same kind. A yearless pair that
    /// goes backwards is taken to cross New Year.
    pub fn millis_until(self, later: Timestamp) -> Option<i64> {
        match (self, later) {
            (Timestamp::Unix(a), Timestamp::Unix(b)) | (Timestamp::Boot(a), Timestamp::Boot(b)) => {
                Some(b - a)
            }
            (Timestamp::Yearless(a), Timestamp::Yearless(b)) => Some(if b >= a {
                b - a
            } else {
                b + 365 * 86_400_000 - a
            }),
            _ => None,
        }
    }
}

/// Why a line is not a packet record this parser can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogLineError {
    /// The line has no `IN=... OUT=` pair: it is some other kernel message. Not an error for
    /// a whole `kern.log`, which holds many of those; `analyze` counts them apart.
    #[error("not a packet log line (no IN=... OUT=)")]
    NotPacketLog,
    /// A known field has a value that does not parse: the line was probably cut short or
    /// corrupted on its way to the log.
    #[error("bad {field}= value {value:?}")]
    BadValue { field: String, value: String },
}

/// Parses one line (without its newline).
#[inline]
pub fn parse(line: &str) -> Result<LogLine<'_>, LogLineError> {
    let in_pos = find_in_field(line).ok_or(LogLineError::NotPacketLog)?;
    let (time, host, prefix) = parse_header(&line[..in_pos]);
    let mut ev = DropEvent::empty(prefix);
    parse_fields(&line[in_pos..], &mut ev)?;
    Ok(LogLine {
        time,
        host,
        event: ev,
    })
}

/// Every occurrence of `needle` in `hay`, in order, found by scanning for its last byte (an
/// `=` or `:`, rare in the few dozen bytes before the packet fields) eight bytes at a time.
/// For haystacks this short a general substring searcher spends more on its set-up per call
/// than on the search. The needles here cannot overlap themselves, so these are exactly the
/// matches `memmem::find_iter` gives (tested).
#[inline]
fn find_iter_by_last<'h>(hay: &'h [u8], needle: &'static [u8]) -> impl Iterator<Item = usize> + 'h {
    let (last, head) = match needle.split_last() {
        Some((l, h)) => (*l, h),
        None => (0, &[][..]),
    };
    let mut i = head.len();
    std::iter::from_fn(move || {
        while i < hay.len() {
            let end = find_byte(hay, i, last);
            if end >= hay.len() {
                i = end;
                return None;
            }
            i = end + 1;
            let start = end - head.len();
            if &hay[start..end] == head {
                return Some(start);
            }
        }
        None
    })
}

/// Position of the `IN=` that starts the packet fields: the first one followed by ` OUT=`.
#[inline]
fn find_in_field(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    for pos in find_iter_by_last(bytes, b"IN=") {
        let after = &bytes[pos + 3..];
        let sp = memchr::memchr(b' ', after).unwrap_or(after.len());
        if after[sp..].starts_with(b" OUT=") {
            return Some(pos);
        }
    }
    None
}

/// Splits what comes before `IN=` into timestamp, hostname and log prefix.
#[inline]
fn parse_header(mut s: &str) -> (Option<Timestamp>, Option<&str>, &str) {
    // `dmesg -r` and /dev/kmsg style priority: `<4>`.
    if let Some(rest) = s.strip_prefix('<') {
        if let Some(end) = rest.find('>') {
            if end <= 3 && rest[..end].bytes().all(|b| b.is_ascii_digit()) {
                s = &rest[end + 1..];
            }
        }
    }
    let mut time = None;
    if let Some((t, rest)) = leading_timestamp(s) {
        time = Some(t);
        s = rest;
    }
    let mut host = None;
    if let Some(k) = find_iter_by_last(s.as_bytes(), b"kernel:").next() {
        let h = s[..k].trim();
        // The hostname is one word; anything else before `kernel:` means this `kernel:` is
        // part of the prefix, not the syslog tag.
        if !h.contains(' ') {
            host = (!h.is_empty()).then_some(h);
            s = &s[k + 7..];
            s = s.strip_prefix(' ').unwrap_or(s);
            if let Some((Timestamp::Boot(b), rest)) =
                s.starts_with('[').then(|| bracket_timestamp(s)).flatten()
            {
                // `kernel: [ 123.456] prefix`: older syslog setups keep the kernel's stamp.
                if time.is_none() {
                    time = Some(Timestamp::Boot(b));
                }
                s = rest;
            }
        }
    }
    (time, host, s)
}

/// A timestamp at the start of `s` and the rest after it (and one space).
#[inline]
fn leading_timestamp(s: &str) -> Option<(Timestamp, &str)> {
    let b = s.as_bytes();
    if b.first() == Some(&b'[') {
        return bracket_timestamp(s);
    }
    if b.len() >= 19 && b[4] == b'-' && b[10] == b'T' && b[0].is_ascii_digit() {
        let end = s.find(' ').unwrap_or(s.len());
        let t = parse_iso(&s[..end])?;
        return Some((Timestamp::Unix(t), s.get(end + 1..).unwrap_or("")));
    }
    if b.len() >= 15 && b[3] == b' ' {
        let month = month_index(s.get(..3)?)?;
        // Day of month: ` 3` (syslog) or `03` (journalctl).
        let day = two_digits(if b[4] == b' ' { b'0' } else { b[4] }, b[5])?;
        let secs = parse_hms(s.get(7..15)?)?;
        let ms =
            (i64::from(DAYS_BEFORE_MONTH[month as usize]) + day - 1) * 86_400_000 + secs * 1000;
        return Some((Timestamp::Yearless(ms), s.get(16..).unwrap_or("")));
    }
    None
}

/// `[12345.678901] rest` (boot time) or `[Sat Jan  3 04:18:26 2026] rest` (`dmesg -T`).
fn bracket_timestamp(s: &str) -> Option<(Timestamp, &str)> {
    let inner_end = s.find(']')?;
    let inner = s.get(1..inner_end)?.trim();
    let rest = s[inner_end + 1..]
        .strip_prefix(' ')
        .unwrap_or(&s[inner_end + 1..]);
    if let Some((secs, frac)) = inner.split_once('.') {
        if let Ok(secs) = secs.parse::<i64>() {
            if frac.len() <= 9 && frac.bytes().all(|b| b.is_ascii_digit()) {
                let ms = frac.get(..3.min(frac.len())).unwrap_or("0");
                let scale = [100, 10, 1][ms.len().saturating_sub(1).min(2)];
                let ms: i64 = ms.parse().unwrap_or(0) * scale;
                return Some((Timestamp::Boot(secs.saturating_mul(1000) + ms), rest));
            }
        }
        return None;
    }
    // dmesg -T: `Sat Jan  3 04:18:26 2026` (local time, taken as given).
    let mut parts = inner.split_ascii_whitespace();
    let _weekday = parts.next()?;
    let month = month_index(parts.next()?)?;
    let day: i64 = parts.next()?.parse().ok()?;
    let secs = parse_hms(parts.next()?)?;
    let year: i64 = parts.next()?.parse().ok()?;
    let days = days_from_civil(year, month + 1, day)?;
    Some((Timestamp::Unix((days * 86_400 + secs) * 1000), rest))
}

const DAYS_BEFORE_MONTH: [u16; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];

fn month_index(m: &str) -> Option<i64> {
    const MONTHS: [u64; 12] = [
        packed(b"Jan"),
        packed(b"Feb"),
        packed(b"Mar"),
        packed(b"Apr"),
        packed(b"May"),
        packed(b"Jun"),
        packed(b"Jul"),
        packed(b"Aug"),
        packed(b"Sep"),
        packed(b"Oct"),
        packed(b"Nov"),
        packed(b"Dec"),
    ];
    if m.len() != 3 {
        return None;
    }
    let k = packed(m.as_bytes());
    MONTHS.iter().position(|x| *x == k).map(|i| i as i64)
}

/// `04:18:26` -> seconds of the day.
#[inline]
fn parse_hms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let n = |i: usize| two_digits(b[i], b[i + 1]);
    let (h, m, sec) = (n(0)?, n(3)?, n(6)?);
    (h < 24 && m < 60 && sec < 61).then_some(h * 3600 + m * 60 + sec)
}

#[inline]
fn two_digits(a: u8, b: u8) -> Option<i64> {
    let (a, b) = (a.wrapping_sub(b'0'), b.wrapping_sub(b'0'));
    (a < 10 && b < 10).then(|| i64::from(a) * 10 + i64::from(b))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> Option<i64> {
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// `2026-01-03T04:18:26[.frac](Z|+hh:mm|+hhmm)` (also `,` before the fraction, as
/// `dmesg --time-format iso` writes it) -> Unix milliseconds.
fn parse_iso(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let year: i64 = s.get(0..4)?.parse().ok()?;
    let month: i64 = s.get(5..7)?.parse().ok()?;
    let day: i64 = s.get(8..10)?.parse().ok()?;
    let secs = parse_hms(s.get(11..19)?)?;
    let mut rest = &s[19..];
    let mut ms = 0i64;
    if let Some(frac) = rest.strip_prefix('.').or_else(|| rest.strip_prefix(',')) {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        let digits = &frac[..n];
        let head = digits.get(..3.min(n)).unwrap_or("");
        if !head.is_empty() {
            ms = head.parse::<i64>().ok()? * [100, 10, 1][head.len() - 1];
        }
        rest = &frac[n..];
    }
    let offset_secs = match rest.as_bytes().first() {
        None | Some(b'Z') => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let digits: String = rest[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 {
                return None;
            }
            let h: i64 = digits.get(..2)?.parse().ok()?;
            let m: i64 = digits.get(2..)?.parse().ok()?;
            let off = h * 3600 + m * 60;
            if sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day)?;
    Some((days * 86_400 + secs - offset_secs) * 1000 + ms)
}

/// Fields and values are byte slices cut at ASCII separators of a `str`, so they are UTF-8;
/// the lossy conversion only runs for the report, never on the fast path.
#[cold]
fn bad(field: &[u8], value: &[u8]) -> LogLineError {
    LogLineError::BadValue {
        field: String::from_utf8_lossy(field).into_owned(),
        value: String::from_utf8_lossy(value).into_owned(),
    }
}

/// Decimal without sign, as the kernel prints it; anything else (or overflow) is an error.
#[inline]
fn num<T: TryFrom<u64>>(field: &[u8], value: &[u8]) -> Result<T, LogLineError> {
    let b = value;
    if b.is_empty() || b.len() > 10 {
        return Err(bad(field, value));
    }
    let mut n: u64 = 0;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return Err(bad(field, value));
        }
        n = n * 10 + u64::from(d);
    }
    T::try_from(n).map_err(|_| bad(field, value))
}

/// `a.b.c.d` with one to three digits per octet (leading zeros allowed, as before), octet by
/// octet: a couple of branches per octet instead of several per byte.
#[inline]
fn dotted_quad(b: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut p = 0;
    let digit = |p: usize| b.get(p).map(|c| c.wrapping_sub(b'0')).filter(|d| *d < 10);
    for (i, o) in octets.iter_mut().enumerate() {
        if i > 0 {
            if b.get(p) != Some(&b'.') {
                return None;
            }
            p += 1;
        }
        let mut v = u16::from(digit(p)?);
        p += 1;
        for _ in 0..2 {
            match digit(p) {
                Some(d) => {
                    v = v * 10 + u16::from(d);
                    p += 1;
                }
                None => break,
            }
        }
        *o = u8::try_from(v).ok()?;
    }
    (p == b.len()).then(|| Ipv4Addr::from(octets))
}

/// Dotted quad fast path (the common case by far), anything else through std's parser.
#[inline]
fn addr(field: &[u8], value: &[u8]) -> Result<IpAddr, LogLineError> {
    let b = value;
    if b.len() <= 15 {
        if let Some(v4) = dotted_quad(b) {
            return Ok(IpAddr::V4(v4));
        }
        if !b.contains(&b':') {
            return Err(bad(field, value));
        }
    }
    // The kernel prints IPv6 in full (%pI6): eight groups of four hex digits.
    if let Ok(full) = <&[u8; 39]>::try_from(b) {
        // Bit 7 collects every failure (a non-digit's 0xff, a wrong separator), checked once.
        let mut fail = 0u8;
        let mut groups = [0u16; 8];
        for (g, out) in groups.iter_mut().enumerate() {
            let c = &full[g * 5..g * 5 + 4];
            let n = c.iter().map(|&x| HEX[usize::from(x)]);
            let mut v = 0u16;
            for d in n {
                fail |= d;
                v = v << 4 | u16::from(d & 0x0f);
            }
            *out = v;
            if g < 7 {
                fail |= u8::from(full[g * 5 + 4] != b':') << 7;
            }
        }
        if fail & 0x80 == 0 {
            return Ok(IpAddr::V6(std::net::Ipv6Addr::from(groups)));
        }
    }
    std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| bad(field, value))
}

/// Hex digit values, 0xff for anything else: one load per digit instead of three ranges.
static HEX: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => 0xff,
        };
        i += 1;
    }
    t
};

/// `aa:bb:...` into `out`; returns how many bytes the text holds (may exceed `out.len()`,
/// the extra bytes are checked but not stored). On error `out` holds garbage.
#[inline]
fn hex_bytes(field: &[u8], value: &[u8], out: &mut [u8]) -> Result<usize, LogLineError> {
    let b = value;
    if b.len() % 3 != 2 {
        return Err(bad(field, value));
    }
    // Bit 7 collects every failure (a non-digit's 0xff, a wrong separator), checked once at
    // the end instead of a branch per byte.
    let mut fail = 0u8;
    let mut n = 0;
    for (i, pair) in b.chunks(3).enumerate() {
        let (hi, lo) = (HEX[usize::from(pair[0])], HEX[usize::from(pair[1])]);
        fail |= hi | lo;
        if pair.len() == 3 {
            fail |= u8::from(pair[2] != b':') << 7;
        }
        if let Some(slot) = out.get_mut(i) {
            *slot = hi << 4 | lo;
        }
        n += 1;
    }
    if fail & 0x80 != 0 {
        return Err(bad(field, value));
    }
    Ok(n)
}

#[inline]
fn mac(field: &[u8], value: &[u8]) -> Result<Mac, LogLineError> {
    let mut out = [0u8; 6];
    if hex_bytes(field, value, &mut out)? != 6 {
        return Err(bad(field, value));
    }
    Ok(Mac(out))
}

/// `MAC=dst:src:type` as the kernel prints an Ethernet header without `flags ether`; other
/// link layers (or none: `MAC=`) are left undecoded.
#[inline]
fn raw_mac_header(value: &[u8], ev: &mut DropEvent<'_>) -> Result<(), LogLineError> {
    if value.is_empty() {
        return Ok(());
    }
    let mut bytes = [0u8; 14];
    if hex_bytes(b"MAC", value, &mut bytes)? == 14 {
        let mut dst = [0u8; 6];
        let mut src = [0u8; 6];
        dst.copy_from_slice(&bytes[..6]);
        src.copy_from_slice(&bytes[6..12]);
        ev.mac_dst = Some(Mac(dst));
        ev.mac_src = Some(Mac(src));
        ev.ethertype = Some(u16::from_be_bytes([bytes[12], bytes[13]]));
    }
    Ok(())
}

/// The interface name `s[from..to]`.
#[inline]
fn ifname(s: &str, from: usize, to: usize) -> IfName {
    let bytes = s.as_bytes();
    IfName::from_line(&bytes[from..], to - from).unwrap_or_else(|| IfName::new(&s[from..to]))
}

/// Reads the `KEY=value` and flag tokens from `IN=` on.
#[inline]
fn parse_fields<'a>(s: &'a str, ev: &mut DropEvent<'a>) -> Result<(), LogLineError> {
    let bytes = s.as_bytes();
    let mut depth = 0usize; // inside `[...]`: a quoted inner packet, not ours
    let mut ip_len_seen = false;
    let mut arp = false;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b' ' {
            i += 1;
            continue;
        }
        // Tokens are short: eight bytes at a time beats both a byte loop and a vectorised
        // search here (measured).
        let start = i;
        let (sp, eq) = find_space_and_eq(bytes, start);
        i = sp;
        let eq = Some(eq).filter(|e| *e < i);
        // Tokens, keys and values stay byte slices: a `str` slice checks char boundaries at
        // both ends, three times per token. Cut at ASCII bytes, they are UTF-8 anyway.
        let tok = &bytes[start..i];
        if depth > 0 || bytes[start] == b'[' {
            for &b in tok {
                match b {
                    b'[' => depth += 1,
                    b']' => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
            continue;
        }
        let Some(eq) = eq else {
            if packed_at(bytes, start, i - start) == K_ARP {
                arp = true;
                ev.proto = Some(Proto::Arp);
            } else if ev.proto == Some(Proto::Tcp) {
                if let Some(bit) = TcpFlags::bit(tok) {
                    ev.tcp_flags.get_or_insert(TcpFlags(0)).0 |= bit;
                }
            }
            continue;
        };
        let key = &bytes[start..eq];
        let value = &bytes[eq + 1..i];
        // Keys are compared as one integer each: no string comparison per candidate.
        match packed_at(bytes, start, eq - start) {
            K_IN => ev.in_iface = ifname(s, eq + 1, i),
            K_OUT => ev.out_iface = ifname(s, eq + 1, i),
            K_MAC => raw_mac_header(value, ev)?,
            K_MACSRC => ev.mac_src = Some(mac(key, value)?),
            K_MACDST => ev.mac_dst = Some(mac(key, value)?),
            K_MACPROTO => {
                ev.ethertype = Some(
                    std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| u16::from_str_radix(v, 16).ok())
                        .ok_or_else(|| bad(key, value))?,
                )
            }
            K_SRC if ev.src.is_none() => ev.src = Some(addr(key, value)?),
            K_DST if ev.dst.is_none() => ev.dst = Some(addr(key, value)?),
            K_IPSRC if arp => ev.src = Some(addr(key, value)?),
            K_IPDST if arp => ev.dst = Some(addr(key, value)?),
            // The first LEN is the IP length; UDP repeats LEN= for its own header.
            K_LEN if !ip_len_seen => {
                ev.len = num(key, value)?;
                ip_len_seen = true;
            }
            K_TTL | K_HOPLIMIT => ev.ttl = Some(num(key, value)?),
            K_PROTO if ev.proto.is_none() => {
                ev.proto = Some(
                    std::str::from_utf8(value)
                        .ok()
                        .and_then(Proto::from_log_name)
                        .ok_or_else(|| bad(key, value))?,
                );
                if ev.proto == Some(Proto::Tcp) {
                    ev.tcp_flags = Some(TcpFlags(0));
                }
            }
            K_SPT if ev.sport.is_none() => ev.sport = Some(num(key, value)?),
            K_DPT if ev.dport.is_none() => ev.dport = Some(num(key, value)?),
            K_TYPE if ev.icmp.is_none() => ev.icmp = Some((num(key, value)?, 0)),
            K_CODE => {
                if let Some((_, code)) = ev.icmp.as_mut() {
                    *code = num(key, value)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Index of the first `needle` in `hay[from..]` (or `hay.len()`), eight bytes per step: a
/// byte equal to the needle becomes zero after the xor, and the classic zero-byte test
/// flags it (the lowest flag is always exact; only higher ones can be false).
#[inline]
fn find_byte(hay: &[u8], from: usize, needle: u8) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pat = LO * u64::from(needle);
    let mut i = from;
    while let Some(Ok(w)) = hay.get(i..i + 8).map(<[u8; 8]>::try_from) {
        let x = u64::from_le_bytes(w) ^ pat;
        let m = x.wrapping_sub(LO) & !x & HI;
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < hay.len() {
        if hay[i] == needle {
            return i;
        }
        i += 1;
    }
    hay.len()
}

/// `(first ' ', first '=')` at or after `from` (each `hay.len()` if absent), in one pass of
/// eight bytes per step: every token needs both, and scanning it once instead of twice is
/// measurably faster. Same zero-byte test as [`find_byte`]; the '=' found is only used when
/// it comes before the space, and the lowest flag of each mask is exact.
#[inline(always)]
fn find_space_and_eq(hay: &[u8], from: usize) -> (usize, usize) {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const SP: u64 = LO * b' ' as u64;
    const EQ: u64 = LO * b'=' as u64;
    let mut i = from;
    let mut eq = usize::MAX;
    while let Some(Ok(w)) = hay.get(i..i + 8).map(<[u8; 8]>::try_from) {
        let w = u64::from_le_bytes(w);
        let (xs, xe) = (w ^ SP, w ^ EQ);
        let ms = xs.wrapping_sub(LO) & !xs & HI;
        if eq == usize::MAX {
            let me = xe.wrapping_sub(LO) & !xe & HI;
            if me != 0 {
                eq = i + (me.trailing_zeros() / 8) as usize;
            }
        }
        if ms != 0 {
            return (i + (ms.trailing_zeros() / 8) as usize, eq.min(hay.len()));
        }
        i += 8;
    }
    while i < hay.len() {
        match hay[i] {
            b' ' => return (i, eq.min(hay.len())),
            b'=' if eq == usize::MAX => eq = i,
            _ => {}
        }
        i += 1;
    }
    (hay.len(), eq.min(hay.len()))
}

/// [`packed`] of `hay[start..start + len]`, with one load when eight bytes are there.
#[inline(always)]
fn packed_at(hay: &[u8], start: usize, len: usize) -> u64 {
    if len > 8 || len == 0 {
        return 0;
    }
    match hay.get(start..start + 8).map(<[u8; 8]>::try_from) {
        Some(Ok(w)) => u64::from_le_bytes(w) & (u64::MAX >> (64 - 8 * len)),
        _ => packed(&hay[start..start + len]),
    }
}

/// Up to 8 bytes as one integer (0 for longer keys, which none of ours are).
#[inline]
pub(crate) const fn packed(b: &[u8]) -> u64 {
    if b.len() > 8 || b.is_empty() {
        return 0;
    }
    let mut v = 0u64;
    let mut i = 0;
    while i < b.len() {
        v |= (b[i] as u64) << (8 * i);
        i += 1;
    }
    v
}

const K_ARP: u64 = packed(b"ARP");
const K_IN: u64 = packed(b"IN");
const K_OUT: u64 = packed(b"OUT");
const K_MAC: u64 = packed(b"MAC");
const K_MACSRC: u64 = packed(b"MACSRC");
const K_MACDST: u64 = packed(b"MACDST");
const K_MACPROTO: u64 = packed(b"MACPROTO");
const K_SRC: u64 = packed(b"SRC");
const K_DST: u64 = packed(b"DST");
const K_IPSRC: u64 = packed(b"IPSRC");
const K_IPDST: u64 = packed(b"IPDST");
const K_LEN: u64 = packed(b"LEN");
const K_TTL: u64 = packed(b"TTL");
const K_HOPLIMIT: u64 = packed(b"HOPLIMIT");
const K_PROTO: u64 = packed(b"PROTO");
const K_SPT: u64 = packed(b"SPT");
const K_DPT: u64 = packed(b"DPT");
const K_TYPE: u64 = packed(b"TYPE");
const K_CODE: u64 = packed(b"CODE");

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SEED_V6: &str = "Jan  3 04:18:26 home1 kernel: verbose-nft-dropped: IN=att OUT=vlan69 MACSRC=0c:a4:02:c9:06:d5 MACDST=bc:9a:8e:88:56:c0 MACPROTO=86dd SRC=2a06:4880:6000:0000:0000:0000:0000:0089 DST=2600:1700:3040:13e1:0000:0000:0000:0069 LEN=64 TC=0 HOPLIMIT=241 FLOWLBL=270679 PROTO=TCP SPT=36289 DPT=55553 SEQ=3101165342 ACK=0 WINDOW=14600 RES=0x00 SYN URGP=0 OPT (020405A0)";
    const SEED_V4: &str = "Jan  3 05:03:21 home2 kernel: nft-dropped: IN=astound OUT= MAC=66:69:69:69:69:69:6c:9c:ed:92:00:26:08:00 SRC=79.124.56.246 DST=207.229.169.25 LEN=40 TOS=0x00 PREC=0x00 TTL=239 ID=47457 PROTO=TCP SPT=56038 DPT=6961 WINDOW=1024 RES=0x00 SYN URGP=0 ";

    #[test]
    fn seed_ipv6_line() {
        let l = parse(SEED_V6).unwrap();
        assert_eq!(l.host, Some("home1"));
        assert_eq!(
            l.time,
            Some(Timestamp::Yearless(
                ((2 * 24 + 4) * 3600 + 18 * 60 + 26) * 1000
            ))
        );
        let e = &l.event;
        assert_eq!(e.prefix, "verbose-nft-dropped: ");
        assert_eq!(e.prefix_label(), "verbose-nft-dropped");
        assert_eq!(e.in_iface.as_str(), "att");
        assert_eq!(e.out_iface.as_str(), "vlan69");
        assert_eq!(e.mac_src.unwrap().to_string(), "0c:a4:02:c9:06:d5");
        assert_eq!(e.mac_dst.unwrap().to_string(), "bc:9a:8e:88:56:c0");
        assert_eq!(e.ethertype, Some(0x86dd));
        assert_eq!(e.src, Some("2a06:4880:6000::89".parse().unwrap()));
        assert_eq!(e.dst, Some("2600:1700:3040:13e1::69".parse().unwrap()));
        assert_eq!(e.len, 64);
        assert_eq!(e.ttl, Some(241));
        assert_eq!(e.proto, Some(Proto::Tcp));
        assert_eq!((e.sport, e.dport), (Some(36289), Some(55553)));
        // `ACK=0` is the acknowledgement number, not the ACK flag.
        assert_eq!(e.tcp_flags, Some(TcpFlags(TcpFlags::SYN)));
        assert!(e.tcp_flags.unwrap().is_syn_only());
    }

    #[test]
    fn seed_ipv4_line() {
        let l = parse(SEED_V4).unwrap();
        assert_eq!(l.host, Some("home2"));
        let e = &l.event;
        assert_eq!(e.prefix_label(), "nft-dropped");
        assert_eq!(e.in_iface.as_str(), "astound");
        assert!(e.out_iface.is_empty());
        assert_eq!(e.iface().as_str(), "astound");
        assert_eq!(e.mac_dst.unwrap().to_string(), "66:69:69:69:69:69");
        assert_eq!(e.mac_src.unwrap().to_string(), "6c:9c:ed:92:00:26");
        assert_eq!(e.ethertype, Some(0x0800));
        assert_eq!(e.src, Some("79.124.56.246".parse().unwrap()));
        assert_eq!(e.dst, Some("207.229.169.25".parse().unwrap()));
        assert_eq!(e.len, 40);
        assert_eq!(e.ttl, Some(239));
        assert_eq!((e.sport, e.dport), (Some(56038), Some(6961)));
        assert_eq!(e.tcp_flags.unwrap().to_string(), "SYN");
    }

    #[test]
    fn journalctl_and_dmesg_forms() {
        let body = "nft-dropped: IN=eth0 OUT= MAC=aa:bb:cc:dd:ee:ff:11:22:33:44:55:66:08:00 SRC=192.0.2.9 DST=198.51.100.1 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID=0 DF PROTO=UDP SPT=5353 DPT=69 LEN=40";
        let journal = format!("Jan 03 04:18:26 router kernel: {body}");
        let dmesg = format!("[  812.345678] {body}");
        let dmesg_t = format!("[Sat Jan  3 04:18:26 2026] {body}");
        let iso = format!("2026-01-03T04:18:26.123456+01:00 router kernel: {body}");
        let short_iso = format!("2026-01-03T04:18:26+0000 router kernel: {body}");
        let mono = format!("[  812.345678] router kernel: {body}");
        let kern_stamp = format!("Jan  3 04:18:26 router kernel: [  812.345678] {body}");
        let raw = format!("<4>[  812.345678] {body}");
        let jan3 = days_from_civil(2026, 1, 3).unwrap() * 86_400_000;
        let cases: Vec<(&str, Option<Timestamp>, Option<&str>)> = vec![
            (
                &journal,
                Some(Timestamp::Yearless(2 * 86_400_000 + 15_506_000)),
                Some("router"),
            ),
            (&dmesg, Some(Timestamp::Boot(812_345)), None),
            (&dmesg_t, Some(Timestamp::Unix(jan3 + 15_506_000)), None),
            (
                &iso,
                Some(Timestamp::Unix(jan3 + 15_506_000 - 3_600_000 + 123)),
                Some("router"),
            ),
            (
                &short_iso,
                Some(Timestamp::Unix(jan3 + 15_506_000)),
                Some("router"),
            ),
            (&mono, Some(Timestamp::Boot(812_345)), Some("router")),
            (
                &kern_stamp,
                Some(Timestamp::Yearless(2 * 86_400_000 + 15_506_000)),
                Some("router"),
            ),
            (&raw, Some(Timestamp::Boot(812_345)), None),
        ];
        for (line, time, host) in cases {
            let l = parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(l.time, time, "{line}");
            assert_eq!(l.host, host, "{line}");
            assert_eq!(l.event.prefix, "nft-dropped: ", "{line}");
            assert_eq!(l.event.proto, Some(Proto::Udp));
            assert_eq!(l.event.dport, Some(69));
            // The UDP header's own LEN= does not replace the IP length.
            assert_eq!(l.event.len, 60);
            assert_eq!(l.event.tcp_flags, None);
        }
    }

    #[test]
    fn icmp_error_quotes_an_inner_packet_that_is_skipped() {
        let line = "Mar 14 10:00:00 gw kernel: drop-in: IN=wan0 OUT= MAC= SRC=203.0.113.5 DST=198.51.100.7 LEN=88 TOS=0x00 PREC=0xC0 TTL=63 ID=999 PROTO=ICMP TYPE=3 CODE=3 [SRC=198.51.100.7 DST=203.0.113.5 LEN=60 TOS=0x00 PREC=0x00 TTL=63 ID=1 PROTO=UDP SPT=1000 DPT=53 LEN=40 ] MARK=0x1";
        let e = parse(line).unwrap().event;
        assert_eq!(e.src, Some("203.0.113.5".parse().unwrap()));
        assert_eq!(e.dst, Some("198.51.100.7".parse().unwrap()));
        assert_eq!(e.proto, Some(Proto::Icmp));
        assert_eq!(e.icmp, Some((3, 3)));
        assert_eq!((e.sport, e.dport), (None, None));
        assert_eq!(e.mac_src, None);
    }

    #[test]
    fn icmpv6_echo_and_tcp_flags_with_options() {
        let v6 = "Jun  1 00:00:01 r1 kernel: nft-dropped: IN=lan0 OUT=wan0 SRC=fd00:0001:0000:0000:0000:0000:0000:0002 DST=fd00:0002:0000:0000:0000:0000:0000:0001 LEN=104 TC=0 HOPLIMIT=63 FLOWLBL=123 PROTO=ICMPv6 TYPE=128 CODE=0 ID=77 SEQ=1 ";
        let e = parse(v6).unwrap().event;
        assert_eq!(e.proto, Some(Proto::Icmpv6));
        assert_eq!(e.icmp, Some((128, 0)));
        assert_eq!(e.iface().as_str(), "lan0");
        let tcp = "Jun  1 00:00:01 r1 kernel: x IN=lan0 OUT= SRC=10.0.0.2 DST=10.0.0.1 LEN=52 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=40000 DPT=443 WINDOW=501 RES=0x00 ACK PSH FIN URGP=0 OPT (0101080A)";
        let e = parse(tcp).unwrap().event;
        assert_eq!(
            e.tcp_flags,
            Some(TcpFlags(TcpFlags::ACK | TcpFlags::PSH | TcpFlags::FIN))
        );
        assert_eq!(e.prefix, "x ");
    }

    #[test]
    fn no_prefix_bridge_and_arp() {
        let e = parse("IN=eth0 OUT= SRC=10.1.1.1 DST=10.1.1.2 LEN=20 PROTO=47 ")
            .unwrap()
            .event;
        assert_eq!(e.prefix, "");
        assert_eq!(e.proto, Some(Proto::Other(47)));
        let arp = "[ 5.0] arp-drop: IN=br0 OUT= ARP HTYPE=1 PTYPE=0x0800 OPCODE=1 MACSRC=02:00:00:00:00:01 IPSRC=192.0.2.1 MACDST=00:00:00:00:00:00 IPDST=192.0.2.2";
        let e = parse(arp).unwrap().event;
        assert_eq!(e.proto, Some(Proto::Arp));
        assert_eq!(e.src, Some("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn other_kernel_messages_and_broken_lines() {
        assert_eq!(
            parse("Jan  3 04:18:26 home1 kernel: usb 1-1: new high-speed USB device"),
            Err(LogLineError::NotPacketLog)
        );
        assert_eq!(parse(""), Err(LogLineError::NotPacketLog));
        // A `IN=` without `OUT=` is not enough.
        assert_eq!(parse("LOGIN=root"), Err(LogLineError::NotPacketLog));
        let cut = "Jan  3 05:03:21 home2 kernel: nft-dropped: IN=astound OUT= SRC=79.124.5";
        assert_eq!(
            parse(cut),
            Err(LogLineError::BadValue {
                field: "SRC".into(),
                value: "79.124.5".into()
            })
        );
        let bad_port = "x IN=a OUT= SRC=1.2.3.4 DST=1.2.3.5 PROTO=TCP SPT=1 DPT=70000";
        assert!(
            matches!(parse(bad_port), Err(LogLineError::BadValue { field, .. }) if field == "DPT")
        );
        let bad_mac = "x IN=a OUT= MAC=zz:00 SRC=1.2.3.4";
        assert!(parse(bad_mac).is_err());
    }

    #[test]
    fn find_byte_agrees_with_a_scan() {
        let hay = b"IN=eth0 OUT= MAC=00:11 SRC=1.2.3.4  DST==x  \x80\xff= =";
        for from in 0..=hay.len() {
            for needle in [b' ', b'=', b'x', 0x80, 0xff, b'Q'] {
                let want = hay[from..]
                    .iter()
                    .position(|b| *b == needle)
                    .map_or(hay.len(), |p| from + p);
                assert_eq!(find_byte(hay, from, needle), want, "{from} {needle}");
            }
        }
    }

    #[test]
    fn space_and_eq_scan_and_packed_load_agree_with_the_simple_ones() {
        let hay = b"IN=eth0 OUT= MAC=00:11 SRC=1.2.3.4  DST==x  \x80\xff= =ARP MACPROTO=1";
        for from in 0..=hay.len() {
            let sp = find_byte(hay, from, b' ');
            let eq = find_byte(&hay[..sp], from, b'=');
            let (sp2, eq2) = find_space_and_eq(hay, from);
            assert_eq!(sp2, sp, "{from}");
            // Only an '=' before the space is used.
            if eq < sp {
                assert_eq!(eq2, eq, "{from}");
            } else {
                assert!(eq2 >= sp2, "{from}");
            }
            for len in 0..=(hay.len() - from).min(10) {
                assert_eq!(
                    packed_at(hay, from, len),
                    packed(&hay[from..from + len]),
                    "{from} {len}"
                );
            }
        }
    }

    #[test]
    fn search_by_last_byte_agrees_with_memmem() {
        let hays: [&[u8]; 7] = [
            b"",
            b"IN=",
            b"=",
            b"xIN=IN=IN IN= OUT= LOGIN=root kernel:kernel:",
            b"Jan  3 05:03:21 home2 kernel: nft-dropped: IN=astound OUT= MAC=",
            b"=:kernel kernel :kernel:: IN=\xffIN=",
            b"ernel: N= kernel",
        ];
        for hay in hays {
            for needle in [&b"IN="[..], b"kernel:"] {
                let want: Vec<usize> = memchr::memmem::find_iter(hay, needle).collect();
                let got: Vec<usize> = find_iter_by_last(hay, needle).collect();
                assert_eq!(got, want, "{hay:?} {needle:?}");
            }
        }
    }

    #[test]
    fn hex_bytes_accepts_only_colon_separated_pairs() {
        let mut out = [0u8; 3];
        assert_eq!(hex_bytes(b"MAC", "0a:Bc:ff:10".as_bytes(), &mut out), Ok(4));
        assert_eq!(out, [0x0a, 0xbc, 0xff]);
        for v in [
            "", "0", "0a:", "0a:b", "0g", "0a-bc", "0a::bc", ":0a", "0a:bc ", "é0",
        ] {
            assert!(hex_bytes(b"MAC", v.as_bytes(), &mut out).is_err(), "{v}");
        }
        for c in 0..=255u8 {
            let want = (c as char).to_digit(16).map_or(0xff, |d| d as u8);
            assert_eq!(HEX[usize::from(c)], want, "{c}");
        }
    }

    #[test]
    fn address_fast_paths_agree_with_std() {
        for a in [
            "2a06:4880:6000:0000:0000:0000:0000:0089",
            "FFFF:0000:0000:0000:0000:0000:0000:0001",
            "2001:db8::1",
            "0.0.0.0",
            "255.255.255.255",
            "192.0.2.1",
        ] {
            assert_eq!(
                addr(b"SRC", a.as_bytes()).unwrap(),
                a.parse::<IpAddr>().unwrap(),
                "{a}"
            );
        }
        for a in [
            "2a06:4880:6000:0000:0000:0000:0000:008g",
            "2a06:4880:6000:0000:0000:0000:0000.0089",
            "256.1.1.1",
            "1.2.3",
            "1..2.3",
            "1.2.3.4.",
            "01234.1.1.1",
            "1.2.3.4x",
            "1.2.3.256",
            ".1.2.3",
            "1.2.3.-4",
            "",
            "2a06:4880:6000:0000:0000:0000:0000:00:9",
            "2a06 4880:6000:0000:0000:0000:0000:0089",
        ] {
            assert!(addr(b"SRC", a.as_bytes()).is_err(), "{a}");
        }
        // Every dotted quad of a sample agrees with std (std refuses leading zeros, which the
        // kernel never prints; the parser takes them, as it always has).
        let mut x: u32 = 99;
        for _ in 0..20_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let ip = Ipv4Addr::from(x.rotate_left(7));
            let text = ip.to_string();
            assert_eq!(
                addr(b"SRC", text.as_bytes()).unwrap(),
                IpAddr::V4(ip),
                "{text}"
            );
            let v6 =
                std::net::Ipv6Addr::from(u128::from(x).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c));
            let full: Vec<String> = v6.segments().iter().map(|g| format!("{g:04x}")).collect();
            assert_eq!(
                addr(b"SRC", full.join(":").as_bytes()).unwrap(),
                IpAddr::V6(v6)
            );
        }
        assert_eq!(
            addr(b"SRC", "010.002.003.004".as_bytes()).unwrap(),
            IpAddr::V4(Ipv4Addr::new(10, 2, 3, 4))
        );
    }

    #[test]
    fn timestamps_span() {
        let a = Timestamp::Yearless(364 * 86_400_000);
        let b = Timestamp::Yearless(1000);
        assert_eq!(a.millis_until(b), Some(86_400_000 + 1000));
        assert_eq!(Timestamp::Boot(1).millis_until(Timestamp::Unix(2)), None);
        assert_eq!(parse_iso("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_iso("2000-03-01T00:00:00+00:00"),
            Some(951_868_800_000)
        );
        assert_eq!(parse_iso("2000-03-01T00:00:00+0"), None);
    }
}
