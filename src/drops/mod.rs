//! Dropped traffic: what the firewall logged, decoded and summed up (pure: no sockets, no clock).
//!
//! Two sources produce the same [`DropEvent`]:
//! - [`logline`]: kernel log lines as syslog, `journalctl -k` and `dmesg` print them
//!   (`nft-dropped: IN=eth0 OUT= MAC=... SRC=... DST=... PROTO=TCP SPT=... DPT=...`);
//! - [`nflog`]: nfnetlink_log packet records, as the daemon receives them live from
//!   `log group N` rules (the socket itself is in `sys::nflog`).
//!
//! [`aggregate`] keeps totals and top-N tables over 5 minute, 1 hour and 24 hour windows in
//! memory that does not grow with the number of distinct addresses ([`sketch`]: Space-Saving
//! heavy hitters), plus the last N events. [`analyze`] is `pirouterd analyze FILE...`.
//! [`live`] is the daemon glue (NFLOG thread, API route, metrics); everything else here is pure.

pub mod aggregate;
pub mod analyze;
pub mod live;
pub mod logline;
pub mod nflog;
pub mod rules;
pub mod sketch;

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

/// Transport protocol of a dropped packet, as the kernel names it in its log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    UdpLite,
    Sctp,
    Icmp,
    Icmpv6,
    /// An ARP packet (logged by an `arp` family rule): no IP header.
    Arp,
    /// Any other IP protocol, kept by number (GRE is 47, ESP 50, ...).
    Other(u8),
}

impl Proto {
    /// From the IP protocol number (IPv4 protocol / IPv6 next header).
    pub fn from_number(n: u8) -> Proto {
        match n {
            6 => Proto::Tcp,
            17 => Proto::Udp,
            136 => Proto::UdpLite,
            132 => Proto::Sctp,
            1 => Proto::Icmp,
            58 => Proto::Icmpv6,
            n => Proto::Other(n),
        }
    }

    /// From the kernel's `PROTO=` value (`TCP`, `UDP`, `ICMPv6`, or a number).
    pub fn from_log_name(s: &str) -> Option<Proto> {
        use logline::packed;
        const TCP: u64 = packed(b"TCP");
        const UDP: u64 = packed(b"UDP");
        const UDPLITE: u64 = packed(b"UDPLITE");
        const SCTP: u64 = packed(b"SCTP");
        const ICMP: u64 = packed(b"ICMP");
        const ICMPV6: u64 = packed(b"ICMPv6");
        Some(match packed(s.as_bytes()) {
            TCP => Proto::Tcp,
            UDP => Proto::Udp,
            UDPLITE => Proto::UdpLite,
            SCTP => Proto::Sctp,
            ICMP => Proto::Icmp,
            ICMPV6 => Proto::Icmpv6,
            _ => Proto::from_number(s.parse().ok()?),
        })
    }

    /// Whether packets of this protocol carry source and destination ports.
    pub fn has_ports(self) -> bool {
        matches!(self, Proto::Tcp | Proto::Udp | Proto::UdpLite | Proto::Sctp)
    }

    /// Lower-case name as used in the API and metric labels (`tcp`, `icmpv6`, `47`).
    pub fn name(self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::UdpLite => "udplite",
            Proto::Sctp => "sctp",
            Proto::Icmp => "icmp",
            Proto::Icmpv6 => "icmpv6",
            Proto::Arp => "arp",
            Proto::Other(n) => return Cow::Owned(n.to_string()),
        })
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// TCP flags, bit for bit as in the TCP header (FIN = 0x01 ... CWR = 0x80).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
    const NAMES: [(u8, &'static str); 8] = [
        (Self::CWR, "CWR"),
        (Self::ECE, "ECE"),
        (Self::URG, "URG"),
        (Self::ACK, "ACK"),
        (Self::PSH, "PSH"),
        (Self::RST, "RST"),
        (Self::SYN, "SYN"),
        (Self::FIN, "FIN"),
    ];

    /// The bit for a flag name as the kernel prints it (`SYN`), if it is one.
    #[inline]
    pub fn bit(name: &[u8]) -> Option<u8> {
        // Every flag name is 3 letters; most bare tokens in a log line (DF, CE) are not.
        if name.len() != 3 {
            return None;
        }
        use logline::packed;
        const SYN: u64 = packed(b"SYN");
        const ACK: u64 = packed(b"ACK");
        const FIN: u64 = packed(b"FIN");
        const RST: u64 = packed(b"RST");
        const PSH: u64 = packed(b"PSH");
        const URG: u64 = packed(b"URG");
        const ECE: u64 = packed(b"ECE");
        const CWR: u64 = packed(b"CWR");
        Some(match packed(name) {
            SYN => Self::SYN,
            ACK => Self::ACK,
            FIN => Self::FIN,
            RST => Self::RST,
            PSH => Self::PSH,
            URG => Self::URG,
            ECE => Self::ECE,
            CWR => Self::CWR,
            _ => return None,
        })
    }

    /// A SYN without ACK: a connection attempt (what scanners send).
    pub fn is_syn_only(self) -> bool {
        self.0 & (Self::SYN | Self::ACK) == Self::SYN
    }
}

impl fmt::Display for TcpFlags {
    /// Space-separated, in the kernel's order: `SYN`, `ACK PSH`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (bit, name) in Self::NAMES {
            if self.0 & bit != 0 {
                if !first {
                    f.write_str(" ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// An interface name kept inline (Linux names are at most 15 bytes), so events and keys are
/// `Copy` and cost no allocation. Longer input (only from broken or hostile text) is cut at a
/// character boundary.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct IfName {
    len: u8,
    bytes: [u8; 16],
}

impl IfName {
    pub fn new(name: &str) -> IfName {
        let mut end = name.len().min(16);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0u8; 16];
        bytes[..end].copy_from_slice(&name.as_bytes()[..end]);
        IfName {
            len: end as u8,
            bytes,
        }
    }

    /// The name of `len` bytes at the start of `rest` (the rest of a line, cut from a `str`
    /// at an ASCII byte, so the name is UTF-8), when it is shorter than 16 bytes and 16
    /// bytes are at hand: copied as one fixed block with the tail masked off, instead of a
    /// copy of variable length per field. `None`: use [`IfName::new`].
    #[inline]
    pub fn from_line(rest: &[u8], len: usize) -> Option<IfName> {
        let block: [u8; 16] = rest.get(..16)?.try_into().ok()?;
        if len >= 16 {
            return None;
        }
        let keep = u128::MAX.checked_shr(8 * (16 - len as u32)).unwrap_or(0);
        Some(IfName {
            len: len as u8,
            bytes: (u128::from_le_bytes(block) & keep).to_le_bytes(),
        })
    }

    pub fn as_str(&self) -> &str {
        // Built from a &str cut at a char boundary, so this always succeeds.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A 48-bit Ethernet address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One dropped (logged) packet, from a log line or an NFLOG record.
///
/// Fields the source did not carry are `None` / empty: an ARP log has no IP addresses, a
/// fragment has no ports, a log line from a rule without `flags ether` has no MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropEvent<'a> {
    /// The rule's `log prefix` exactly as logged (usually with its trailing `": "`).
    pub prefix: Cow<'a, str>,
    /// Netfilter hook number (NFLOG only: 0 prerouting, 1 input, 2 forward, 3 output, 4
    /// postrouting).
    pub hook: Option<u8>,
    pub in_iface: IfName,
    pub out_iface: IfName,
    pub mac_src: Option<Mac>,
    pub mac_dst: Option<Mac>,
    /// EtherType of the frame (0x0800 IPv4, 0x86dd IPv6).
    pub ethertype: Option<u16>,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub proto: Option<Proto>,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    pub tcp_flags: Option<TcpFlags>,
    /// ICMP or ICMPv6 type and code.
    pub icmp: Option<(u8, u8)>,
    /// IP length of the packet (IPv4 total length; IPv6 payload length + 40), in bytes.
    pub len: u32,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: Option<u8>,
}

impl DropEvent<'_> {
    /// An event with nothing known yet but its prefix.
    pub fn empty(prefix: &str) -> DropEvent<'_> {
        DropEvent {
            prefix: Cow::Borrowed(prefix),
            hook: None,
            in_iface: IfName::default(),
            out_iface: IfName::default(),
            mac_src: None,
            mac_dst: None,
            ethertype: None,
            src: None,
            dst: None,
            proto: None,
            sport: None,
            dport: None,
            tcp_flags: None,
            icmp: None,
            len: 0,
            ttl: None,
        }
    }

    /// The same event, owning its prefix (to keep it past the receive buffer).
    pub fn into_owned(self) -> DropEvent<'static> {
        DropEvent {
            prefix: Cow::Owned(self.prefix.into_owned()),
            ..self
        }
    }

    /// The interface the packet is counted under: the inbound one, else the outbound one
    /// (locally generated packets have no inbound interface).
    pub fn iface(&self) -> IfName {
        if self.in_iface.is_empty() {
            self.out_iface
        } else {
            self.in_iface
        }
    }

    /// The prefix as a label: trailing spaces and colon trimmed (`"nft-dropped: "` becomes
    /// `"nft-dropped"`).
    pub fn prefix_label(&self) -> &str {
        prefix_label(&self.prefix)
    }
}

/// `"nft-dropped: "` -> `"nft-dropped"`: the log prefix without its trailing separator.
pub fn prefix_label(prefix: &str) -> &str {
    prefix.trim_end_matches([' ', ':', '\t'])
}

macro_rules! serialize_as_display {
    ($($t:ty),*) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    )*};
}
serialize_as_display!(Proto, TcpFlags, IfName, Mac);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifname_from_the_line_equals_ifname_new() {
        let line = "IN=eth0 OUT= x IN=wlan0-very-long-name OUT=é-ü IN=123456789012345 ";
        for (start, end) in [(3, 7), (12, 12), (18, 38), (43, 48), (52, 67), (67, 67)] {
            let name = &line[start..end];
            let got = IfName::from_line(&line.as_bytes()[start..], end - start);
            match got {
                Some(got) => {
                    assert_eq!(got, IfName::new(name), "{name:?}");
                    assert_eq!(got.as_str(), name);
                }
                // Too long, or too little of the line left: the caller uses new().
                None => assert!(name.len() >= 16 || line.len() - start < 16, "{name:?}"),
            }
        }
    }
}
