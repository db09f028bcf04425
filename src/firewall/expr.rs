//! nftables expressions as the kernel lists them (`nft --debug=netlink` shows the same
//! things: `[ payload load 4b @ network header + 12 => reg 1 ]`, `[ cmp eq reg 1 ... ]`).
//!
//! Registers are kept as the kernel numbers them (NFT_REG_1..4 for 16-byte registers,
//! NFT_REG32_00.. for 32-bit ones); the renderer normalises them.

/// A verdict (`accept`, `jump chain`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
    Queue,
    Continue,
    Break,
    Return,
    Jump(String),
    Goto(String),
    /// A code this build does not know.
    Other(i32),
}

impl Verdict {
    /// From NFTA_VERDICT_CODE (+ chain for jump/goto).
    pub fn from_code(code: i32, chain: Option<String>) -> Verdict {
        match code {
            0 => Verdict::Drop,
            1 => Verdict::Accept,
            3 => Verdict::Queue,
            -1 => Verdict::Continue,
            -2 => Verdict::Break,
            -3 => Verdict::Jump(chain.unwrap_or_default()),
            -4 => Verdict::Goto(chain.unwrap_or_default()),
            -5 => Verdict::Return,
            n => Verdict::Other(n),
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Accept => f.write_str("accept"),
            Verdict::Drop => f.write_str("drop"),
            Verdict::Queue => f.write_str("queue"),
            Verdict::Continue => f.write_str("continue"),
            Verdict::Break => f.write_str("break"),
            Verdict::Return => f.write_str("return"),
            Verdict::Jump(c) => write!(f, "jump {c}"),
            Verdict::Goto(c) => write!(f, "goto {c}"),
            Verdict::Other(n) => write!(f, "verdict {n}"),
        }
    }
}

/// Data of an immediate, a set element's value: bytes or a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    Value(Vec<u8>),
    Verdict(Verdict),
}

/// One expression of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Load `len` bytes at `offset` of header `base` (0 link, 1 network, 2 transport, 3 inner).
    Payload {
        dreg: u32,
        base: u32,
        offset: u32,
        len: u32,
    },
    /// Write a register into the packet (`ip dscp set ...`).
    PayloadSet {
        sreg: u32,
        base: u32,
        offset: u32,
        len: u32,
    },
    /// Load packet meta information (NFT_META_* key).
    Meta {
        dreg: u32,
        key: u32,
    },
    /// `meta mark set ...`.
    MetaSet {
        sreg: u32,
        key: u32,
    },
    /// Load conntrack information (NFT_CT_* key).
    Ct {
        dreg: u32,
        key: u32,
        dir: Option<u8>,
    },
    /// `ct mark set ...`.
    CtSet {
        sreg: u32,
        key: u32,
        dir: Option<u8>,
    },
    /// Compare a register (NFT_CMP_*: 0 eq, 1 neq, 2 lt, 3 lte, 4 gt, 5 gte).
    Cmp {
        sreg: u32,
        op: u32,
        data: Vec<u8>,
    },
    /// Range compare (op 0 eq, 1 neq).
    Range {
        sreg: u32,
        op: u32,
        from: Vec<u8>,
        to: Vec<u8>,
    },
    /// `dreg = (sreg & mask) ^ xor` (op 0) or shifts (op 1, 2).
    Bitwise {
        sreg: u32,
        dreg: u32,
        len: u32,
        op: u32,
        mask: Vec<u8>,
        xor: Vec<u8>,
        shift: u32,
    },
    /// Byte order conversion; shown by name.
    Byteorder {
        sreg: u32,
        dreg: u32,
        op: u32,
        len: u32,
        size: u32,
    },
    /// Load a constant or set the verdict.
    Immediate {
        dreg: u32,
        data: Data,
    },
    /// Set membership (`@set`), map (`dreg` set) or verdict map (`dreg` 0).
    Lookup {
        set: String,
        sreg: u32,
        dreg: Option<u32>,
        invert: bool,
    },
    /// Add/update/delete an element from the packet path (`add @s { ip saddr }`).
    Dynset {
        op: u32,
        set: String,
        sreg_key: u32,
        sreg_data: Option<u32>,
        timeout_ms: Option<u64>,
        exprs: Vec<Expr>,
    },
    Counter {
        packets: u64,
        bytes: u64,
    },
    /// Reference to a named object (`counter name "x"`); `kind` is NFT_OBJECT_*.
    Objref {
        kind: u32,
        name: String,
    },
    /// Object chosen by a map lookup.
    ObjrefMap {
        sreg: u32,
        set: String,
    },
    Log {
        prefix: Option<String>,
        group: Option<u16>,
        snaplen: Option<u32>,
        qthreshold: Option<u16>,
        level: Option<u32>,
        flags: u32,
    },
    /// `limit rate [over] N/unit [burst B]`; `unit` in seconds.
    Limit {
        rate: u64,
        unit: u64,
        burst: u32,
        bytes: bool,
        invert: bool,
    },
    Quota {
        bytes: u64,
        consumed: u64,
        invert: bool,
    },
    /// snat (0) / dnat (1).
    Nat {
        kind: u32,
        family: u32,
        addr_min: Option<u32>,
        addr_max: Option<u32>,
        proto_min: Option<u32>,
        proto_max: Option<u32>,
        flags: u32,
    },
    Masq {
        flags: u32,
        proto_min: Option<u32>,
        proto_max: Option<u32>,
    },
    Redir {
        flags: u32,
        proto_min: Option<u32>,
        proto_max: Option<u32>,
    },
    /// NFT_REJECT_* type and ICMP code.
    Reject {
        kind: u32,
        code: u8,
    },
    Queue {
        num: u16,
        total: u16,
        flags: u16,
    },
    Notrack,
    /// An expression the kernel knows and this build does not model: kept by name, with
    /// the register it loads when that is known (fib, rt, socket, exthdr, ...).
    Other {
        name: String,
        dreg: Option<u32>,
    },
    /// An expression whose attributes could not be decoded.
    Undecodable {
        name: String,
        reason: String,
    },
}

/// One raw element of a set, for rendering anonymous sets inside rules and listing elements.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawElement {
    pub key: Vec<u8>,
    /// End of a range in concatenated interval sets (NFTA_SET_ELEM_KEY_END).
    pub key_end: Option<Vec<u8>>,
    pub data: Option<Data>,
    /// NFT_SET_ELEM_* flags (1: interval end, 2: catch-all).
    pub flags: u32,
    pub timeout_ms: Option<u64>,
    pub expires_ms: Option<u64>,
    pub comment: Option<String>,
    /// Per-element counter (`counter` in the set's expressions).
    pub counter: Option<(u64, u64)>,
    /// Object name for object maps.
    pub objref: Option<String>,
}

/// What rendering needs to know about a set: its types, and for anonymous sets the elements.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetShape {
    /// NFTA_SET_KEY_TYPE: nft datatype id, 6 bits per field for concatenations.
    pub key_type: u32,
    pub key_len: u32,
    /// NFTA_SET_DATA_TYPE (0xffffff00 for verdicts).
    pub data_type: Option<u32>,
    pub data_len: u32,
    pub flags: u32,
    /// Field lengths of concatenations (NFTA_SET_DESC_CONCAT), when the kernel has them.
    pub field_lens: Vec<u32>,
    /// NFTA_SET_OBJ_TYPE for object maps.
    pub obj_type: Option<u32>,
    /// Key byte order from userdata (1 host, 2 big endian), for `integer` keys.
    pub key_byteorder: Option<u32>,
    /// Elements, loaded for anonymous sets only.
    pub elements: Option<std::sync::Arc<Vec<RawElement>>>,
    /// An anonymous set already written inline (`{ 80, 443 }`) and whether exactly: what the
    /// kernel source caches instead of the elements, since they never change.
    pub inline: Option<std::sync::Arc<(String, bool)>>,
}
