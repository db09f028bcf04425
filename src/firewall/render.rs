//! A rule's expressions back to nft syntax, the way `nft list ruleset` writes them.
//!
//! The kernel keeps a rule as register operations: `payload load 4b @ network header + 12
//! => reg 1`, `cmp eq reg 1 0x0100000a`. This walks them with a small register model (what
//! each register holds), folds the implicit protocol dependencies nft adds back away (`meta
//! nfproto ipv4` before `ip saddr` in an `inet` table), and prints each statement.
//!
//! Whatever it does not understand is shown by name in angle brackets (`<fib>`), never
//! dropped, and the result is marked not exact: only exact text is promised to load back
//! as the same rule.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::Ipv6Addr;

use super::expr::{Data, Expr, RawElement, SetShape, Verdict};
use super::{format_duration_ms, Counter, Family, SetElement};

/// What rendering needs from outside the rule: sets (for anonymous set elements, map types,
/// concatenation widths) and interface names (for `iif`/`oif`).
pub trait RenderEnv {
    fn set(&self, name: &str) -> Option<&SetShape>;
    fn ifname(&self, index: u32) -> Option<String>;
}

/// A rendered rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    /// Every expression was understood; `text` loads back as the same expressions.
    pub exact: bool,
}

/// nft datatypes (ids from nftables' `datatype.h`), as far as rendering needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Verdict,
    NfProto,
    Integer,
    /// Integer in host byte order (meta length, skuid, ...).
    IntHost,
    Str,
    Ipv4,
    Ipv6,
    Ether,
    EtherType,
    Proto,
    Port,
    IcmpType,
    TcpFlags,
    Mark,
    Ifindex,
    CtState,
    CtDir,
    CtStatus,
    Icmp6Type,
    PktType,
    Ifname,
    /// A type this build does not know how to print: shown in hex, not exact.
    Raw,
}

impl Ty {
    fn from_id(id: u32) -> Ty {
        match id {
            1 => Ty::Verdict,
            2 => Ty::NfProto,
            4 => Ty::Integer,
            5 => Ty::Str,
            7 => Ty::Ipv4,
            8 => Ty::Ipv6,
            9 => Ty::Ether,
            10 => Ty::EtherType,
            12 => Ty::Proto,
            13 => Ty::Port,
            14 => Ty::IcmpType,
            15 => Ty::TcpFlags,
            19 => Ty::Mark,
            20 => Ty::Ifindex,
            26 => Ty::CtState,
            27 => Ty::CtDir,
            28 => Ty::CtStatus,
            29 => Ty::Icmp6Type,
            31 => Ty::PktType,
            41 => Ty::Ifname,
            _ => Ty::Raw,
        }
    }

    /// Natural byte width, for concatenation fields without a kernel description.
    fn width(self) -> u32 {
        match self {
            Ty::Ipv4 | Ty::Mark | Ty::Ifindex | Ty::CtState | Ty::CtStatus | Ty::Integer => 4,
            Ty::Ipv6 | Ty::Ifname => 16,
            Ty::Ether => 6,
            Ty::Port | Ty::EtherType => 2,
            _ => 1,
        }
    }

    fn is_bitmask(self) -> bool {
        matches!(self, Ty::CtState | Ty::CtStatus | Ty::TcpFlags)
    }
}

/// Name of an nft datatype id as `nft list` writes it in `type ...`.
pub fn type_name(id: u32) -> String {
    let name = match id {
        1 => "verdict",
        2 => "nf_proto",
        3 => "bitmask",
        4 => "integer",
        5 => "string",
        6 => "ll_addr",
        7 => "ipv4_addr",
        8 => "ipv6_addr",
        9 => "ether_addr",
        10 => "ether_type",
        11 => "arp_op",
        12 => "inet_proto",
        13 => "inet_service",
        14 => "icmp_type",
        15 => "tcp_flag",
        18 => "time",
        19 => "mark",
        20 => "iface_index",
        21 => "iface_type",
        22 => "realm",
        23 => "classid",
        24 => "uid",
        25 => "gid",
        26 => "ct_state",
        27 => "ct_dir",
        28 => "ct_status",
        29 => "icmpv6_type",
        30 => "ct_label",
        31 => "pkt_type",
        32 => "icmp_code",
        33 => "icmpv6_code",
        34 => "icmpx_code",
        35 => "devgroup",
        36 => "dscp",
        37 => "ecn",
        38 => "fib_addrtype",
        39 => "boolean",
        40 => "ct_event",
        41 => "ifname",
        42 => "igmp_type",
        _ => return format!("type{id}"),
    };
    name.to_string()
}

/// Splits a (possibly concatenated) key type into its field type ids, first field first.
pub fn concat_ids(key_type: u32) -> Vec<u32> {
    let mut ids = Vec::new();
    let mut t = key_type;
    while t != 0 && ids.len() < 6 {
        ids.push(t & 0x3f);
        t >>= 6;
    }
    if ids.is_empty() {
        ids.push(0);
    }
    ids.reverse();
    ids
}

/// Key type as nft writes it: `ipv4_addr . inet_service`. The verdict data type
/// (0xffffff00) reads `verdict`.
pub fn key_type_name(key_type: u32) -> String {
    if key_type == 0xffff_ff00 {
        return "verdict".to_string();
    }
    concat_ids(key_type)
        .into_iter()
        .map(type_name)
        .collect::<Vec<_>>()
        .join(" . ")
}

const PROTOS: &[(u8, &str)] = &[
    (1, "icmp"),
    (2, "igmp"),
    (6, "tcp"),
    (17, "udp"),
    (33, "dccp"),
    (41, "ipv6"),
    (47, "gre"),
    (50, "esp"),
    (51, "ah"),
    (58, "ipv6-icmp"),
    (132, "sctp"),
    (136, "udplite"),
];
const ICMP_TYPES: &[(u8, &str)] = &[
    (0, "echo-reply"),
    (3, "destination-unreachable"),
    (4, "source-quench"),
    (5, "redirect"),
    (8, "echo-request"),
    (9, "router-advertisement"),
    (10, "router-solicitation"),
    (11, "time-exceeded"),
    (12, "parameter-problem"),
    (13, "timestamp-request"),
    (14, "timestamp-reply"),
    (15, "info-request"),
    (16, "info-reply"),
    (17, "address-mask-request"),
    (18, "address-mask-reply"),
];
const ICMP6_TYPES: &[(u8, &str)] = &[
    (1, "destination-unreachable"),
    (2, "packet-too-big"),
    (3, "time-exceeded"),
    (4, "parameter-problem"),
    (128, "echo-request"),
    (129, "echo-reply"),
    (130, "mld-listener-query"),
    (131, "mld-listener-report"),
    (132, "mld-listener-done"),
    (133, "nd-router-solicit"),
    (134, "nd-router-advert"),
    (135, "nd-neighbor-solicit"),
    (136, "nd-neighbor-advert"),
    (137, "nd-redirect"),
    (138, "router-renumbering"),
    (141, "ind-neighbor-solicit"),
    (142, "ind-neighbor-advert"),
    (143, "mld2-listener-report"),
];
const CT_STATES: &[(u32, &str)] = &[
    (1, "invalid"),
    (2, "established"),
    (4, "related"),
    (8, "new"),
    (64, "untracked"),
];
const CT_STATUS: &[(u32, &str)] = &[
    (1, "expected"),
    (2, "seen-reply"),
    (4, "assured"),
    (8, "confirmed"),
    (16, "snat"),
    (32, "dnat"),
    (512, "dying"),
];
const TCP_FLAGS: &[(u32, &str)] = &[
    (1, "fin"),
    (2, "syn"),
    (4, "rst"),
    (8, "psh"),
    (16, "ack"),
    (32, "urg"),
    (64, "ecn"),
    (128, "cwr"),
];

/// The name nft prints for an IP protocol number (`/etc/protocols` on Debian), if it has one.
pub fn proto_name(n: u8) -> Option<&'static str> {
    name_of(PROTOS, n)
}

/// The number of an IP protocol name as [`proto_name`] prints it.
pub fn proto_number(name: &str) -> Option<u8> {
    PROTOS.iter().find(|(_, s)| *s == name).map(|(n, _)| *n)
}

fn name_of(table: &[(u8, &'static str)], v: u8) -> Option<&'static str> {
    table.iter().find(|(n, _)| *n == v).map(|(_, s)| *s)
}

fn be_uint(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 8 {
        return None;
    }
    Some(b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
}

fn host_uint(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 8 {
        return None;
    }
    let mut buf = [0u8; 8];
    if cfg!(target_endian = "little") {
        buf[..b.len()].copy_from_slice(b);
        Some(u64::from_le_bytes(buf))
    } else {
        buf[8 - b.len()..].copy_from_slice(b);
        Some(u64::from_be_bytes(buf))
    }
}

fn hex(b: &[u8]) -> String {
    let mut s = String::from("0x");
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

fn flag_list(v: u32, table: &[(u32, &str)], sep: &str) -> Option<String> {
    let mut parts = Vec::new();
    let mut rest = v;
    for (bit, name) in table {
        if v & bit != 0 {
            parts.push(*name);
            rest &= !bit;
        }
    }
    if rest != 0 || parts.is_empty() {
        return None;
    }
    Some(parts.join(sep))
}

/// Formats a value of type `ty`; `None` when it cannot be shown faithfully.
/// Appends `v` in decimal.
fn push_uint(out: &mut String, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for d in &digits[i..] {
        out.push(char::from(*d));
    }
}

fn fmt_value(ty: Ty, b: &[u8], env: &dyn RenderEnv) -> Option<String> {
    Some(match ty {
        Ty::Ipv4 => {
            // By hand: the formatting machinery of `Ipv4Addr::to_string` is a visible part
            // of a 10k-rule snapshot's time.
            let mut out = String::with_capacity(15);
            for i in 0..4 {
                if i > 0 {
                    out.push('.');
                }
                push_uint(&mut out, u64::from(b.get(i).copied().unwrap_or(0)));
            }
            out
        }
        Ty::Ipv6 => {
            let mut a = [0u8; 16];
            let n = b.len().min(16);
            a[..n].copy_from_slice(&b[..n]);
            Ipv6Addr::from(a).to_string()
        }
        Ty::Port | Ty::Integer => {
            let mut out = String::with_capacity(8);
            push_uint(&mut out, be_uint(b)?);
            out
        }
        Ty::IntHost => host_uint(b)?.to_string(),
        Ty::Proto => {
            let v = *b.first()?;
            name_of(PROTOS, v)
                .map(str::to_string)
                .unwrap_or(v.to_string())
        }
        Ty::NfProto => match *b.first()? {
            2 => "ipv4".into(),
            10 => "ipv6".into(),
            v => v.to_string(),
        },
        Ty::EtherType => match be_uint(b)? {
            0x0800 => "ip".into(),
            0x86dd => "ip6".into(),
            0x0806 => "arp".into(),
            0x8100 => "8021q".into(),
            v => format!("{v:#06x}"),
        },
        Ty::Ether => b
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
        Ty::Ifname | Ty::Str => {
            let end = b.iter().position(|c| *c == 0);
            let s = String::from_utf8_lossy(&b[..end.unwrap_or(b.len())]).into_owned();
            if s.contains('"') {
                return None;
            }
            // A name compared without its NUL is a prefix match: `"eth*"`.
            let star = if end.is_none() && ty == Ty::Ifname && b.len() < 16 {
                "*"
            } else {
                ""
            };
            format!("\"{s}{star}\"")
        }
        Ty::Mark => format!("{:#010x}", host_uint(b)?),
        Ty::Ifindex => {
            let idx = host_uint(b)? as u32;
            format!("\"{}\"", env.ifname(idx)?)
        }
        Ty::CtState => flag_list(host_uint(b)? as u32, CT_STATES, ",")?,
        Ty::CtStatus => flag_list(host_uint(b)? as u32, CT_STATUS, ",")?,
        Ty::TcpFlags => flag_list(be_uint(b)? as u32, TCP_FLAGS, ",")?,
        Ty::CtDir => match *b.first()? {
            0 => "original".into(),
            1 => "reply".into(),
            _ => return None,
        },
        Ty::IcmpType => name_of(ICMP_TYPES, *b.first()?)?.to_string(),
        Ty::Icmp6Type => name_of(ICMP6_TYPES, *b.first()?)?.to_string(),
        Ty::PktType => match *b.first()? {
            0 => "host".into(),
            1 => "broadcast".into(),
            2 => "multicast".into(),
            3 => "other".into(),
            _ => return None,
        },
        Ty::Verdict | Ty::Raw => return None,
    })
}

/// What a register holds.
#[derive(Debug, Clone)]
struct Operand {
    /// Static for known fields: most rules then render without allocating names.
    text: Cow<'static, str>,
    ty: Ty,
    /// Full width of the field in bytes.
    full: u32,
    /// Bytes actually loaded (less than `full` for nft's trimmed prefix loads).
    loaded: u32,
    /// `(mask, xor)` from a bitwise on top of the load.
    mask: Option<(Vec<u8>, Vec<u8>)>,
    dep: Option<Dep>,
    /// False when the operand itself is a guess.
    exact: bool,
    /// Adjacent fields nft merged into one load (`ip ttl 1 ip protocol udp`).
    parts: Vec<(&'static str, Ty, u32)>,
}

impl Operand {
    fn field(text: impl Into<Cow<'static, str>>, ty: Ty, len: u32) -> Operand {
        Operand {
            text: text.into(),
            ty,
            full: len,
            loaded: len,
            mask: None,
            dep: None,
            exact: true,
            parts: Vec::new(),
        }
    }
    fn unknown(text: impl Into<Cow<'static, str>>, len: u32) -> Operand {
        Operand {
            exact: false,
            ..Operand::field(text, Ty::Raw, len)
        }
    }
}

/// A protocol dependency nft adds implicitly and hides when listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dep {
    /// `meta nfproto`, `meta protocol`, `ether type`: network header follows.
    L3,
    /// `meta l4proto`, `ip protocol`, `ip6 nexthdr`: transport header follows.
    L4,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum L3 {
    Ip,
    Ip6,
}

struct Stmt {
    text: Cow<'static, str>,
    dep: Option<Dep>,
}

struct Renderer<'a> {
    family: Family,
    env: &'a dyn RenderEnv,
    /// (normalised register, what it holds): a rule touches only a few registers.
    regs: Vec<(usize, Operand)>,
    stmts: Vec<Stmt>,
    l3: Option<L3>,
    l4: Option<u8>,
    exact: bool,
}

fn norm_reg(r: u32) -> usize {
    match r {
        1..=4 => 8 + (r as usize - 1) * 4,
        r => r as usize,
    }
}

/// The header field starting at `offset`: (name, type, width).
fn field_at(
    base: u32,
    offset: u32,
    l3: Option<L3>,
    l4: Option<u8>,
) -> Option<(&'static str, Ty, u32)> {
    let f = |name: &'static str, ty: Ty, flen: u32| Some((name, ty, flen));
    match (base, l3, l4) {
        (0, _, _) => match offset {
            0 => f("ether daddr", Ty::Ether, 6),
            6 => f("ether saddr", Ty::Ether, 6),
            12 => f("ether type", Ty::EtherType, 2),
            _ => None,
        },
        (1, Some(L3::Ip), _) => match offset {
            2 => f("ip length", Ty::Integer, 2),
            4 => f("ip id", Ty::Integer, 2),
            8 => f("ip ttl", Ty::Integer, 1),
            9 => f("ip protocol", Ty::Proto, 1),
            10 => f("ip checksum", Ty::Integer, 2),
            12 => f("ip saddr", Ty::Ipv4, 4),
            16 => f("ip daddr", Ty::Ipv4, 4),
            _ => None,
        },
        (1, Some(L3::Ip6), _) => match offset {
            4 => f("ip6 length", Ty::Integer, 2),
            6 => f("ip6 nexthdr", Ty::Proto, 1),
            7 => f("ip6 hoplimit", Ty::Integer, 1),
            8 => f("ip6 saddr", Ty::Ipv6, 16),
            24 => f("ip6 daddr", Ty::Ipv6, 16),
            _ => None,
        },
        (2, _, Some(p @ (6 | 17 | 136 | 132 | 33))) => {
            let (sport, dport) = match p {
                6 => ("tcp sport", "tcp dport"),
                17 => ("udp sport", "udp dport"),
                136 => ("udplite sport", "udplite dport"),
                132 => ("sctp sport", "sctp dport"),
                _ => ("dccp sport", "dccp dport"),
            };
            match (p, offset) {
                (_, 0) => f(sport, Ty::Port, 2),
                (_, 2) => f(dport, Ty::Port, 2),
                (6, 4) => f("tcp sequence", Ty::Integer, 4),
                (6, 8) => f("tcp ackseq", Ty::Integer, 4),
                (6, 13) => f("tcp flags", Ty::TcpFlags, 1),
                (6, 14) => f("tcp window", Ty::Integer, 2),
                (6, 16) => f("tcp checksum", Ty::Integer, 2),
                (6, 18) => f("tcp urgptr", Ty::Integer, 2),
                (17, 4) => f("udp length", Ty::Integer, 2),
                (17, 6) => f("udp checksum", Ty::Integer, 2),
                _ => None,
            }
        }
        (2, _, Some(p @ (1 | 58))) => {
            let names = if p == 1 {
                [
                    "icmp type",
                    "icmp code",
                    "icmp checksum",
                    "icmp id",
                    "icmp sequence",
                ]
            } else {
                [
                    "icmpv6 type",
                    "icmpv6 code",
                    "icmpv6 checksum",
                    "icmpv6 id",
                    "icmpv6 sequence",
                ]
            };
            let tty = if p == 1 { Ty::IcmpType } else { Ty::Icmp6Type };
            match offset {
                0 => f(names[0], tty, 1),
                1 => f(names[1], Ty::Integer, 1),
                2 => f(names[2], Ty::Integer, 2),
                4 => f(names[3], Ty::Integer, 2),
                6 => f(names[4], Ty::Integer, 2),
                _ => None,
            }
        }
        (2, _, None) => match offset {
            0 => f("th sport", Ty::Port, 2),
            2 => f("th dport", Ty::Port, 2),
            _ => None,
        },
        _ => None,
    }
}

/// A load nft merged from adjacent field matches: the fields it covers, exactly.
fn merged_fields(
    base: u32,
    offset: u32,
    len: u32,
    l3: Option<L3>,
    l4: Option<u8>,
) -> Option<Operand> {
    let end = offset.checked_add(len)?;
    let mut parts = Vec::new();
    let mut off = offset;
    while off < end && parts.len() < 8 {
        let (name, ty, w) = field_at(base, off, l3, l4)?;
        parts.push((name, ty, w));
        off = off.checked_add(w)?;
    }
    if off != end || parts.len() < 2 {
        return None;
    }
    let text = parts.iter().map(|p| p.0).collect::<Vec<_>>().join(" . ");
    Some(Operand {
        parts,
        ..Operand::field(text, Ty::Raw, len)
    })
}

fn payload_field(
    base: u32,
    offset: u32,
    len: u32,
    l3: Option<L3>,
    l4: Option<u8>,
) -> Option<Operand> {
    match field_at(base, offset, l3, l4) {
        // A shorter load at an address field's start is nft's trimmed prefix match.
        Some((name, ty, flen))
            if len == flen || (len < flen && matches!(ty, Ty::Ipv4 | Ty::Ipv6 | Ty::Ether)) =>
        {
            Some(Operand {
                loaded: len,
                ..Operand::field(name, ty, flen)
            })
        }
        _ => None,
    }
}

fn meta_key(key: u32) -> Option<(&'static str, Ty, u32)> {
    Some(match key {
        0 => ("meta length", Ty::IntHost, 4),
        1 => ("meta protocol", Ty::EtherType, 2),
        3 => ("meta mark", Ty::Mark, 4),
        4 => ("iif", Ty::Ifindex, 4),
        5 => ("oif", Ty::Ifindex, 4),
        6 => ("iifname", Ty::Ifname, 16),
        7 => ("oifname", Ty::Ifname, 16),
        10 => ("meta skuid", Ty::IntHost, 4),
        11 => ("meta skgid", Ty::IntHost, 4),
        12 => ("meta nftrace", Ty::IntHost, 1),
        15 => ("meta nfproto", Ty::NfProto, 1),
        16 => ("meta l4proto", Ty::Proto, 1),
        17 => ("meta ibrname", Ty::Ifname, 16),
        18 => ("meta obrname", Ty::Ifname, 16),
        19 => ("meta pkttype", Ty::PktType, 1),
        20 => ("meta cpu", Ty::IntHost, 4),
        23 => ("meta cgroup", Ty::IntHost, 4),
        24 => ("meta random", Ty::IntHost, 4),
        26 => ("meta iifkind", Ty::Ifname, 16),
        27 => ("meta oifkind", Ty::Ifname, 16),
        33 => ("meta sdif", Ty::Ifindex, 4),
        34 => ("meta sdifname", Ty::Ifname, 16),
        _ => return None,
    })
}

fn meta_key_unknown(key: u32) -> &'static str {
    match key {
        2 => "meta priority",
        8 => "meta iiftype",
        9 => "meta oiftype",
        13 => "meta rtclassid",
        14 => "meta secmark",
        21 => "iifgroup",
        22 => "oifgroup",
        25 => "meta ipsec",
        28 => "meta ibrpvid",
        29 => "meta ibrvproto",
        30 => "meta time",
        31 => "meta day",
        32 => "meta hour",
        _ => "meta ?",
    }
}

fn ct_key(key: u32, dir: Option<u8>) -> (String, Ty, u32, bool) {
    let d = match dir {
        Some(0) => "original ",
        Some(1) => "reply ",
        _ => "",
    };
    let (name, ty, len, ok) = match key {
        0 => ("state", Ty::CtState, 4, true),
        1 => ("direction", Ty::CtDir, 1, true),
        2 => ("status", Ty::CtStatus, 4, true),
        3 => ("mark", Ty::Mark, 4, true),
        6 => ("helper", Ty::Str, 16, true),
        7 => ("l3proto", Ty::NfProto, 1, true),
        10 => ("protocol", Ty::Proto, 1, true),
        11 => ("proto-src", Ty::Port, 2, true),
        12 => ("proto-dst", Ty::Port, 2, true),
        14 => ("packets", Ty::IntHost, 8, true),
        15 => ("bytes", Ty::IntHost, 8, true),
        17 => ("zone", Ty::IntHost, 2, true),
        19 => ("ip saddr", Ty::Ipv4, 4, true),
        20 => ("ip daddr", Ty::Ipv4, 4, true),
        21 => ("ip6 saddr", Ty::Ipv6, 16, true),
        22 => ("ip6 daddr", Ty::Ipv6, 16, true),
        23 => ("id", Ty::IntHost, 4, true),
        5 => ("expiration", Ty::Raw, 4, false),
        8 => ("saddr", Ty::Raw, 4, false),
        9 => ("daddr", Ty::Raw, 4, false),
        _ => ("?", Ty::Raw, 4, false),
    };
    (format!("ct {d}{name}"), ty, len, ok)
}

fn reject_code(l3: Option<L3>, code: u8) -> Option<&'static str> {
    match l3 {
        Some(L3::Ip6) => match code {
            0 => Some("no-route"),
            1 => Some("admin-prohibited"),
            3 => Some("addr-unreachable"),
            4 => Some("port-unreachable"),
            5 => Some("policy-fail"),
            6 => Some("reject-route"),
            _ => None,
        },
        _ => match code {
            0 => Some("net-unreachable"),
            1 => Some("host-unreachable"),
            2 => Some("prot-unreachable"),
            3 => Some("port-unreachable"),
            9 => Some("net-prohibited"),
            10 => Some("host-prohibited"),
            13 => Some("admin-prohibited"),
            _ => None,
        },
    }
}

fn cmp_op(op: u32) -> Option<&'static str> {
    Some(match op {
        0 => "",
        1 => "!= ",
        2 => "< ",
        3 => "<= ",
        4 => "> ",
        5 => ">= ",
        _ => return None,
    })
}

/// Leading one bits of a mask, when it is a prefix mask (ones then zeros).
fn prefix_len(mask: &[u8]) -> Option<u32> {
    let mut bits = 0u32;
    let mut ended = false;
    for b in mask {
        for i in (0..8).rev() {
            let one = b & (1 << i) != 0;
            if one && ended {
                return None;
            }
            if one {
                bits += 1;
            } else {
                ended = true;
            }
        }
    }
    Some(bits)
}

fn rate_unit(unit: u64) -> Option<&'static str> {
    Some(match unit {
        1 => "second",
        60 => "minute",
        3600 => "hour",
        86400 => "day",
        604800 => "week",
        _ => return None,
    })
}

fn byte_unit(mut v: u64) -> (u64, &'static str) {
    let mut unit = "bytes";
    for next in ["kbytes", "mbytes", "gbytes"] {
        if v >= 1024 && v % 1024 == 0 {
            v /= 1024;
            unit = next;
        } else {
            break;
        }
    }
    (v, unit)
}

impl<'a> Renderer<'a> {
    fn new(family: Family, env: &'a dyn RenderEnv) -> Self {
        let l3 = match family {
            Family::Ip => Some(L3::Ip),
            Family::Ip6 => Some(L3::Ip6),
            _ => None,
        };
        Renderer {
            family,
            env,
            regs: Vec::new(),
            stmts: Vec::new(),
            l3,
            l4: None,
            exact: true,
        }
    }

    fn set_reg(&mut self, r: u32, op: Operand) {
        let i = norm_reg(r);
        if i > 64 {
            self.exact = false;
            return;
        }
        match self.regs.iter_mut().find(|(k, _)| *k == i) {
            Some(slot) => slot.1 = op,
            None => self.regs.push((i, op)),
        }
    }

    fn reg(&mut self, r: u32) -> Operand {
        match self.reg_at(norm_reg(r)) {
            Some(op) => op,
            None => {
                self.exact = false;
                Operand::unknown(format!("<reg {r}>"), 4)
            }
        }
    }

    fn reg_at(&self, i: usize) -> Option<Operand> {
        self.regs
            .iter()
            .find(|(k, _)| *k == i)
            .map(|(_, op)| op.clone())
    }

    fn push(&mut self, text: impl Into<Cow<'static, str>>) {
        self.stmts.push(Stmt {
            text: text.into(),
            dep: None,
        });
    }

    fn fallback(&mut self, text: String) {
        self.exact = false;
        self.push(text);
    }

    /// Drops the implicit dependency of `kind` among the dependency statements just before
    /// this point, as nft does when listing.
    fn pop_dep(&mut self, kind: Dep) -> bool {
        let mut i = self.stmts.len();
        while i > 0 && self.stmts[i - 1].dep.is_some() {
            if self.stmts[i - 1].dep == Some(kind) {
                self.stmts.remove(i - 1);
                return true;
            }
            i -= 1;
        }
        false
    }

    fn value(&mut self, ty: Ty, b: &[u8]) -> String {
        match fmt_value(ty, b, self.env) {
            Some(s) => s,
            None => {
                self.exact = false;
                hex(b)
            }
        }
    }

    /// Key operands for a lookup or dynset: one, or a concatenation spanning `key_len`.
    fn key(&mut self, sreg: u32, key_len: Option<u32>) -> (String, Vec<Operand>) {
        let first = self.reg(sreg);
        let mut parts = vec![first];
        if let Some(total) = key_len {
            let span = |op: &Operand| u64::from(op.loaded.div_ceil(4).max(1)) * 4;
            let mut used = span(&parts[0]);
            let mut idx = norm_reg(sreg).saturating_add(used as usize / 4);
            while used < u64::from(total) && parts.len() < 8 {
                let Some(op) = self.reg_at(idx) else {
                    self.exact = false;
                    break;
                };
                used += span(&op);
                idx = idx.saturating_add(span(&op) as usize / 4);
                parts.push(op);
            }
        }
        if parts.iter().any(|p| !p.exact) {
            self.exact = false;
        }
        let text = parts
            .iter()
            .map(|p| p.text.as_ref())
            .collect::<Vec<_>>()
            .join(" . ");
        (text, parts)
    }

    fn set_ref(&mut self, name: &str) -> String {
        let Some(shape) = self.env.set(name) else {
            if name.starts_with("__") {
                self.exact = false;
            }
            return format!("@{name}");
        };
        if shape.flags & 1 == 0 {
            return format!("@{name}");
        }
        let (text, exact) = match (&shape.inline, &shape.elements) {
            (Some(inline), _) => (inline.0.clone(), inline.1),
            (None, Some(elems)) => render_inline_set(shape, elems, self.env),
            (None, None) => (format!("@{name}"), false),
        };
        if !exact {
            self.exact = false;
        }
        text
    }

    fn expr(&mut self, e: &Expr) {
        match e {
            Expr::Payload {
                dreg,
                base,
                offset,
                len,
            } => {
                if *base == 1 {
                    self.pop_dep(Dep::L3);
                }
                if *base == 2 && self.pop_dep(Dep::L4) {
                    // icmp/icmpv6 imply their network protocol: nft hides that one too.
                    if matches!(
                        (self.l4, self.l3),
                        (Some(1), Some(L3::Ip)) | (Some(58), Some(L3::Ip6))
                    ) {
                        self.pop_dep(Dep::L3);
                    }
                }
                let op = payload_field(*base, *offset, *len, self.l3, self.l4)
                    .or_else(|| merged_fields(*base, *offset, *len, self.l3, self.l4))
                    .unwrap_or_else(|| {
                        let b = match base {
                            0 => "ll",
                            1 => "nh",
                            2 => "th",
                            _ => "ih",
                        };
                        let ok = *base <= 2;
                        Operand {
                            exact: ok,
                            ..Operand::field(
                                format!("@{b},{},{}", u64::from(*offset) * 8, u64::from(*len) * 8),
                                Ty::Integer,
                                *len,
                            )
                        }
                    });
                let op = match op.text.as_ref() {
                    "ip protocol" | "ip6 nexthdr" => Operand {
                        dep: Some(Dep::L4),
                        ..op
                    },
                    "ether type" => Operand {
                        dep: Some(Dep::L3),
                        ..op
                    },
                    _ => op,
                };
                self.set_reg(*dreg, op);
            }
            Expr::Meta { dreg, key } => {
                let op = match meta_key(*key) {
                    Some((name, ty, len)) => {
                        let dep = match key {
                            15 | 1 => Some(Dep::L3),
                            16 => Some(Dep::L4),
                            _ => None,
                        };
                        Operand {
                            dep,
                            ..Operand::field(name, ty, len)
                        }
                    }
                    None => Operand::unknown(meta_key_unknown(*key), 4),
                };
                self.set_reg(*dreg, op);
            }
            Expr::Ct { dreg, key, dir } => {
                let (name, ty, len, ok) = ct_key(*key, *dir);
                let op = Operand {
                    exact: ok,
                    ..Operand::field(name, ty, len)
                };
                self.set_reg(*dreg, op);
            }
            Expr::Bitwise {
                sreg,
                dreg,
                op,
                mask,
                xor,
                shift,
                ..
            } => {
                let mut src = self.reg(*sreg);
                if *op == 0 && src.mask.is_none() {
                    src.mask = Some((mask.clone(), xor.clone()));
                } else {
                    let sym = if *op == 1 { "<<" } else { ">>" };
                    src = Operand::unknown(format!("({} {sym} {shift})", src.text), src.loaded);
                }
                src.dep = None;
                self.set_reg(*dreg, src);
            }
            Expr::Byteorder { sreg, dreg, op, .. } => {
                let src = self.reg(*sreg);
                // nft converts host-order values (meta length) to network order to compare
                // ranges; the operand stays the same field, now big endian.
                let op = match (src.ty, op) {
                    (Ty::IntHost, 1) => Operand {
                        ty: Ty::Integer,
                        dep: None,
                        ..src
                    },
                    _ => Operand::unknown(format!("<byteorder {}>", src.text), src.loaded),
                };
                self.set_reg(*dreg, op);
            }
            Expr::Cmp { sreg, op, data } => self.cmp(*sreg, *op, data),
            Expr::Range { sreg, op, from, to } => {
                let lhs = self.reg(*sreg);
                let neg = if *op == 1 { "!= " } else { "" };
                let a = self.value(lhs.ty, from);
                let b = self.value(lhs.ty, to);
                if !lhs.exact || lhs.mask.is_some() {
                    self.exact = false;
                }
                self.push(format!("{} {neg}{a}-{b}", lhs.text));
            }
            Expr::Immediate { dreg, data } => match data {
                Data::Verdict(v) => {
                    let fixed = match v {
                        Verdict::Accept => Some("accept"),
                        Verdict::Drop => Some("drop"),
                        Verdict::Return => Some("return"),
                        Verdict::Continue => Some("continue"),
                        Verdict::Queue => Some("queue"),
                        _ => None,
                    };
                    if let Some(t) = fixed {
                        self.push(t);
                    } else if !matches!(v, Verdict::Other(_)) {
                        self.push(v.to_string());
                    } else {
                        self.fallback(v.to_string());
                    }
                }
                Data::Value(b) => {
                    let op = Operand {
                        exact: true,
                        ..Operand::field(hex(b), Ty::Raw, b.len() as u32)
                    };
                    self.set_reg(
                        *dreg,
                        Operand {
                            mask: Some((b.clone(), Vec::new())),
                            ..op
                        },
                    );
                }
            },
            Expr::Lookup {
                set,
                sreg,
                dreg,
                invert,
            } => {
                let key_len = self.env.set(set).map(|s| s.key_len);
                let (key, _parts) = self.key(*sreg, key_len);
                match dreg {
                    None => {
                        let s = self.set_ref(set);
                        let neg = if *invert { "!= " } else { "" };
                        self.push(format!("{key} {neg}{s}"));
                    }
                    Some(0) => {
                        let s = self.set_ref(set);
                        self.push(format!("{key} vmap {s}"));
                    }
                    Some(r) => {
                        let s = self.set_ref(set);
                        let data_ty = self
                            .env
                            .set(set)
                            .and_then(|s| s.data_type)
                            .map(Ty::from_id)
                            .unwrap_or(Ty::Raw);
                        let op = Operand {
                            dep: None,
                            ..Operand::field(format!("{key} map {s}"), data_ty, 4)
                        };
                        let op = Operand {
                            mask: Some((b"map".to_vec(), Vec::new())),
                            ..op
                        };
                        self.set_reg(*r, op);
                    }
                }
            }
            Expr::Dynset {
                op,
                set,
                sreg_key,
                sreg_data,
                timeout_ms,
                exprs,
            } => {
                let key_len = self.env.set(set).map(|s| s.key_len);
                let (key, _) = self.key(*sreg_key, key_len);
                let verb = match op {
                    0 => "add",
                    1 => "update",
                    2 => "delete",
                    _ => {
                        self.exact = false;
                        "<dynset op>"
                    }
                };
                let mut inner = key;
                if let Some(t) = timeout_ms.filter(|t| *t > 0) {
                    let _ = write!(inner, " timeout {}", format_duration_ms(t));
                }
                for sub in exprs {
                    let mut r = Renderer::new(self.family, self.env);
                    r.expr(sub);
                    if !r.exact {
                        self.exact = false;
                    }
                    for s in r.stmts {
                        inner.push(' ');
                        inner.push_str(&s.text);
                    }
                }
                if let Some(d) = sreg_data {
                    let data = self.reg(*d);
                    let _ = write!(inner, " : {}", data.text);
                    self.exact = false;
                }
                self.push(format!("{verb} @{set} {{ {inner} }}"));
            }
            Expr::Counter { .. } => self.push("counter"),
            Expr::Objref { kind, name } => match kind {
                1 => self.push(format!("counter name \"{name}\"")),
                2 => self.push(format!("quota name \"{name}\"")),
                4 => self.push(format!("limit name \"{name}\"")),
                _ => self.fallback(format!("<objref {kind} \"{name}\">")),
            },
            Expr::ObjrefMap { sreg, set } => {
                let (key, _) = self.key(*sreg, None);
                self.fallback(format!("<objref {key} map @{set}>"));
            }
            Expr::Log {
                prefix,
                group,
                snaplen,
                qthreshold,
                level,
                flags,
            } => {
                let mut s = String::from("log");
                if let Some(p) = prefix {
                    if p.contains('"') {
                        self.exact = false;
                    }
                    let _ = write!(s, " prefix \"{p}\"");
                }
                if let Some(g) = group {
                    let _ = write!(s, " group {g}");
                }
                if let Some(n) = snaplen {
                    let _ = write!(s, " snaplen {n}");
                }
                if let Some(q) = qthreshold {
                    let _ = write!(s, " queue-threshold {q}");
                }
                if let Some(l) = level.filter(|l| *l != 4) {
                    let names = [
                        "emerg", "alert", "crit", "err", "warn", "notice", "info", "debug", "audit",
                    ];
                    match names.get(l as usize) {
                        Some(n) => {
                            let _ = write!(s, " level {n}");
                        }
                        None => {
                            self.exact = false;
                            let _ = write!(s, " level {l}");
                        }
                    }
                }
                if flags & 0x2f == 0x2f {
                    s.push_str(" flags all");
                } else {
                    match flags & 3 {
                        1 => s.push_str(" flags tcp sequence"),
                        2 => s.push_str(" flags tcp options"),
                        3 => s.push_str(" flags tcp sequence,options"),
                        _ => {}
                    }
                    if flags & 4 != 0 {
                        s.push_str(" flags ip options");
                    }
                    if flags & 8 != 0 {
                        s.push_str(" flags skuid");
                    }
                    if flags & 0x20 != 0 {
                        s.push_str(" flags ether");
                    }
                }
                self.push(s);
            }
            Expr::Limit {
                rate,
                unit,
                burst,
                bytes,
                invert,
            } => {
                let over = if *invert { "over " } else { "" };
                let Some(u) = rate_unit(*unit) else {
                    self.fallback(format!("limit rate {over}{rate}/{unit}s"));
                    return;
                };
                if *bytes {
                    let (r, ru) = byte_unit(*rate);
                    let mut s = format!("limit rate {over}{r} {ru}/{u}");
                    if *burst != 0 {
                        let (b, bu) = byte_unit(u64::from(*burst));
                        let _ = write!(s, " burst {b} {bu}");
                    }
                    self.push(s);
                } else {
                    let mut s = format!("limit rate {over}{rate}/{u}");
                    if *burst != 0 && *burst != 5 {
                        let _ = write!(s, " burst {burst} packets");
                    }
                    self.push(s);
                }
            }
            Expr::Quota { bytes, invert, .. } => {
                let over = if *invert { "over " } else { "" };
                let (v, u) = byte_unit(*bytes);
                // `used` changes with traffic; nft would print it, the text here does not.
                self.push(format!("quota {over}{v} {u}"));
                self.exact = false;
            }
            Expr::Nat {
                kind,
                family,
                addr_min,
                addr_max,
                proto_min,
                proto_max,
                flags,
            } => self.nat(
                *kind, *family, *addr_min, *addr_max, *proto_min, *proto_max, *flags,
            ),
            Expr::Masq {
                flags,
                proto_min,
                proto_max,
            } => {
                let mut s = String::from("masquerade");
                let ports = self.ports(*proto_min, *proto_max);
                if !ports.is_empty() {
                    let _ = write!(s, " to {ports}");
                }
                s.push_str(&self.nat_flags(*flags));
                self.push(s);
            }
            Expr::Redir {
                flags,
                proto_min,
                proto_max,
            } => {
                let mut s = String::from("redirect");
                let ports = self.ports(*proto_min, *proto_max);
                if !ports.is_empty() {
                    let _ = write!(s, " to {ports}");
                }
                s.push_str(&self.nat_flags(*flags));
                self.push(s);
            }
            Expr::Reject { kind, code } => {
                let s = match (kind, self.family) {
                    (0, Family::Ip) if *code == 3 => "reject".to_string(),
                    (0, Family::Ip6) if *code == 4 => "reject".to_string(),
                    (0, _) => {
                        self.pop_dep(Dep::L3);
                        let (proto, l3) = match (self.family, self.l3) {
                            (Family::Ip6, _) | (_, Some(L3::Ip6)) => ("icmpv6", Some(L3::Ip6)),
                            _ => ("icmp", Some(L3::Ip)),
                        };
                        match reject_code(l3, *code) {
                            Some(n) => format!("reject with {proto} {n}"),
                            None => {
                                self.exact = false;
                                format!("reject with {proto} {code}")
                            }
                        }
                    }
                    (1, _) => "reject with tcp reset".to_string(),
                    (2, _) if *code == 1 => "reject".to_string(),
                    (2, _) => match code {
                        0 => "reject with icmpx no-route".into(),
                        2 => "reject with icmpx host-unreachable".into(),
                        3 => "reject with icmpx admin-prohibited".into(),
                        _ => {
                            self.exact = false;
                            format!("reject with icmpx {code}")
                        }
                    },
                    _ => {
                        self.exact = false;
                        format!("<reject {kind} {code}>")
                    }
                };
                self.push(s);
            }
            Expr::Queue { num, total, flags } => {
                let mut s = String::from("queue");
                let mut fl = Vec::new();
                if flags & 1 != 0 {
                    fl.push("bypass");
                }
                if flags & 2 != 0 {
                    fl.push("fanout");
                }
                if !fl.is_empty() {
                    let _ = write!(s, " flags {}", fl.join(","));
                }
                if *total > 1 {
                    let _ = write!(s, " to {}-{}", num, u32::from(*num) + u32::from(*total) - 1);
                } else {
                    let _ = write!(s, " to {num}");
                }
                self.push(s);
            }
            Expr::Notrack => self.push("notrack"),
            Expr::MetaSet { sreg, key } => {
                let src = self.reg(*sreg);
                let (name, ty) = match meta_key(*key) {
                    Some((n, ty, _)) => (n.to_string(), ty),
                    None => {
                        self.exact = false;
                        (meta_key_unknown(*key).to_string(), Ty::Raw)
                    }
                };
                // `iifname`, `mark`... are written `meta mark set` when assigned.
                let name = if name.starts_with("meta ") {
                    name
                } else {
                    format!("meta {name}")
                };
                let v = self.rhs(&src, ty);
                self.push(format!("{name} set {v}"));
            }
            Expr::CtSet { sreg, key, dir } => {
                let src = self.reg(*sreg);
                let (name, ty, _, ok) = ct_key(*key, *dir);
                if !ok {
                    self.exact = false;
                }
                let v = self.rhs(&src, ty);
                self.push(format!("{name} set {v}"));
            }
            Expr::PayloadSet {
                base, offset, len, ..
            } => {
                self.fallback(format!("<payload set {base}:{offset}:{len}>"));
            }
            Expr::Other {
                name,
                dreg: Some(d),
            } => {
                self.exact = false;
                self.set_reg(*d, Operand::unknown(format!("<{name}>"), 4));
            }
            Expr::Other { name, dreg: None } => self.fallback(format!("<{name}>")),
            Expr::Undecodable { name, reason } => {
                self.fallback(format!("<{name}: undecodable: {reason}>"))
            }
        }
    }

    /// The right-hand side of a `set` statement: an immediate value or another operand.
    fn rhs(&mut self, src: &Operand, ty: Ty) -> String {
        match (&src.ty, &src.mask) {
            (Ty::Raw, Some((b, x))) if x.is_empty() && src.text.starts_with("0x") => {
                self.value(ty, b)
            }
            _ => {
                if !src.exact || src.mask.is_some() {
                    self.exact = false;
                }
                src.text.to_string()
            }
        }
    }

    fn imm(&mut self, reg: Option<u32>) -> Option<Operand> {
        reg.map(|r| self.reg(r))
    }

    fn imm_value(&mut self, op: &Operand, ty: Ty) -> String {
        match (&op.ty, &op.mask) {
            (Ty::Raw, Some((b, x))) if x.is_empty() && op.text.starts_with("0x") => {
                let b = b.clone();
                self.value(ty, &b)
            }
            _ => {
                if !op.exact {
                    self.exact = false;
                }
                op.text.to_string()
            }
        }
    }

    fn ports(&mut self, min: Option<u32>, max: Option<u32>) -> String {
        let (Some(lo), hi) = (self.imm(min), self.imm(max)) else {
            return String::new();
        };
        let lo_s = self.imm_value(&lo, Ty::Port);
        match hi {
            Some(hi) => {
                let hi_s = self.imm_value(&hi, Ty::Port);
                if hi_s == lo_s {
                    format!(":{lo_s}")
                } else {
                    format!(":{lo_s}-{hi_s}")
                }
            }
            None => format!(":{lo_s}"),
        }
    }

    fn nat_flags(&mut self, flags: u32) -> String {
        let mut names = Vec::new();
        // NF_NAT_RANGE_*: 1 map ips and 2 proto specified are implied by the addresses.
        let rest = flags & !3;
        for (bit, n) in [
            (4, "random"),
            (16, "fully-random"),
            (8, "persistent"),
            (64, "netmap"),
        ] {
            if rest & bit != 0 {
                names.push(n);
            }
        }
        if rest & !(4 | 16 | 8 | 64) != 0 {
            self.exact = false;
        }
        if names.is_empty() {
            String::new()
        } else {
            format!(" {}", names.join(","))
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn nat(
        &mut self,
        kind: u32,
        family: u32,
        amin: Option<u32>,
        amax: Option<u32>,
        pmin: Option<u32>,
        pmax: Option<u32>,
        flags: u32,
    ) {
        let verb = match kind {
            0 => "snat",
            1 => "dnat",
            _ => {
                self.fallback(format!("<nat {kind}>"));
                return;
            }
        };
        let (fam, ty) = match family {
            10 => ("ip6", Ty::Ipv6),
            _ => ("ip", Ty::Ipv4),
        };
        let mut s = verb.to_string();
        if matches!(self.family, Family::Inet | Family::Bridge | Family::Netdev) && amin.is_some() {
            let _ = write!(s, " {fam}");
        }
        let mut addr = String::new();
        if let Some(lo) = self.imm(amin) {
            let lo_s = self.imm_value(&lo, ty);
            addr = lo_s.clone();
            if let Some(hi) = self.imm(amax) {
                let hi_s = self.imm_value(&hi, ty);
                if hi_s != lo_s {
                    addr = format!("{lo_s}-{hi_s}");
                }
            }
        }
        let ports = self.ports(pmin, pmax);
        if !addr.is_empty() || !ports.is_empty() {
            let addr = if ty == Ty::Ipv6 && !ports.is_empty() && !addr.is_empty() {
                format!("[{addr}]")
            } else {
                addr
            };
            let _ = write!(s, " to {addr}{ports}");
        }
        s.push_str(&self.nat_flags(flags));
        self.push(s);
    }

    fn cmp(&mut self, sreg: u32, op: u32, data: &[u8]) {
        let lhs = self.reg(sreg);
        if !lhs.exact {
            self.exact = false;
        }
        let Some(ops) = cmp_op(op) else {
            self.fallback(format!("{} <cmp {op}> {}", lhs.text, hex(data)));
            return;
        };
        if !lhs.parts.is_empty() {
            let total: u32 = lhs.parts.iter().map(|p| p.2).sum();
            if op == 0 && lhs.mask.is_none() && total as usize == data.len() {
                let mut at = 0usize;
                for (name, ty, w) in lhs.parts.clone() {
                    let v = self.value(ty, &data[at..at + w as usize]);
                    self.push(format!("{name} {v}"));
                    at += w as usize;
                }
            } else {
                self.fallback(format!("{} {ops}{}", lhs.text, hex(data)));
            }
            return;
        }
        let text = match &lhs.mask {
            Some((m, _)) if m.as_slice() == b"map" => {
                self.exact = false;
                format!("{} {ops}{}", lhs.text, hex(data))
            }
            Some((mask, xor)) => {
                let xor_zero = xor.iter().all(|b| *b == 0);
                let data_zero = data.iter().all(|b| *b == 0);
                if lhs.ty.is_bitmask() && xor_zero && op == 1 && data_zero {
                    // `ct state established,related`: (reg & mask) != 0
                    let v = self.value(lhs.ty, mask);
                    format!("{} {v}", lhs.text)
                } else if let (true, Some(bits), true, true) = (
                    matches!(lhs.ty, Ty::Ipv4 | Ty::Ipv6 | Ty::Ether | Ty::Integer),
                    prefix_len(mask),
                    xor_zero,
                    op <= 1,
                ) {
                    let v = self.value(lhs.ty, data);
                    if matches!(lhs.ty, Ty::Ipv4 | Ty::Ipv6) {
                        format!("{} {ops}{v}/{bits}", lhs.text)
                    } else {
                        self.exact = false;
                        format!("{} & {} {ops}{v}", lhs.text, hex(mask))
                    }
                } else if xor_zero && lhs.ty.is_bitmask() {
                    let m = match (lhs.ty, be_uint(mask), host_uint(mask)) {
                        (Ty::TcpFlags, Some(v), _) => flag_list(v as u32, TCP_FLAGS, " | "),
                        (Ty::CtState, _, Some(v)) => flag_list(v as u32, CT_STATES, " | "),
                        (Ty::CtStatus, _, Some(v)) => flag_list(v as u32, CT_STATUS, " | "),
                        _ => None,
                    };
                    let v = if data_zero {
                        Some("0".to_string())
                    } else {
                        fmt_value(lhs.ty, data, self.env).map(|s| s.replace(',', " | "))
                    };
                    match (m, v) {
                        (Some(m), Some(v)) => {
                            let eq = if ops.is_empty() { "== " } else { ops };
                            format!("{} & ({m}) {eq}{v}", lhs.text)
                        }
                        _ => {
                            self.exact = false;
                            format!("{} & {} {ops}{}", lhs.text, hex(mask), hex(data))
                        }
                    }
                } else {
                    self.exact = false;
                    format!(
                        "{} & {} ^ {} {ops}{}",
                        lhs.text,
                        hex(mask),
                        hex(xor),
                        hex(data)
                    )
                }
            }
            None if lhs.loaded < lhs.full => {
                let v = self.value(lhs.ty, data);
                format!("{} {ops}{v}/{}", lhs.text, lhs.loaded * 8)
            }
            None => {
                let v = self.value(lhs.ty, data);
                // Plain equality on a flag type is written with `==`.
                let ops = if lhs.ty.is_bitmask() && op == 0 {
                    "== "
                } else {
                    ops
                };
                // The most common statement of all (`tcp dport 22`): no formatting machinery.
                let mut t = String::with_capacity(lhs.text.len() + 1 + ops.len() + v.len());
                t.push_str(&lhs.text);
                t.push(' ');
                t.push_str(ops);
                t.push_str(&v);
                t
            }
        };
        // nft writes a range as `>= lo` then `<= hi` on the same operand: `lo-hi`.
        if op == 3 && lhs.mask.is_none() {
            let lo_prefix = format!("{} >= ", lhs.text);
            if let Some(prev) = self.stmts.last_mut() {
                if let Some(lo) = prev.text.strip_prefix(&lo_prefix) {
                    let hi = text
                        .strip_prefix(&format!("{} <= ", lhs.text))
                        .unwrap_or_default();
                    prev.text = format!("{} {lo}-{hi}", lhs.text).into();
                    return;
                }
            }
        }
        let dep = if op == 0 && lhs.mask.is_none() {
            lhs.dep
        } else {
            None
        };
        match dep {
            Some(Dep::L3) => {
                self.l3 = match (lhs.ty, data.first(), be_uint(data)) {
                    (Ty::NfProto, Some(2), _) => Some(L3::Ip),
                    (Ty::NfProto, Some(10), _) => Some(L3::Ip6),
                    (Ty::EtherType, _, Some(0x0800)) => Some(L3::Ip),
                    (Ty::EtherType, _, Some(0x86dd)) => Some(L3::Ip6),
                    _ => self.l3,
                };
            }
            Some(Dep::L4) => self.l4 = data.first().copied(),
            None => {}
        }
        self.stmts.push(Stmt {
            text: text.into(),
            dep,
        });
    }
}

/// Renders a rule's expressions as nft syntax.
pub fn render_rule(family: Family, exprs: &[Expr], env: &dyn RenderEnv) -> Rendered {
    let mut text = String::new();
    let exact = render_rule_into(family, exprs, env, &mut text);
    Rendered { text, exact }
}

/// Renders a rule's expressions, appending the text to `out`; returns whether it is exact.
pub fn render_rule_into(
    family: Family,
    exprs: &[Expr],
    env: &dyn RenderEnv,
    out: &mut String,
) -> bool {
    let mut r = Renderer::new(family, env);
    for e in exprs {
        r.expr(e);
    }
    for (i, s) in r.stmts.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&s.text);
    }
    r.exact
}

/// Field types and widths of a set's key (one per concatenated field).
fn key_fields(shape: &SetShape) -> Vec<(Ty, u32)> {
    let ids = concat_ids(shape.key_type);
    if ids.len() == 1 {
        let mut ty = Ty::from_id(ids[0]);
        if ty == Ty::Integer && shape.key_byteorder == Some(1) {
            ty = Ty::IntHost;
        }
        return vec![(ty, shape.key_len)];
    }
    ids.iter()
        .enumerate()
        .map(|(i, id)| {
            let ty = Ty::from_id(*id);
            let w = shape.field_lens.get(i).copied().unwrap_or(ty.width());
            (ty, w)
        })
        .collect()
}

fn fmt_key(fields: &[(Ty, u32)], key: &[u8], env: &dyn RenderEnv) -> (Vec<String>, bool) {
    let mut out = Vec::new();
    let mut ok = true;
    let mut at = 0usize;
    let multi = fields.len() > 1;
    for (ty, w) in fields {
        let w = *w as usize;
        let Some(b) = key.get(at..(at + w).min(key.len())) else {
            ok = false;
            break;
        };
        match fmt_value(*ty, b, env) {
            Some(s) => out.push(s),
            None => {
                ok = false;
                out.push(hex(b));
            }
        }
        // Concatenated fields sit in 32-bit registers.
        at += if multi { w.div_ceil(4) * 4 } else { w };
    }
    (out, ok)
}

/// Adds one to a big-endian byte string (the kernel's interval ends are exclusive).
fn minus_one(b: &[u8]) -> Vec<u8> {
    let mut v = b.to_vec();
    for x in v.iter_mut().rev() {
        if *x == 0 {
            *x = 0xff;
        } else {
            *x -= 1;
            break;
        }
    }
    v
}

fn range_text(ty: Ty, lo: &[u8], hi: &[u8], env: &dyn RenderEnv) -> Option<String> {
    if lo == hi {
        return fmt_value(ty, lo, env);
    }
    if matches!(ty, Ty::Ipv4 | Ty::Ipv6) && lo.len() == hi.len() {
        // An aligned block is a prefix: lo has zeros where hi has ones, below a common head.
        let diff: Vec<u8> = lo.iter().zip(hi).map(|(a, b)| a ^ b).collect();
        let inverted: Vec<u8> = diff.iter().map(|d| !d).collect();
        if let Some(bits) = prefix_len(&inverted) {
            let aligned = lo.iter().zip(&diff).all(|(a, d)| a & d == 0)
                && hi.iter().zip(&diff).all(|(h, d)| h & d == *d);
            if aligned {
                return Some(format!("{}/{bits}", fmt_value(ty, lo, env)?));
            }
        }
    }
    Some(format!(
        "{}-{}",
        fmt_value(ty, lo, env)?,
        fmt_value(ty, hi, env)?
    ))
}

fn data_text(shape: &SetShape, d: &Data, env: &dyn RenderEnv) -> (String, bool) {
    match d {
        Data::Verdict(v) => (v.to_string(), !matches!(v, Verdict::Other(_))),
        Data::Value(b) => {
            let ids = concat_ids(shape.data_type.unwrap_or(0));
            let fields: Vec<(Ty, u32)> = if ids.len() == 1 {
                vec![(Ty::from_id(ids[0]), shape.data_len)]
            } else {
                ids.iter()
                    .map(|id| (Ty::from_id(*id), Ty::from_id(*id).width()))
                    .collect()
            };
            let (parts, ok) = fmt_key(&fields, b, env);
            (parts.join(" . "), ok)
        }
    }
}

/// Turns a set's raw elements into readable ones: interval start/end pairs become ranges or
/// prefixes, concatenations are split, map data is formatted. The bool says the text is
/// faithful.
pub fn render_elements(
    shape: &SetShape,
    elems: &[RawElement],
    env: &dyn RenderEnv,
) -> Vec<(SetElement, bool)> {
    let fields = key_fields(shape);
    let interval = shape.flags & 4 != 0;
    let mut out = Vec::new();
    let mk = |key: String, e: &RawElement, ok: bool| {
        let (data, dok) = match &e.data {
            Some(d) => {
                let (t, ok) = data_text(shape, d, env);
                (Some(t), ok)
            }
            None => (e.objref.as_ref().map(|o| format!("\"{o}\"")), true),
        };
        (
            SetElement {
                key,
                data,
                timeout_ms: e.timeout_ms,
                expires_ms: e.expires_ms,
                comment: e.comment.clone(),
                counter: e.counter.map(|(packets, bytes)| Counter { packets, bytes }),
            },
            ok && dok,
        )
    };
    if !interval || fields.len() > 1 {
        let mut sorted: Vec<&RawElement> = elems.iter().collect();
        sorted.sort_by(|a, b| a.key.cmp(&b.key));
        for e in sorted {
            if e.flags & 1 != 0 {
                continue;
            }
            if e.flags & 2 != 0 {
                out.push(mk("*".into(), e, true));
                continue;
            }
            let (lo, ok1) = fmt_key(&fields, &e.key, env);
            let key = match &e.key_end {
                Some(end) if interval => {
                    // Concatenated ranges: field by field.
                    let mut parts = Vec::new();
                    let mut ok = ok1;
                    let mut at = 0usize;
                    for (ty, w) in &fields {
                        let w = *w as usize;
                        let span = w.div_ceil(4) * 4;
                        let (Some(a), Some(b)) = (e.key.get(at..at + w), end.get(at..at + w))
                        else {
                            ok = false;
                            break;
                        };
                        match range_text(*ty, a, b, env) {
                            Some(t) => parts.push(t),
                            None => {
                                ok = false;
                                parts.push(hex(a));
                            }
                        }
                        at += span;
                    }
                    (parts.join(" . "), ok)
                }
                _ => (lo.join(" . "), ok1),
            };
            out.push(mk(key.0, e, key.1));
        }
        return out;
    }
    // Single-field interval set: the kernel keeps starts and (exclusive) ends.
    let ty = fields[0].0;
    let mut sorted: Vec<&RawElement> = elems.iter().collect();
    sorted.sort_by(|a, b| {
        a.key
            .cmp(&b.key)
            .then((a.flags & 1 == 0).cmp(&(b.flags & 1 == 0)))
    });
    let mut i = 0;
    while i < sorted.len() {
        let e = sorted[i];
        if e.flags & 2 != 0 {
            out.push(mk("*".into(), e, true));
            i += 1;
            continue;
        }
        if e.flags & 1 != 0 {
            i += 1;
            continue;
        }
        let hi = match sorted.get(i + 1) {
            Some(n) if n.flags & 1 != 0 => {
                i += 1;
                minus_one(&n.key)
            }
            _ => vec![0xff; e.key.len()],
        };
        let (text, ok) = match range_text(ty, &e.key, &hi, env) {
            Some(t) => (t, true),
            None => (format!("{}-{}", hex(&e.key), hex(&hi)), false),
        };
        out.push(mk(text, e, ok));
        i += 1;
    }
    out
}

/// An anonymous set written inline, `{ 80, 443 }` (maps with their data: `{ 22 : accept }`);
/// the bool says the text is exact.
pub fn render_inline_set(
    shape: &SetShape,
    elems: &[RawElement],
    env: &dyn RenderEnv,
) -> (String, bool) {
    let rendered = render_elements(shape, elems, env);
    let exact = rendered.iter().all(|e| e.1);
    let items: Vec<String> = rendered
        .into_iter()
        .map(|(e, _)| match e.data {
            Some(d) => format!("{} : {}", e.key, d),
            None => e.key,
        })
        .collect();
    (format!("{{ {} }}", items.join(", ")), exact)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Env {
        sets: HashMap<String, SetShape>,
    }
    impl RenderEnv for Env {
        fn set(&self, name: &str) -> Option<&SetShape> {
            self.sets.get(name)
        }
        fn ifname(&self, index: u32) -> Option<String> {
            (index == 1).then(|| "lo".to_string())
        }
    }

    fn cmp(sreg: u32, data: &[u8]) -> Expr {
        Expr::Cmp {
            sreg,
            op: 0,
            data: data.to_vec(),
        }
    }
    fn verdict(v: Verdict) -> Expr {
        Expr::Immediate {
            dreg: 0,
            data: Data::Verdict(v),
        }
    }

    #[test]
    fn inet_saddr_and_dport_hide_their_dependencies() {
        // nft --debug=netlink: inet t c ip saddr 192.0.2.1 tcp dport 22 counter accept
        let exprs = vec![
            Expr::Meta { dreg: 1, key: 15 },
            cmp(1, &[2]),
            Expr::Payload {
                dreg: 1,
                base: 1,
                offset: 12,
                len: 4,
            },
            cmp(1, &[192, 0, 2, 1]),
            Expr::Meta { dreg: 1, key: 16 },
            cmp(1, &[6]),
            Expr::Payload {
                dreg: 1,
                base: 2,
                offset: 2,
                len: 2,
            },
            cmp(1, &[0, 22]),
            Expr::Counter {
                packets: 3,
                bytes: 180,
            },
            verdict(Verdict::Accept),
        ];
        let r = render_rule(Family::Inet, &exprs, &Env::default());
        assert_eq!(r.text, "ip saddr 192.0.2.1 tcp dport 22 counter accept");
        assert!(r.exact);
    }

    #[test]
    fn l4proto_without_transport_match_stays_visible() {
        let exprs = vec![
            Expr::Meta { dreg: 1, key: 16 },
            cmp(1, &[17]),
            verdict(Verdict::Drop),
        ];
        let r = render_rule(Family::Inet, &exprs, &Env::default());
        assert_eq!(r.text, "meta l4proto udp drop");
    }

    #[test]
    fn ct_state_mask_reads_as_flag_list() {
        let exprs = vec![
            Expr::Ct {
                dreg: 1,
                key: 0,
                dir: None,
            },
            Expr::Bitwise {
                sreg: 1,
                dreg: 1,
                len: 4,
                op: 0,
                mask: 6u32.to_ne_bytes().to_vec(),
                xor: vec![0; 4],
                shift: 0,
            },
            Expr::Cmp {
                sreg: 1,
                op: 1,
                data: vec![0; 4],
            },
            verdict(Verdict::Accept),
        ];
        let r = render_rule(Family::Inet, &exprs, &Env::default());
        assert_eq!(r.text, "ct state established,related accept");
        assert!(r.exact);
    }

    #[test]
    fn trimmed_prefix_load_reads_as_prefix() {
        let exprs = vec![
            Expr::Payload {
                dreg: 1,
                base: 1,
                offset: 12,
                len: 3,
            },
            cmp(1, &[10, 1, 2]),
            verdict(Verdict::Drop),
        ];
        let r = render_rule(Family::Ip, &exprs, &Env::default());
        assert_eq!(r.text, "ip saddr 10.1.2.0/24 drop");
    }

    #[test]
    fn masked_prefix_reads_as_prefix() {
        let exprs = vec![
            Expr::Payload {
                dreg: 1,
                base: 1,
                offset: 16,
                len: 3,
            },
            Expr::Bitwise {
                sreg: 1,
                dreg: 1,
                len: 3,
                op: 0,
                mask: vec![255, 255, 240],
                xor: vec![0; 3],
                shift: 0,
            },
            Expr::Cmp {
                sreg: 1,
                op: 1,
                data: vec![10, 1, 16],
            },
        ];
        let r = render_rule(Family::Ip, &exprs, &Env::default());
        assert_eq!(r.text, "ip daddr != 10.1.16.0/20");
    }

    #[test]
    fn anonymous_set_and_vmap_show_elements() {
        let mut env = Env::default();
        env.sets.insert(
            "__set0".into(),
            SetShape {
                key_type: 13,
                key_len: 2,
                flags: 1 | 2,
                elements: Some(std::sync::Arc::new(vec![
                    RawElement {
                        key: vec![1, 187],
                        ..Default::default()
                    },
                    RawElement {
                        key: vec![0, 80],
                        ..Default::default()
                    },
                ])),
                ..Default::default()
            },
        );
        env.sets.insert(
            "__map0".into(),
            SetShape {
                key_type: 12,
                key_len: 1,
                data_type: Some(0xffff_ff00),
                flags: 1 | 2 | 8,
                elements: Some(std::sync::Arc::new(vec![
                    RawElement {
                        key: vec![6],
                        data: Some(Data::Verdict(Verdict::Jump("tcp_in".into()))),
                        ..Default::default()
                    },
                    RawElement {
                        key: vec![17],
                        data: Some(Data::Verdict(Verdict::Drop)),
                        ..Default::default()
                    },
                ])),
                ..Default::default()
            },
        );
        let exprs = vec![
            Expr::Meta { dreg: 1, key: 16 },
            cmp(1, &[6]),
            Expr::Payload {
                dreg: 1,
                base: 2,
                offset: 2,
                len: 2,
            },
            Expr::Lookup {
                set: "__set0".into(),
                sreg: 1,
                dreg: None,
                invert: false,
            },
            Expr::Meta { dreg: 1, key: 16 },
            Expr::Lookup {
                set: "__map0".into(),
                sreg: 1,
                dreg: Some(0),
                invert: false,
            },
        ];
        let r = render_rule(Family::Inet, &exprs, &env);
        assert_eq!(
            r.text,
            "tcp dport { 80, 443 } meta l4proto vmap { tcp : jump tcp_in, udp : drop }"
        );
        assert!(r.exact);
    }

    #[test]
    fn concatenation_lookup_and_dynset() {
        let mut env = Env::default();
        env.sets.insert(
            "pairs".into(),
            SetShape {
                key_type: (7 << 6) | 13,
                key_len: 8,
                ..Default::default()
            },
        );
        let exprs = vec![
            Expr::Meta { dreg: 1, key: 15 },
            cmp(1, &[2]),
            Expr::Payload {
                dreg: 9,
                base: 1,
                offset: 12,
                len: 4,
            },
            Expr::Meta { dreg: 1, key: 16 },
            cmp(1, &[6]),
            Expr::Payload {
                dreg: 10,
                base: 2,
                offset: 2,
                len: 2,
            },
            Expr::Lookup {
                set: "pairs".into(),
                sreg: 9,
                dreg: None,
                invert: false,
            },
            Expr::Payload {
                dreg: 1,
                base: 1,
                offset: 12,
                len: 4,
            },
            Expr::Dynset {
                op: 0,
                set: "Step1".into(),
                sreg_key: 1,
                sreg_data: None,
                timeout_ms: Some(10_000),
                exprs: vec![],
            },
            verdict(Verdict::Drop),
        ];
        let r = render_rule(Family::Inet, &exprs, &env);
        assert_eq!(
            r.text,
            "ip saddr . tcp dport @pairs add @Step1 { ip saddr timeout 10s } drop"
        );
    }

    #[test]
    fn merged_adjacent_fields_are_split_again() {
        // nft merges `ip ttl 1 ip protocol udp` into one 2-byte load at offset 8.
        let exprs = vec![
            Expr::Meta { dreg: 1, key: 15 },
            cmp(1, &[2]),
            Expr::Payload {
                dreg: 1,
                base: 1,
                offset: 8,
                len: 2,
            },
            cmp(1, &[1, 17]),
        ];
        let r = render_rule(Family::Inet, &exprs, &Env::default());
        assert_eq!(r.text, "ip ttl 1 ip protocol udp");
        assert!(r.exact);
    }

    #[test]
    fn unknown_expressions_are_kept_by_name() {
        let exprs = vec![
            Expr::Other {
                name: "fib".into(),
                dreg: None,
            },
            verdict(Verdict::Drop),
        ];
        let r = render_rule(Family::Inet, &exprs, &Env::default());
        assert_eq!(r.text, "<fib> drop");
        assert!(!r.exact);
    }

    #[test]
    fn nat_log_limit_reject() {
        let exprs = vec![
            Expr::Meta { dreg: 1, key: 6 },
            cmp(1, b"veth0\0\0\0\0\0\0\0\0\0\0\0"),
            Expr::Immediate {
                dreg: 1,
                data: Data::Value(vec![10, 0, 0, 2]),
            },
            Expr::Immediate {
                dreg: 2,
                data: Data::Value(vec![0x1f, 0x90]),
            },
            Expr::Nat {
                kind: 1,
                family: 2,
                addr_min: Some(1),
                addr_max: None,
                proto_min: Some(2),
                proto_max: None,
                flags: 3,
            },
        ];
        let r = render_rule(Family::Ip, &exprs, &Env::default());
        assert_eq!(r.text, "iifname \"veth0\" dnat to 10.0.0.2:8080");
        let exprs = vec![
            Expr::Limit {
                rate: 2,
                unit: 60,
                burst: 5,
                bytes: false,
                invert: false,
            },
            Expr::Counter {
                packets: 0,
                bytes: 0,
            },
            Expr::Log {
                prefix: Some("nft-dropped: ".into()),
                group: None,
                snaplen: None,
                qthreshold: None,
                level: None,
                flags: 0,
            },
            Expr::Reject { kind: 2, code: 1 },
        ];
        let r = render_rule(Family::Inet, &exprs, &Env::default());
        assert_eq!(
            r.text,
            "limit rate 2/minute counter log prefix \"nft-dropped: \" reject"
        );
    }

    #[test]
    fn interval_elements_become_prefixes_and_ranges() {
        let shape = SetShape {
            key_type: 7,
            key_len: 4,
            flags: 4,
            ..Default::default()
        };
        let elems = vec![
            RawElement {
                key: vec![0, 0, 0, 0],
                flags: 1,
                ..Default::default()
            },
            RawElement {
                key: vec![10, 0, 0, 0],
                ..Default::default()
            },
            RawElement {
                key: vec![11, 0, 0, 0],
                flags: 1,
                ..Default::default()
            },
            RawElement {
                key: vec![192, 0, 2, 1],
                ..Default::default()
            },
            RawElement {
                key: vec![192, 0, 2, 6],
                flags: 1,
                ..Default::default()
            },
        ];
        let out: Vec<String> = render_elements(&shape, &elems, &Env::default())
            .into_iter()
            .map(|e| e.0.key)
            .collect();
        assert_eq!(out, vec!["10.0.0.0/8", "192.0.2.1-192.0.2.5"]);
    }

    #[test]
    fn key_type_names() {
        assert_eq!(key_type_name(7), "ipv4_addr");
        assert_eq!(key_type_name((7 << 6) | 13), "ipv4_addr . inet_service");
        assert_eq!(key_type_name(0xffff_ff00), "verdict");
    }
}
