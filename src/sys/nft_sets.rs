//! Managed sets: add and remove elements of the user's named sets over nf_tables netlink.
//!
//! The equivalent of `nft add element inet fw blocklist { 192.0.2.7 timeout 1h }` and
//! `nft delete element ...`, for the sets `firewall.managed_sets` names:
//!
//! 1. read the set (`NFT_MSG_GETSET`): its key type, flags (interval, timeout, map) and, for
//!    concatenations, its field lengths;
//! 2. parse every element against that key type ([`parse_element`]): IPv4/IPv6 addresses,
//!    prefixes and ranges (interval sets only), ports and port ranges, protocols, MAC
//!    addresses, marks, interface names, and concatenations of these (`10.0.0.1 . 22`);
//!    the first bad element refuses the whole request before anything is sent;
//! 3. send one netlink batch (one transaction: all or nothing) with one
//!    `NFT_MSG_NEWSETELEM`/`DELSETELEM` message per element, so that when the kernel
//!    refuses one (removing an element that is not there, an overlapping interval) its
//!    acknowledgement names that element, and nothing of the batch is applied;
//! 4. read the elements back (`NFT_MSG_GETSETELEM` dump), with timeouts and expiry.
//!
//! rustables 0.9 lends the kernel's constants (`rustables::sys`), but its set element type
//! carries only a key (no timeout, flags or interval end) and it has no listing of sets or
//! elements, so messages are encoded and decoded here. Encoding and decoding are pure
//! (`&[u8]` in, values out) and unit-tested; [`NftSets`] is the socket around them.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};
use rustables::sys as nfsys;

use crate::firewall::render;
use crate::sys::netlink::{attrs_ok as attrs, put_attr};

/// Most elements one request may carry.
pub const MAX_ELEMENTS: usize = 1024;

// Netlink constants (linux/netlink.h), the same on every architecture.
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_CREATE: u16 = 0x400;
const NLA_F_NESTED: u16 = 0x8000;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const HDR_LEN: usize = 16;
const NFGEN_LEN: usize = 4;

/// The nftables family (shared with the ruleset snapshot): `to_raw()` is the `nfgen_family`.
pub use crate::firewall::Family;

/// One field of a set key (nftables datatype ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyField {
    /// `ipv4_addr` (7).
    Ipv4,
    /// `ipv6_addr` (8).
    Ipv6,
    /// `ether_addr` (9).
    Ether,
    /// `inet_proto` (12).
    InetProto,
    /// `inet_service` (13): a port.
    InetService,
    /// `mark` (19), host byte order.
    Mark,
    /// `ifname` (41), 16 bytes.
    Ifname,
    /// A datatype this module cannot parse (kept, named in errors).
    Other(u32),
}

impl KeyField {
    fn from_type(t: u32) -> KeyField {
        match t {
            7 => KeyField::Ipv4,
            8 => KeyField::Ipv6,
            9 => KeyField::Ether,
            12 => KeyField::InetProto,
            13 => KeyField::InetService,
            19 => KeyField::Mark,
            41 => KeyField::Ifname,
            t => KeyField::Other(t),
        }
    }

    /// Bytes of the value (before padding to 4).
    fn len(self) -> Option<usize> {
        Some(match self {
            KeyField::Ipv4 | KeyField::Mark => 4,
            KeyField::Ipv6 | KeyField::Ifname => 16,
            KeyField::Ether => 6,
            KeyField::InetProto => 1,
            KeyField::InetService => 2,
            KeyField::Other(_) => return None,
        })
    }

    fn name(self) -> String {
        match self {
            KeyField::Ipv4 => "ipv4_addr".into(),
            KeyField::Ipv6 => "ipv6_addr".into(),
            KeyField::Ether => "ether_addr".into(),
            KeyField::InetProto => "inet_proto".into(),
            KeyField::InetService => "inet_service".into(),
            KeyField::Mark => "mark".into(),
            KeyField::Ifname => "ifname".into(),
            KeyField::Other(t) => format!("datatype {t}"),
        }
    }
}

/// A named set as the kernel describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetInfo {
    pub family: Family,
    pub table: String,
    pub name: String,
    pub flags: u32,
    pub key_type: u32,
    pub key_len: u32,
    pub fields: Vec<KeyField>,
    /// The set's default timeout, if any.
    pub timeout_ms: Option<u64>,
}

impl SetInfo {
    pub fn interval(&self) -> bool {
        self.flags & nfsys::NFT_SET_INTERVAL != 0
    }
    pub fn timeout(&self) -> bool {
        self.flags & nfsys::NFT_SET_TIMEOUT != 0
    }
    pub fn is_map(&self) -> bool {
        self.flags & (nfsys::NFT_SET_MAP | nfsys::NFT_SET_OBJECT) != 0
    }
    fn concat(&self) -> bool {
        self.fields.len() > 1
    }
    /// The key type as nft writes it: `ipv4_addr . inet_service`.
    pub fn type_name(&self) -> String {
        let names: Vec<String> = self.fields.iter().map(|f| f.name()).collect();
        names.join(" . ")
    }
}

impl fmt::Display for SetInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "set {} {} {}", self.family, self.table, self.name)
    }
}

/// Splits a (possibly concatenated) key type into its fields: nft packs one 6-bit datatype
/// id per field, first field in the highest bits.
pub fn key_fields(key_type: u32) -> Vec<KeyField> {
    let mut ids = Vec::new();
    let mut t = key_type;
    while t != 0 {
        ids.push(t & 0x3f);
        t >>= 6;
    }
    if ids.len() <= 1 {
        // A single type (also ids beyond 63, kept whole).
        return vec![KeyField::from_type(key_type)];
    }
    ids.reverse();
    ids.into_iter().map(KeyField::from_type).collect()
}

/// Why a managed-set request was refused or failed. [`SetError::status`] gives the HTTP
/// status the API answers with.
#[derive(Debug, thiserror::Error)]
pub enum SetError {
    /// The netlink socket could not be opened: pirouterd needs CAP_NET_ADMIN.
    #[error("cannot open the nf_tables netlink socket (pirouterd needs CAP_NET_ADMIN)")]
    Open(#[source] Errno),
    /// Sending to or receiving from the kernel failed.
    #[error("netlink {step} failed")]
    Io {
        step: &'static str,
        #[source]
        source: Errno,
    },
    /// The kernel did not answer within the timeout.
    #[error("the kernel did not answer the {what} request in time")]
    Timeout { what: &'static str },
    /// The set does not exist (check family, table and name with `nft list sets`).
    #[error("no set {family} {table} {set}: check `nft list sets`")]
    NoSuchSet {
        family: Family,
        table: String,
        set: String,
    },
    /// The config's `managed_sets` does not name this set.
    #[error(
        "set {0} is not in firewall.managed_sets: pirouterd only changes sets the config names"
    )]
    NotManaged(String),
    /// A map or verdict map: only plain sets are managed.
    #[error("{0} is a map; only sets can be managed")]
    IsMap(String),
    /// The set's key type has a field this module cannot parse.
    #[error("{set} has key type {type_name}, which pirouterd cannot parse elements for")]
    UnsupportedKey { set: String, type_name: String },
    /// An element does not fit the set's key type.
    #[error("bad element {element:?} for {set} (type {type_name}): {reason}")]
    BadElement {
        element: String,
        set: String,
        type_name: String,
        reason: String,
    },
    /// A timeout was given for a set without `flags timeout`.
    #[error("{0} has no `flags timeout`: elements cannot carry a timeout")]
    NoTimeoutFlag(String),
    /// No elements, or too many.
    #[error("a request carries 1 to {MAX_ELEMENTS} elements, this one {0}")]
    Count(usize),
    /// The kernel refused one element; the whole batch was rolled back.
    #[error("the kernel refused element {element:?} ({reason}); nothing was changed")]
    Rejected {
        element: String,
        reason: String,
        #[source]
        source: Errno,
    },
    /// The kernel refused the request as a whole.
    #[error("the kernel refused the {what} request")]
    Kernel {
        what: &'static str,
        #[source]
        source: Errno,
    },
    /// The kernel's answer could not be decoded (a kernel newer than this code?).
    #[error("cannot decode the kernel's {what} answer")]
    Decode { what: &'static str },
}

impl SetError {
    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            SetError::NotManaged(_) => 403,
            SetError::NoSuchSet { .. } => 404,
            SetError::IsMap(_)
            | SetError::UnsupportedKey { .. }
            | SetError::BadElement { .. }
            | SetError::NoTimeoutFlag(_)
            | SetError::Count(_)
            | SetError::Rejected { .. } => 400,
            SetError::Open(_)
            | SetError::Io { .. }
            | SetError::Timeout { .. }
            | SetError::Kernel { .. }
            | SetError::Decode { .. } => 500,
        }
    }

    /// A stable code for the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            SetError::NotManaged(_) => "set_not_managed",
            SetError::NoSuchSet { .. } => "no_such_set",
            SetError::IsMap(_) => "set_is_map",
            SetError::UnsupportedKey { .. } => "unsupported_key_type",
            SetError::BadElement { .. } => "bad_element",
            SetError::NoTimeoutFlag(_) => "set_has_no_timeout",
            SetError::Count(_) => "bad_element_count",
            SetError::Rejected { .. } => "element_rejected",
            _ => "netlink_error",
        }
    }
}

/// One element, parsed and encoded for its set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// As the request wrote it.
    pub text: String,
    /// The key, fields padded to 4 bytes.
    pub key: Vec<u8>,
    /// Interval sets: the last key inside the interval (inclusive); `None` for one value.
    pub key_last: Option<Vec<u8>>,
}

/// Add or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Delete,
}

/// A change to a set's elements, as a value: `Display` is the nft command it equals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementChange {
    pub op: Op,
    pub set: SetInfo,
    pub elements: Vec<Element>,
    pub timeout: Option<Duration>,
}

impl fmt::Display for ElementChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.op {
            Op::Add => "add",
            Op::Delete => "delete",
        };
        write!(
            f,
            "nft {verb} element {} {} {} {{ ",
            self.set.family, self.set.table, self.set.name
        )?;
        for (i, e) in self.elements.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(&e.text)?;
            if let Some(t) = self.timeout {
                write!(f, " timeout {}", crate::duration::Human(t))?;
            }
        }
        f.write_str(" }")
    }
}

/// Builds a change: checks the set and parses every element, refusing on the first problem.
pub fn build_change(
    set: &SetInfo,
    op: Op,
    texts: &[String],
    timeout: Option<Duration>,
) -> Result<ElementChange, SetError> {
    if set.is_map() {
        return Err(SetError::IsMap(set.to_string()));
    }
    if texts.is_empty() || texts.len() > MAX_ELEMENTS {
        return Err(SetError::Count(texts.len()));
    }
    if timeout.is_some() && op == Op::Add && !set.timeout() {
        return Err(SetError::NoTimeoutFlag(set.to_string()));
    }
    let elements = texts
        .iter()
        .map(|t| parse_element(set, t))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ElementChange {
        op,
        set: set.clone(),
        elements,
        timeout: if op == Op::Add { timeout } else { None },
    })
}

/// Parses one element (`192.0.2.7`, `10.0.0.0/8`, `1000-2000`, `10.0.0.1 . 22`) for `set`.
pub fn parse_element(set: &SetInfo, text: &str) -> Result<Element, SetError> {
    let bad = |reason: String| SetError::BadElement {
        element: text.to_string(),
        set: set.to_string(),
        type_name: set.type_name(),
        reason,
    };
    if let Some(f) = set.fields.iter().find(|f| f.len().is_none()) {
        return Err(SetError::UnsupportedKey {
            set: set.to_string(),
            type_name: f.name(),
        });
    }
    let parts: Vec<&str> = if set.concat() {
        text.split(" . ").map(str::trim).collect()
    } else {
        vec![text.trim()]
    };
    if parts.len() != set.fields.len() {
        return Err(bad(format!(
            "expected {} fields separated by \" . \", got {}",
            set.fields.len(),
            parts.len()
        )));
    }
    let mut key = Vec::with_capacity(set.key_len as usize);
    let mut last = Vec::with_capacity(set.key_len as usize);
    let mut ranged = false;
    for (field, part) in set.fields.iter().zip(&parts) {
        let (lo, hi) = parse_field(*field, part).map_err(&bad)?;
        if lo != hi {
            if !set.interval() {
                return Err(bad(
                    "prefixes and ranges need a set with `flags interval`".into()
                ));
            }
            if lo > hi {
                return Err(bad("range ends before it starts".into()));
            }
            ranged = true;
        }
        // Concatenated fields each take whole 32-bit registers; a lone field does not.
        let pad = if set.concat() {
            (4 - lo.len() % 4) % 4
        } else {
            0
        };
        key.extend_from_slice(&lo);
        key.extend(std::iter::repeat_n(0, pad));
        last.extend_from_slice(&hi);
        last.extend(std::iter::repeat_n(0, pad));
    }
    if key.len() != set.key_len as usize {
        return Err(bad(format!(
            "key is {} bytes, the set's is {}",
            key.len(),
            set.key_len
        )));
    }
    Ok(Element {
        text: text.trim().to_string(),
        key,
        // Interval sets store every element as a range, single values included.
        key_last: (set.interval() && (ranged || set.concat())).then_some(last),
    })
}

/// Parses one field; returns the first and last value (equal for a single value), in the
/// byte order the kernel compares (network order; host order for marks).
fn parse_field(f: KeyField, s: &str) -> Result<(Vec<u8>, Vec<u8>), String> {
    if s.is_empty() {
        return Err("empty value".into());
    }
    match f {
        KeyField::Ipv4 => {
            if let Some((a, len)) = s.split_once('/') {
                let a: Ipv4Addr = a
                    .parse()
                    .map_err(|_| format!("{a:?} is not an IPv4 address"))?;
                let len = prefix_len(len, 32)?;
                let v = u32::from(a);
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                if v & !mask != 0 {
                    return Err(format!(
                        "{s} has host bits set (network is {}/{len})",
                        Ipv4Addr::from(v & mask)
                    ));
                }
                Ok((v.to_be_bytes().to_vec(), (v | !mask).to_be_bytes().to_vec()))
            } else if let Some((a, b)) = s.split_once('-') {
                let p = |x: &str| -> Result<Vec<u8>, String> {
                    x.trim()
                        .parse::<Ipv4Addr>()
                        .map(|a| a.octets().to_vec())
                        .map_err(|_| format!("{x:?} is not an IPv4 address"))
                };
                Ok((p(a)?, p(b)?))
            } else {
                let a: Ipv4Addr = s
                    .parse()
                    .map_err(|_| format!("{s:?} is not an IPv4 address"))?;
                Ok((a.octets().to_vec(), a.octets().to_vec()))
            }
        }
        KeyField::Ipv6 => {
            if let Some((a, len)) = s.split_once('/') {
                let a: Ipv6Addr = a
                    .parse()
                    .map_err(|_| format!("{a:?} is not an IPv6 address"))?;
                let len = prefix_len(len, 128)?;
                let v = u128::from(a);
                let mask = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - len)
                };
                if v & !mask != 0 {
                    return Err(format!(
                        "{s} has host bits set (network is {}/{len})",
                        Ipv6Addr::from(v & mask)
                    ));
                }
                Ok((v.to_be_bytes().to_vec(), (v | !mask).to_be_bytes().to_vec()))
            } else if let Some((a, b)) = s.split_once('-') {
                let p = |x: &str| -> Result<Vec<u8>, String> {
                    x.trim()
                        .parse::<Ipv6Addr>()
                        .map(|a| a.octets().to_vec())
                        .map_err(|_| format!("{x:?} is not an IPv6 address"))
                };
                Ok((p(a)?, p(b)?))
            } else {
                let a: Ipv6Addr = s
                    .parse()
                    .map_err(|_| format!("{s:?} is not an IPv6 address"))?;
                Ok((a.octets().to_vec(), a.octets().to_vec()))
            }
        }
        KeyField::InetService => {
            let port = |x: &str| -> Result<Vec<u8>, String> {
                x.trim()
                    .parse::<u16>()
                    .map(|p| p.to_be_bytes().to_vec())
                    .map_err(|_| format!("{x:?} is not a port number (0-65535)"))
            };
            match s.split_once('-') {
                Some((a, b)) => Ok((port(a)?, port(b)?)),
                None => {
                    let p = port(s)?;
                    Ok((p.clone(), p))
                }
            }
        }
        KeyField::InetProto => {
            // The names the set listing shows (nft's), and `icmpv6` as people write it.
            let n: u8 = match s {
                "icmpv6" => 58,
                _ => match render::proto_number(s) {
                    Some(n) => n,
                    None => s
                        .parse()
                        .map_err(|_| format!("{s:?} is not a protocol name or number (0-255)"))?,
                },
            };
            Ok((vec![n], vec![n]))
        }
        KeyField::Ether => {
            let b: Vec<u8> = s
                .split(':')
                .map(|x| u8::from_str_radix(x, 16).ok().filter(|_| x.len() == 2))
                .collect::<Option<Vec<u8>>>()
                .filter(|v| v.len() == 6)
                .ok_or_else(|| format!("{s:?} is not a MAC address (aa:bb:cc:dd:ee:ff)"))?;
            Ok((b.clone(), b))
        }
        KeyField::Mark => {
            let v = match s.strip_prefix("0x") {
                Some(h) => u32::from_str_radix(h, 16),
                None => s.parse(),
            }
            .map_err(|_| format!("{s:?} is not a mark (decimal or 0x hex, 32 bits)"))?;
            Ok((v.to_ne_bytes().to_vec(), v.to_ne_bytes().to_vec()))
        }
        KeyField::Ifname => {
            if s.len() >= 16 || s.contains(['\0', '/', ' ']) {
                return Err(format!("{s:?} is not an interface name (1-15 bytes)"));
            }
            let mut b = s.as_bytes().to_vec();
            b.resize(16, 0);
            Ok((b.clone(), b))
        }
        KeyField::Other(t) => Err(format!("datatype {t} is not supported")),
    }
}

fn prefix_len(s: &str, max: u32) -> Result<u32, String> {
    s.parse::<u32>()
        .ok()
        .filter(|l| *l <= max)
        .ok_or_else(|| format!("{s:?} is not a prefix length (0-{max})"))
}

// ---------------------------------------------------------------------------------------
// Encoding

/// Builds netlink messages into one buffer.
struct Writer {
    buf: Vec<u8>,
    /// Start of the message being written.
    msg: usize,
    nests: Vec<usize>,
}

impl Writer {
    fn new() -> Writer {
        Writer {
            buf: Vec::with_capacity(4096),
            msg: 0,
            nests: Vec::new(),
        }
    }

    fn begin(&mut self, ty: u16, flags: u16, seq: u32, family: u8, res_id: u16) {
        self.msg = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set in end()
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
        self.buf.push(family);
        self.buf.push(0); // NFNETLINK_V0
        self.buf.extend_from_slice(&res_id.to_be_bytes());
    }

    fn end(&mut self) {
        let len = (self.buf.len() - self.msg) as u32;
        self.buf[self.msg..self.msg + 4].copy_from_slice(&len.to_ne_bytes());
    }

    fn attr(&mut self, ty: u16, data: &[u8]) {
        put_attr(&mut self.buf, ty, data);
    }

    fn attr_str(&mut self, ty: u16, s: &str) {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        self.attr(ty, &v);
    }

    fn nest(&mut self, ty: u16) {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
    }

    fn close(&mut self) {
        if let Some(start) = self.nests.pop() {
            let len = (self.buf.len() - start) as u16;
            self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        }
    }
}

fn nft_type(msg: u32) -> u16 {
    (NFTA_SUBSYS << 8) | msg as u16
}
const NFTA_SUBSYS: u16 = NFNL_SUBSYS_NFTABLES;

/// Adds 1 to a big-endian byte string; `None` when it overflows (the interval reaches the
/// end of the key space, so it has no end element).
fn be_increment(v: &[u8]) -> Option<Vec<u8>> {
    let mut out = v.to_vec();
    for b in out.iter_mut().rev() {
        if *b == 0xff {
            *b = 0;
        } else {
            *b += 1;
            return Some(out);
        }
    }
    None
}

/// The batch for a change: BEGIN, one message per element with sequence numbers
/// `first_seq..`, END. Returns the buffer and the sequence number of each element's message.
pub fn encode_change(change: &ElementChange, first_seq: u32) -> (Vec<u8>, Vec<u32>) {
    let mut w = Writer::new();
    let fam = change.set.family.to_raw();
    w.begin(
        NFNL_MSG_BATCH_BEGIN,
        NLM_F_REQUEST,
        first_seq,
        0,
        NFNL_SUBSYS_NFTABLES,
    );
    w.end();
    let (ty, flags) = match change.op {
        Op::Add => (
            nft_type(nfsys::NFT_MSG_NEWSETELEM),
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE,
        ),
        Op::Delete => (
            nft_type(nfsys::NFT_MSG_DELSETELEM),
            NLM_F_REQUEST | NLM_F_ACK,
        ),
    };
    let timeout = change
        .timeout
        .map(|t| t.as_millis().min(u128::from(u64::MAX)) as u64);
    let mut seqs = Vec::with_capacity(change.elements.len());
    let mut seq = first_seq;
    for e in &change.elements {
        seq = seq.wrapping_add(1);
        seqs.push(seq);
        w.begin(ty, flags, seq, fam, 0);
        w.attr_str(nfsys::NFTA_SET_ELEM_LIST_TABLE, &change.set.table);
        w.attr_str(nfsys::NFTA_SET_ELEM_LIST_SET, &change.set.name);
        w.nest(nfsys::NFTA_SET_ELEM_LIST_ELEMENTS);
        let put_elem = |w: &mut Writer,
                        key: &[u8],
                        key_end: Option<&[u8]>,
                        flags: u32,
                        timeout: Option<u64>| {
            w.nest(nfsys::NFTA_LIST_ELEM);
            w.nest(nfsys::NFTA_SET_ELEM_KEY);
            w.attr(nfsys::NFTA_DATA_VALUE, key);
            w.close();
            if let Some(k) = key_end {
                w.nest(nfsys::NFTA_SET_ELEM_KEY_END);
                w.attr(nfsys::NFTA_DATA_VALUE, k);
                w.close();
            }
            if flags != 0 {
                w.attr(nfsys::NFTA_SET_ELEM_FLAGS, &flags.to_be_bytes());
            }
            if let Some(t) = timeout {
                w.attr(nfsys::NFTA_SET_ELEM_TIMEOUT, &t.to_be_bytes());
            }
            w.close();
        };
        match (&e.key_last, change.set.concat()) {
            // Concatenated ranges (pipapo): one element with a key end.
            (Some(last), true) => put_elem(&mut w, &e.key, Some(last), 0, timeout),
            // Plain interval sets (rbtree): a start element and an end element one past the
            // last value, flagged as an interval end.
            (Some(last), false) => {
                put_elem(&mut w, &e.key, None, 0, timeout);
                if let Some(end) = be_increment(last) {
                    put_elem(&mut w, &end, None, nfsys::NFT_SET_ELEM_INTERVAL_END, None);
                }
            }
            (None, _) if change.set.interval() && !change.set.concat() => {
                put_elem(&mut w, &e.key, None, 0, timeout);
                if let Some(end) = be_increment(&e.key) {
                    put_elem(&mut w, &end, None, nfsys::NFT_SET_ELEM_INTERVAL_END, None);
                }
            }
            (None, _) => put_elem(&mut w, &e.key, None, 0, timeout),
        }
        w.close();
        w.end();
    }
    w.begin(
        NFNL_MSG_BATCH_END,
        NLM_F_REQUEST,
        seq.wrapping_add(1),
        0,
        NFNL_SUBSYS_NFTABLES,
    );
    w.end();
    (w.buf, seqs)
}

fn encode_getset(family: Family, table: &str, set: &str, seq: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.begin(
        nft_type(nfsys::NFT_MSG_GETSET),
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        family.to_raw(),
        0,
    );
    w.attr_str(nfsys::NFTA_SET_TABLE, table);
    w.attr_str(nfsys::NFTA_SET_NAME, set);
    w.end();
    w.buf
}

fn encode_getsetelem(set: &SetInfo, seq: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.begin(
        nft_type(nfsys::NFT_MSG_GETSETELEM),
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        set.family.to_raw(),
        0,
    );
    w.attr_str(nfsys::NFTA_SET_ELEM_LIST_TABLE, &set.table);
    w.attr_str(nfsys::NFTA_SET_ELEM_LIST_SET, &set.name);
    w.end();
    w.buf
}

// ---------------------------------------------------------------------------------------
// Decoding

/// A netlink message in a receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msg<'a> {
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
    /// After the netlink header.
    pub payload: &'a [u8],
}

/// Splits a receive buffer into messages; `None` on a malformed length.
pub fn messages(mut buf: &[u8]) -> Option<Vec<Msg<'_>>> {
    let mut out = Vec::new();
    while buf.len() >= HDR_LEN {
        let len = u32::from_ne_bytes(buf[0..4].try_into().ok()?) as usize;
        if len < HDR_LEN || len > buf.len() {
            return None;
        }
        out.push(Msg {
            ty: u16::from_ne_bytes(buf[4..6].try_into().ok()?),
            flags: u16::from_ne_bytes(buf[6..8].try_into().ok()?),
            seq: u32::from_ne_bytes(buf[8..12].try_into().ok()?),
            payload: &buf[HDR_LEN..len],
        });
        let adv = (len + 3) & !3;
        buf = buf.get(adv..).unwrap_or(&[]);
    }
    Some(out)
}

/// The errno of an NLMSG_ERROR payload (0 is an acknowledgement).
fn error_code(payload: &[u8]) -> Option<i32> {
    Some(i32::from_ne_bytes(payload.get(0..4)?.try_into().ok()?))
}

fn be32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(0..4)?.try_into().ok()?))
}
fn be64(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(0..8)?.try_into().ok()?))
}
fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Decodes an `NFT_MSG_NEWSET` payload (after the netlink header).
pub fn decode_set(family: Family, payload: &[u8]) -> Option<SetInfo> {
    let body = payload.get(NFGEN_LEN..)?;
    let mut s = SetInfo {
        family,
        table: String::new(),
        name: String::new(),
        flags: 0,
        key_type: 0,
        key_len: 0,
        fields: Vec::new(),
        timeout_ms: None,
    };
    let mut concat_lens: Vec<u32> = Vec::new();
    for (ty, data) in attrs(body) {
        match ty {
            nfsys::NFTA_SET_TABLE => s.table = cstr(data),
            nfsys::NFTA_SET_NAME => s.name = cstr(data),
            nfsys::NFTA_SET_FLAGS => s.flags = be32(data)?,
            nfsys::NFTA_SET_KEY_TYPE => s.key_type = be32(data)?,
            nfsys::NFTA_SET_KEY_LEN => s.key_len = be32(data)?,
            nfsys::NFTA_SET_TIMEOUT => s.timeout_ms = be64(data),
            nfsys::NFTA_SET_DESC => {
                for (dt, dd) in attrs(data) {
                    if dt == nfsys::NFTA_SET_DESC_CONCAT {
                        for (_, field) in attrs(dd) {
                            for (ft, fd) in attrs(field) {
                                if ft == nfsys::NFTA_SET_FIELD_LEN {
                                    concat_lens.push(be32(fd)?);
                                }
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    s.fields = key_fields(s.key_type);
    // Where the kernel gave field lengths, they must agree with the type ids.
    if !concat_lens.is_empty() && concat_lens.len() != s.fields.len() {
        s.fields = vec![KeyField::Other(s.key_type)];
    }
    Some(s)
}

/// One element as read back from the kernel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ElementView {
    /// In nft syntax: `192.0.2.7`, `10.0.0.0/8`, `1000-2000`, `10.0.0.1 . 22`.
    pub element: String,
    /// The element's own timeout.
    pub timeout_ms: Option<u64>,
    /// Time left before it expires.
    pub expires_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct RawElem {
    key: Vec<u8>,
    key_end: Option<Vec<u8>>,
    flags: u32,
    timeout_ms: Option<u64>,
    expires_ms: Option<u64>,
}

fn decode_elems(payload: &[u8], out: &mut Vec<RawElem>) -> Option<()> {
    let body = payload.get(NFGEN_LEN..)?;
    for (ty, data) in attrs(body) {
        if ty != nfsys::NFTA_SET_ELEM_LIST_ELEMENTS {
            continue;
        }
        for (_, elem) in attrs(data) {
            let mut e = RawElem {
                key: Vec::new(),
                key_end: None,
                flags: 0,
                timeout_ms: None,
                expires_ms: None,
            };
            for (et, ed) in attrs(elem) {
                let value = || {
                    attrs(ed)
                        .find(|(t, _)| *t == nfsys::NFTA_DATA_VALUE)
                        .map(|(_, v)| v.to_vec())
                };
                match et {
                    nfsys::NFTA_SET_ELEM_KEY => e.key = value()?,
                    nfsys::NFTA_SET_ELEM_KEY_END => e.key_end = value(),
                    nfsys::NFTA_SET_ELEM_FLAGS => e.flags = be32(ed)?,
                    nfsys::NFTA_SET_ELEM_TIMEOUT => e.timeout_ms = be64(ed),
                    nfsys::NFTA_SET_ELEM_EXPIRATION => e.expires_ms = be64(ed),
                    _ => {}
                }
            }
            out.push(e);
        }
    }
    Some(())
}

/// Renders one field's value.
fn render_field(f: KeyField, v: &[u8]) -> String {
    let hex = || v.iter().map(|b| format!("{b:02x}")).collect::<String>();
    match f {
        KeyField::Ipv4 => v
            .get(0..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or_else(hex, |b| Ipv4Addr::from(b).to_string()),
        KeyField::Ipv6 => v
            .get(0..16)
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .map_or_else(hex, |b| Ipv6Addr::from(b).to_string()),
        KeyField::InetService => v
            .get(0..2)
            .map_or_else(hex, |b| u16::from_be_bytes([b[0], b[1]]).to_string()),
        // As nft and the snapshot's set listing print it (58 is `ipv6-icmp`).
        KeyField::InetProto => v.first().map_or_else(hex, |&n| {
            render::proto_name(n).map_or_else(|| n.to_string(), str::to_string)
        }),
        KeyField::Ether => v.get(0..6).map_or_else(hex, |b| {
            b.iter()
                .map(|x| format!("{x:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        }),
        KeyField::Mark => v
            .get(0..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or_else(hex, |b| format!("0x{:08x}", u32::from_ne_bytes(b))),
        KeyField::Ifname => cstr(v),
        KeyField::Other(_) => format!("0x{}", hex()),
    }
}

/// Renders a range of one field: a single value, a prefix when the range is one, else
/// `first-last`.
fn render_range(f: KeyField, lo: &[u8], hi: &[u8]) -> String {
    if lo == hi {
        return render_field(f, lo);
    }
    let bits = match f {
        KeyField::Ipv4 => 32,
        KeyField::Ipv6 => 128,
        _ => 0,
    };
    if bits > 0 {
        let n = bits / 8;
        if let (Some(l), Some(h)) = (lo.get(..n), hi.get(..n)) {
            let mut a = [0u8; 16];
            let mut b = [0u8; 16];
            a[16 - n..].copy_from_slice(l);
            b[16 - n..].copy_from_slice(h);
            let (a, b) = (u128::from_be_bytes(a), u128::from_be_bytes(b));
            let span = a ^ b;
            // A prefix: the differing bits are a run of low ones, all 0 in lo and 1 in hi.
            if span.wrapping_add(1) & span == 0 && a & span == 0 && b & span == span {
                let host = 128 - span.leading_zeros();
                return format!("{}/{}", render_field(f, l), bits - host as usize);
            }
        }
    }
    format!("{}-{}", render_field(f, lo), render_field(f, hi))
}

fn split_fields<'a>(set: &SetInfo, key: &'a [u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::with_capacity(set.fields.len());
    let mut off = 0;
    for f in &set.fields {
        let n = f.len().unwrap_or(key.len().saturating_sub(off));
        out.push(key.get(off..off + n).unwrap_or(&[]));
        off += (n + 3) & !3;
    }
    out
}

/// Turns the kernel's elements into nft-syntax elements: interval start/end pairs of plain
/// interval sets are joined, ranges shown as prefixes where they are ones.
fn render_elements(set: &SetInfo, mut raw: Vec<RawElem>) -> Vec<ElementView> {
    let field0 = set.fields.first().copied().unwrap_or(KeyField::Other(0));
    if set.interval() && !set.concat() {
        // At one key, an interval's end sorts before the next interval's start.
        raw.sort_by(|a, b| a.key.cmp(&b.key).then(b.flags.cmp(&a.flags)));
        let mut out = Vec::new();
        let mut i = 0;
        while i < raw.len() {
            let e = &raw[i];
            if e.flags & nfsys::NFT_SET_ELEM_INTERVAL_END != 0 {
                i += 1;
                continue;
            }
            // The end element holds one past the last value; without one, the interval
            // runs to the end of the key space.
            let last = match raw.get(i + 1) {
                Some(n) if n.flags & nfsys::NFT_SET_ELEM_INTERVAL_END != 0 => be_decrement(&n.key),
                _ => vec![0xff; e.key.len()],
            };
            out.push(ElementView {
                element: render_range(field0, &e.key, &last),
                timeout_ms: e.timeout_ms,
                expires_ms: e.expires_ms,
            });
            i += 1;
        }
        return out;
    }
    let mut out: Vec<ElementView> = raw
        .into_iter()
        .filter(|e| e.flags & nfsys::NFT_SET_ELEM_INTERVAL_END == 0)
        .map(|e| {
            let lo = split_fields(set, &e.key);
            let hi = e
                .key_end
                .as_deref()
                .map_or_else(|| lo.clone(), |k| split_fields(set, k));
            let parts: Vec<String> = set
                .fields
                .iter()
                .zip(lo.iter().zip(&hi))
                .map(|(f, (l, h))| render_range(*f, l, h))
                .collect();
            ElementView {
                element: parts.join(" . "),
                timeout_ms: e.timeout_ms,
                expires_ms: e.expires_ms,
            }
        })
        .collect();
    out.sort_by(|a, b| a.element.cmp(&b.element));
    out
}

/// Decodes a receive buffer of `NFT_MSG_NEWSETELEM` messages (a GETSETELEM dump) into
/// elements of `set`, as [`NftSets::elements`] does message by message. Pure: for tests and
/// fuzzing.
pub fn decode_elements_dump(set: &SetInfo, buf: &[u8]) -> Result<Vec<ElementView>, SetError> {
    let what = "list elements";
    let mut raw = Vec::new();
    for m in messages(buf).ok_or(SetError::Decode { what })? {
        if m.ty == nft_type(nfsys::NFT_MSG_NEWSETELEM) {
            decode_elems(m.payload, &mut raw).ok_or(SetError::Decode { what })?;
        }
    }
    Ok(render_elements(set, raw))
}

/// A set description for tests and fuzzing: the kernel's key type, length and flags.
pub fn set_info(
    family: Family,
    table: &str,
    name: &str,
    flags: u32,
    key_type: u32,
    key_len: u32,
) -> SetInfo {
    SetInfo {
        family,
        table: table.into(),
        name: name.into(),
        flags,
        key_type,
        key_len,
        fields: key_fields(key_type),
        timeout_ms: None,
    }
}

fn be_decrement(v: &[u8]) -> Vec<u8> {
    let mut out = v.to_vec();
    for b in out.iter_mut().rev() {
        if *b == 0 {
            *b = 0xff;
        } else {
            *b -= 1;
            break;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// The socket

/// An nf_tables netlink socket for managed-set changes. Open it in the network namespace
/// whose ruleset it should change (a socket stays in the namespace it was created in).
#[derive(Debug)]
pub struct NftSets {
    fd: OwnedFd,
    seq: u32,
}

const RECV_TIMEOUT: Duration = Duration::from_secs(3);

impl NftSets {
    /// Opens the socket (needs CAP_NET_ADMIN).
    pub fn open() -> Result<NftSets, SetError> {
        let fd = socket::socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkNetFilter,
        )
        .map_err(SetError::Open)?;
        socket::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(SetError::Open)?;
        let tv = nix::sys::time::TimeVal::new(RECV_TIMEOUT.as_secs() as _, 0);
        socket::setsockopt(&fd, socket::sockopt::ReceiveTimeout, &tv).map_err(SetError::Open)?;
        // Start sequence numbers somewhere a previous socket's late replies are unlikely.
        let seq = std::process::id().wrapping_mul(0x9e37_79b9);
        Ok(NftSets { fd, seq })
    }

    fn next_seq(&mut self, n: u32) -> u32 {
        let s = self.seq;
        self.seq = self.seq.wrapping_add(n + 2);
        s
    }

    fn send(&self, buf: &[u8]) -> Result<(), SetError> {
        let mut sent = 0;
        while sent < buf.len() {
            sent += socket::send(self.fd.as_raw_fd(), &buf[sent..], MsgFlags::empty()).map_err(
                |source| SetError::Io {
                    step: "send",
                    source,
                },
            )?;
        }
        Ok(())
    }

    /// Receives datagrams, handing each message to `f` until it returns `true` (done).
    fn recv_until(
        &self,
        what: &'static str,
        mut f: impl FnMut(Msg<'_>) -> Result<bool, SetError>,
    ) -> Result<(), SetError> {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match socket::recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(n) => n,
                Err(Errno::EAGAIN) => return Err(SetError::Timeout { what }),
                Err(Errno::EINTR) => continue,
                Err(source) => {
                    return Err(SetError::Io {
                        step: "receive",
                        source,
                    })
                }
            };
            for m in messages(&buf[..n]).ok_or(SetError::Decode { what })? {
                if f(m)? {
                    return Ok(());
                }
            }
        }
    }

    /// Reads a set's description (`nft list set` without the elements).
    pub fn get_set(&mut self, family: Family, table: &str, set: &str) -> Result<SetInfo, SetError> {
        let seq = self.next_seq(1);
        self.send(&encode_getset(family, table, set, seq))?;
        let mut info = None;
        self.recv_until("get set", |m| {
            if m.seq != seq {
                return Ok(false);
            }
            match m.ty {
                NLMSG_ERROR => match error_code(m.payload) {
                    Some(0) => Ok(true),
                    Some(e) if -e == Errno::ENOENT as i32 => Err(SetError::NoSuchSet {
                        family,
                        table: table.into(),
                        set: set.into(),
                    }),
                    Some(e) => Err(SetError::Kernel {
                        what: "get set",
                        source: Errno::from_raw(-e),
                    }),
                    None => Err(SetError::Decode { what: "get set" }),
                },
                NLMSG_DONE => Ok(true),
                _ => {
                    info = decode_set(family, m.payload);
                    Ok(false)
                }
            }
        })?;
        info.ok_or(SetError::Decode { what: "get set" })
    }

    /// Lists a set's elements (`nft list set`), sorted.
    pub fn elements(&mut self, set: &SetInfo) -> Result<Vec<ElementView>, SetError> {
        let seq = self.next_seq(1);
        self.send(&encode_getsetelem(set, seq))?;
        let mut raw = Vec::new();
        self.recv_until("list elements", |m| {
            if m.seq != seq {
                return Ok(false);
            }
            match m.ty {
                NLMSG_DONE => Ok(true),
                NLMSG_ERROR => match error_code(m.payload) {
                    Some(0) => Ok(true),
                    Some(e) if -e == Errno::ENOENT as i32 => Err(SetError::NoSuchSet {
                        family: set.family,
                        table: set.table.clone(),
                        set: set.name.clone(),
                    }),
                    Some(e) => Err(SetError::Kernel {
                        what: "list elements",
                        source: Errno::from_raw(-e),
                    }),
                    None => Err(SetError::Decode {
                        what: "list elements",
                    }),
                },
                _ => {
                    decode_elems(m.payload, &mut raw).ok_or(SetError::Decode {
                        what: "list elements",
                    })?;
                    Ok(false)
                }
            }
        })?;
        Ok(render_elements(set, raw))
    }

    /// Sends a change as one batch (one transaction). On refusal, names the first element
    /// the kernel refused; nothing is applied.
    pub fn apply(&mut self, change: &ElementChange) -> Result<(), SetError> {
        let n = change.elements.len() as u32;
        let first = self.next_seq(n);
        let (buf, seqs) = encode_change(change, first);
        self.send(&buf)?;
        let mut acked = 0usize;
        let mut refused: Option<(usize, i32)> = None;
        let mut other: Option<i32> = None;
        self.recv_until("change elements", |m| {
            if m.ty != NLMSG_ERROR {
                return Ok(false);
            }
            let code = error_code(m.payload).ok_or(SetError::Decode {
                what: "change elements",
            })?;
            match seqs.iter().position(|s| *s == m.seq) {
                Some(i) => {
                    acked += 1;
                    if code != 0 && refused.is_none_or(|(j, _)| i < j) {
                        refused = Some((i, code));
                    }
                }
                // An error on the batch markers: the whole batch was refused.
                None if code != 0 && (m.seq == first || m.seq == first.wrapping_add(n + 1)) => {
                    other = Some(code);
                    return Ok(true);
                }
                None => {}
            }
            Ok(acked == seqs.len())
        })?;
        if let Some((i, code)) = refused {
            let errno = Errno::from_raw(-code);
            let reason = match (change.op, errno) {
                (Op::Delete, Errno::ENOENT) => "it is not in the set".to_string(),
                (Op::Add, Errno::EEXIST) => "it overlaps an element already in the set".into(),
                (_, e) => e.desc().to_string(),
            };
            return Err(SetError::Rejected {
                element: change
                    .elements
                    .get(i)
                    .map(|e| e.text.clone())
                    .unwrap_or_default(),
                reason,
                source: errno,
            });
        }
        if let Some(code) = other {
            return Err(SetError::Kernel {
                what: "change elements",
                source: Errno::from_raw(-code),
            });
        }
        Ok(())
    }

    /// The whole request: read the set, parse the elements, apply in one batch, read back.
    pub fn change(
        &mut self,
        family: Family,
        table: &str,
        set: &str,
        op: Op,
        texts: &[String],
        timeout: Option<Duration>,
    ) -> Result<(ElementChange, Vec<ElementView>), SetError> {
        let info = self.get_set(family, table, set)?;
        let change = build_change(&info, op, texts, timeout)?;
        self.apply(&change)?;
        log::info!("{change}");
        let now = self.elements(&info)?;
        Ok((change, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(key_type: u32, key_len: u32, flags: u32) -> SetInfo {
        SetInfo {
            family: Family::Inet,
            table: "fw".into(),
            name: "s".into(),
            flags,
            key_type,
            key_len,
            fields: key_fields(key_type),
            timeout_ms: None,
        }
    }

    const IV: u32 = nfsys::NFT_SET_INTERVAL;

    #[test]
    fn protocols_read_back_as_the_snapshot_lists_them() {
        // The set view and the snapshot's listing agree (nft prints 58 as ipv6-icmp), and what
        // either shows can be sent back.
        assert_eq!(render_field(KeyField::InetProto, &[58]), "ipv6-icmp");
        assert_eq!(render_field(KeyField::InetProto, &[47]), "gre");
        assert_eq!(render_field(KeyField::InetProto, &[99]), "99");
        for name in ["ipv6-icmp", "icmpv6", "58"] {
            assert_eq!(
                parse_field(KeyField::InetProto, name),
                Ok((vec![58], vec![58]))
            );
        }
        assert!(parse_field(KeyField::InetProto, "nope").is_err());
    }

    #[test]
    fn key_types_split_into_fields() {
        assert_eq!(key_fields(7), vec![KeyField::Ipv4]);
        assert_eq!(
            key_fields((7 << 6) | 13),
            vec![KeyField::Ipv4, KeyField::InetService]
        );
        assert_eq!(
            key_fields((41 << 12) | (8 << 6) | 12),
            vec![KeyField::Ifname, KeyField::Ipv6, KeyField::InetProto]
        );
        assert_eq!(key_fields(0), vec![KeyField::Other(0)]);
    }

    #[test]
    fn elements_validate_against_the_key_type() {
        let v4 = set(7, 4, 0);
        assert_eq!(
            parse_element(&v4, "192.0.2.7").expect("ok").key,
            [192, 0, 2, 7]
        );
        for bad in [
            "192.0.2.300",
            "2001:db8::1",
            "",
            "10.0.0.0/8",
            "1.2.3.4 . 22",
        ] {
            let e = parse_element(&v4, bad).expect_err(bad);
            assert_eq!(e.status(), 400);
            assert!(e.to_string().contains(&format!("{:?}", bad.trim())), "{e}");
        }
        let v4i = set(7, 4, IV);
        let e = parse_element(&v4i, "10.0.0.0/8").expect("prefix");
        assert_eq!(
            (e.key.as_slice(), e.key_last.as_deref()),
            (&[10, 0, 0, 0][..], Some(&[10, 255, 255, 255][..]))
        );
        assert!(parse_element(&v4i, "10.0.0.1/8")
            .expect_err("host bits")
            .to_string()
            .contains("host bits"));
        assert!(parse_element(&v4i, "10.0.0.9-10.0.0.1").is_err());
        let v6 = set(8, 16, 0);
        assert_eq!(parse_element(&v6, "2001:db8::1").expect("v6").key.len(), 16);
        let port = set(13, 2, 0);
        assert_eq!(parse_element(&port, "22").expect("port").key, [0, 22]);
        assert!(parse_element(&port, "ssh").is_err());
        assert!(parse_element(&port, "65536").is_err());
        let cat = set((7 << 6) | 13, 8, 0);
        assert_eq!(
            parse_element(&cat, "10.0.0.1 . 22").expect("cat").key,
            [10, 0, 0, 1, 0, 22, 0, 0]
        );
        assert!(parse_element(&cat, "10.0.0.1").is_err());
        let mac = set(9, 6, 0);
        assert!(parse_element(&mac, "aa:bb:cc:dd:ee:f").is_err());
        assert_eq!(
            parse_element(&mac, "aa:bb:cc:dd:ee:0f").expect("mac").key,
            [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f]
        );
        let unknown = set(43, 4, 0);
        assert_eq!(
            parse_element(&unknown, "x").expect_err("unknown").status(),
            400
        );
    }

    #[test]
    fn build_change_refuses_before_sending() {
        let v4 = set(7, 4, 0);
        let texts = vec!["192.0.2.1".to_string(), "nope".to_string()];
        match build_change(&v4, Op::Add, &texts, None) {
            Err(SetError::BadElement { element, .. }) => assert_eq!(element, "nope"),
            other => panic!("{other:?}"),
        }
        let one = vec!["192.0.2.1".to_string()];
        assert!(matches!(
            build_change(&v4, Op::Add, &one, Some(Duration::from_secs(60))),
            Err(SetError::NoTimeoutFlag(_))
        ));
        assert!(matches!(
            build_change(&v4, Op::Add, &[], None),
            Err(SetError::Count(0))
        ));
        let map = set(7, 4, nfsys::NFT_SET_MAP);
        assert!(matches!(
            build_change(&map, Op::Add, &one, None),
            Err(SetError::IsMap(_))
        ));
        let timed = set(7, 4, nfsys::NFT_SET_TIMEOUT);
        let c = build_change(&timed, Op::Add, &one, Some(Duration::from_secs(3600))).expect("ok");
        assert_eq!(
            c.to_string(),
            "nft add element inet fw s { 192.0.2.1 timeout 1h }"
        );
    }

    #[test]
    fn encoded_batch_decodes_back() {
        let timed = set(7, 4, nfsys::NFT_SET_TIMEOUT | IV);
        let texts = vec!["192.0.2.0/24".to_string(), "198.51.100.7".to_string()];
        let c = build_change(&timed, Op::Add, &texts, Some(Duration::from_secs(90))).expect("ok");
        let (buf, seqs) = encode_change(&c, 100);
        assert_eq!(seqs, [101, 102]);
        let msgs = messages(&buf).expect("framing");
        assert_eq!(msgs.len(), 4);
        assert_eq!(msgs[0].ty, NFNL_MSG_BATCH_BEGIN);
        assert_eq!(msgs[3].ty, NFNL_MSG_BATCH_END);
        let mut raw = Vec::new();
        decode_elems(msgs[1].payload, &mut raw).expect("decode");
        decode_elems(msgs[2].payload, &mut raw).expect("decode");
        assert_eq!(raw.len(), 4, "start and end element per interval");
        assert_eq!(raw[0].timeout_ms, Some(90_000));
        assert_eq!(raw[1].key, [192, 0, 3, 0]);
        assert_eq!(raw[1].flags, nfsys::NFT_SET_ELEM_INTERVAL_END);
        let views = render_elements(&timed, raw);
        let names: Vec<&str> = views.iter().map(|v| v.element.as_str()).collect();
        assert_eq!(names, ["192.0.2.0/24", "198.51.100.7"]);
    }

    #[test]
    fn ranges_render_as_prefixes_where_they_are() {
        assert_eq!(
            render_range(KeyField::Ipv4, &[10, 0, 0, 0], &[10, 255, 255, 255]),
            "10.0.0.0/8"
        );
        assert_eq!(
            render_range(KeyField::Ipv4, &[10, 0, 0, 1], &[10, 0, 0, 2]),
            "10.0.0.1-10.0.0.2"
        );
        assert_eq!(
            render_range(KeyField::Ipv4, &[0; 4], &[255; 4]),
            "0.0.0.0/0"
        );
        assert_eq!(
            render_range(KeyField::InetService, &[3, 232], &[7, 208]),
            "1000-2000"
        );
    }

    #[test]
    fn decoders_survive_garbage() {
        assert!(messages(&[0xff; 20]).is_none());
        assert_eq!(attrs(&[5, 0, 1, 0]).count(), 0);
        let mut raw = Vec::new();
        let _ = decode_elems(&[0, 0, 0, 0, 8, 0, 3, 0, 4, 0, 1, 0], &mut raw);
        let _ = decode_set(Family::Inet, &[1, 2]);
    }
}
