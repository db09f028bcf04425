//! Pure decoding of nf_tables netlink messages: bytes in, typed values out, never a panic.
//!
//! The framing (netlink headers, attributes) must be sound or the whole message is an error;
//! inside a rule, an expression whose attributes do not decode becomes
//! [`Expr::Undecodable`], so one odd expression never loses the rule, and one odd rule never
//! stops the listing.

use rustables::sys as s;

use crate::firewall::expr::{Data, Expr, RawElement, SetShape, Verdict};
use crate::firewall::Family;
use crate::sys::netlink::{attrs, put_attr, BadAttr};

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated {what}: need {need} bytes, have {have}")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    #[error("attribute {attr} of {what} has length {len}, expected {expected}")]
    BadLength {
        what: &'static str,
        attr: u16,
        len: usize,
        expected: usize,
    },
    #[error("{what} lacks attribute {attr}")]
    Missing { what: &'static str, attr: u16 },
}

type R<T> = Result<T, DecodeError>;

pub const NLMSG_HDRLEN: usize = 16;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLM_F_DUMP_INTR: u16 = 0x10;

/// One netlink message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NlMsg<'a> {
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
    pub payload: &'a [u8],
}

/// Iterates the netlink messages in one datagram.
pub struct NlMsgs<'a> {
    buf: &'a [u8],
}

pub fn messages(buf: &[u8]) -> NlMsgs<'_> {
    NlMsgs { buf }
}

impl<'a> Iterator for NlMsgs<'a> {
    type Item = R<NlMsg<'a>>;
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let b = self.buf;
        if b.len() < NLMSG_HDRLEN {
            self.buf = &[];
            return Some(Err(DecodeError::Truncated {
                what: "netlink header",
                need: NLMSG_HDRLEN,
                have: b.len(),
            }));
        }
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if len < NLMSG_HDRLEN || len > b.len() {
            self.buf = &[];
            return Some(Err(DecodeError::Truncated {
                what: "netlink message",
                need: len.max(NLMSG_HDRLEN),
                have: b.len(),
            }));
        }
        let msg = NlMsg {
            ty: u16::from_ne_bytes([b[4], b[5]]),
            flags: u16::from_ne_bytes([b[6], b[7]]),
            seq: u32::from_ne_bytes([b[8], b[9], b[10], b[11]]),
            payload: &b[NLMSG_HDRLEN..len],
        };
        let next = len.div_ceil(4) * 4;
        self.buf = b.get(next..).unwrap_or(&[]);
        Some(Ok(msg))
    }
}

/// The errno of an NLMSG_ERROR (0 is an ACK) or NLMSG_DONE payload.
pub fn error_code(payload: &[u8]) -> R<i32> {
    let b = payload.get(..4).ok_or(DecodeError::Truncated {
        what: "netlink error",
        need: 4,
        have: payload.len(),
    })?;
    Ok(i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

impl From<BadAttr> for DecodeError {
    fn from(b: BadAttr) -> Self {
        DecodeError::Truncated {
            what: "attribute",
            need: b.len.max(4),
            have: b.have,
        }
    }
}

#[inline]
fn be32(what: &'static str, attr: u16, v: &[u8]) -> R<u32> {
    match v {
        [a, b, c, d] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => Err(DecodeError::BadLength {
            what,
            attr,
            len: v.len(),
            expected: 4,
        }),
    }
}

#[inline]
fn be64(what: &'static str, attr: u16, v: &[u8]) -> R<u64> {
    let a: [u8; 8] = v.try_into().map_err(|_| DecodeError::BadLength {
        what,
        attr,
        len: v.len(),
        expected: 8,
    })?;
    Ok(u64::from_be_bytes(a))
}

#[inline]
fn be16(what: &'static str, attr: u16, v: &[u8]) -> R<u16> {
    match v {
        [a, b] => Ok(u16::from_be_bytes([*a, *b])),
        _ => Err(DecodeError::BadLength {
            what,
            attr,
            len: v.len(),
            expected: 2,
        }),
    }
}

fn string(v: &[u8]) -> String {
    let end = v.iter().position(|c| *c == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end]).into_owned()
}

/// Splits the nfgenmsg header off an nftables message payload: (family, attributes).
#[inline]
pub fn nfgen(payload: &[u8]) -> R<(Family, &[u8])> {
    if payload.len() < 4 {
        return Err(DecodeError::Truncated {
            what: "nfgenmsg",
            need: 4,
            have: payload.len(),
        });
    }
    Ok((Family::from_raw(payload[0]), &payload[4..]))
}

/// Comment from nftnl userdata TLVs (type 1 byte, length 1 byte, value): `comment_tag`
/// is 0 for rules and tables/chains, 7 for sets.
pub fn udata_comment(u: &[u8], comment_tag: u8) -> Option<String> {
    udata_find(u, comment_tag).map(string)
}

fn udata_find(u: &[u8], tag: u8) -> Option<&[u8]> {
    let mut i = 0usize;
    while i + 2 <= u.len() {
        let t = u[i];
        let len = u[i + 1] as usize;
        let v = u.get(i + 2..i + 2 + len)?;
        if t == tag {
            return Some(v);
        }
        i += 2 + len;
    }
    None
}

/// NFT_MSG_NEWTABLE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMsg {
    pub family: Family,
    pub name: String,
    pub handle: u64,
    pub flags: u32,
    pub owner: Option<u32>,
    pub comment: Option<String>,
}

pub fn decode_table(payload: &[u8]) -> R<TableMsg> {
    let (family, a) = nfgen(payload)?;
    let mut t = TableMsg {
        family,
        name: String::new(),
        handle: 0,
        flags: 0,
        owner: None,
        comment: None,
    };
    let mut named = false;
    for at in attrs(a) {
        let (ty, v) = at?;
        match ty {
            s::NFTA_TABLE_NAME => {
                t.name = string(v);
                named = true;
            }
            s::NFTA_TABLE_FLAGS => t.flags = be32("table", ty, v)?,
            s::NFTA_TABLE_HANDLE => t.handle = be64("table", ty, v)?,
            s::NFTA_TABLE_OWNER => t.owner = Some(be32("table", ty, v)?),
            s::NFTA_TABLE_USERDATA => t.comment = udata_comment(v, 0),
            _ => {}
        }
    }
    if !named {
        return Err(DecodeError::Missing {
            what: "table",
            attr: s::NFTA_TABLE_NAME,
        });
    }
    Ok(t)
}

/// NFT_MSG_NEWCHAIN.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChainMsg {
    pub family: Option<Family>,
    pub table: String,
    pub name: String,
    pub handle: u64,
    pub hook: Option<(u32, i32)>,
    pub device: Option<String>,
    pub policy: Option<u32>,
    pub chain_type: Option<String>,
    pub flags: u32,
    pub comment: Option<String>,
}

pub fn decode_chain(payload: &[u8]) -> R<ChainMsg> {
    let (family, a) = nfgen(payload)?;
    let mut c = ChainMsg {
        family: Some(family),
        ..Default::default()
    };
    for at in attrs(a) {
        let (ty, v) = at?;
        match ty {
            s::NFTA_CHAIN_TABLE => c.table = string(v),
            s::NFTA_CHAIN_NAME => c.name = string(v),
            s::NFTA_CHAIN_HANDLE => c.handle = be64("chain", ty, v)?,
            s::NFTA_CHAIN_POLICY => c.policy = Some(be32("chain", ty, v)?),
            s::NFTA_CHAIN_TYPE => c.chain_type = Some(string(v)),
            s::NFTA_CHAIN_FLAGS => c.flags = be32("chain", ty, v)?,
            s::NFTA_CHAIN_USERDATA => c.comment = udata_comment(v, 0),
            s::NFTA_CHAIN_HOOK => {
                let mut num = None;
                let mut prio = 0i32;
                for h in attrs(v) {
                    let (hty, hv) = h?;
                    match hty {
                        s::NFTA_HOOK_HOOKNUM => num = Some(be32("hook", hty, hv)?),
                        s::NFTA_HOOK_PRIORITY => prio = be32("hook", hty, hv)? as i32,
                        s::NFTA_HOOK_DEV => c.device = Some(string(hv)),
                        _ => {}
                    }
                }
                c.hook = num.map(|n| (n, prio));
            }
            _ => {}
        }
    }
    if c.name.is_empty() {
        return Err(DecodeError::Missing {
            what: "chain",
            attr: s::NFTA_CHAIN_NAME,
        });
    }
    Ok(c)
}

/// NFT_MSG_NEWSET.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetMsg {
    pub family: Option<Family>,
    pub table: String,
    pub name: String,
    pub handle: u64,
    pub shape: SetShape,
    pub timeout_ms: Option<u64>,
    pub size: Option<u32>,
    pub comment: Option<String>,
}

pub fn decode_set(payload: &[u8]) -> R<SetMsg> {
    let (family, a) = nfgen(payload)?;
    let mut m = SetMsg {
        family: Some(family),
        ..Default::default()
    };
    for at in attrs(a) {
        let (ty, v) = at?;
        match ty {
            s::NFTA_SET_TABLE => m.table = string(v),
            s::NFTA_SET_NAME => m.name = string(v),
            s::NFTA_SET_HANDLE => m.handle = be64("set", ty, v)?,
            s::NFTA_SET_FLAGS => m.shape.flags = be32("set", ty, v)?,
            s::NFTA_SET_KEY_TYPE => m.shape.key_type = be32("set", ty, v)?,
            s::NFTA_SET_KEY_LEN => m.shape.key_len = be32("set", ty, v)?,
            s::NFTA_SET_DATA_TYPE => m.shape.data_type = Some(be32("set", ty, v)?),
            s::NFTA_SET_DATA_LEN => m.shape.data_len = be32("set", ty, v)?,
            s::NFTA_SET_OBJ_TYPE => m.shape.obj_type = Some(be32("set", ty, v)?),
            s::NFTA_SET_TIMEOUT => m.timeout_ms = Some(be64("set", ty, v)?),
            s::NFTA_SET_USERDATA => {
                m.comment = udata_comment(v, 7);
                m.shape.key_byteorder = udata_find(v, 0).and_then(|b| match b {
                    [a, b, c, d] => Some(u32::from_ne_bytes([*a, *b, *c, *d])),
                    _ => None,
                });
            }
            s::NFTA_SET_DESC => {
                for d in attrs(v) {
                    let (dty, dv) = d?;
                    match dty {
                        s::NFTA_SET_DESC_SIZE => m.size = Some(be32("set desc", dty, dv)?),
                        s::NFTA_SET_DESC_CONCAT => {
                            for f in attrs(dv) {
                                let (_, fv) = f?;
                                for fl in attrs(fv) {
                                    let (flty, flv) = fl?;
                                    if flty == s::NFTA_SET_FIELD_LEN {
                                        m.shape.field_lens.push(be32("set field", flty, flv)?);
                                    }
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if m.name.is_empty() {
        return Err(DecodeError::Missing {
            what: "set",
            attr: s::NFTA_SET_NAME,
        });
    }
    Ok(m)
}

/// NFT_MSG_NEWOBJ: counters and quotas with their values; other types by kind.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjMsg {
    pub family: Option<Family>,
    pub table: String,
    pub name: String,
    pub handle: u64,
    pub kind: u32,
    /// Counter: (packets, bytes). Quota: (bytes, consumed).
    pub values: (u64, u64),
    pub flags: u32,
    pub comment: Option<String>,
}

pub fn decode_obj(payload: &[u8]) -> R<ObjMsg> {
    let (family, a) = nfgen(payload)?;
    let mut o = ObjMsg {
        family: Some(family),
        ..Default::default()
    };
    let mut data = None;
    for at in attrs(a) {
        let (ty, v) = at?;
        match ty {
            s::NFTA_OBJ_TABLE => o.table = string(v),
            s::NFTA_OBJ_NAME => o.name = string(v),
            s::NFTA_OBJ_HANDLE => o.handle = be64("object", ty, v)?,
            s::NFTA_OBJ_TYPE => o.kind = be32("object", ty, v)?,
            s::NFTA_OBJ_DATA => data = Some(v),
            s::NFTA_OBJ_USERDATA => o.comment = udata_comment(v, 0),
            _ => {}
        }
    }
    if let Some(d) = data {
        for at in attrs(d) {
            let (ty, v) = at?;
            match (o.kind, ty) {
                (s::NFT_OBJECT_COUNTER, s::NFTA_COUNTER_PACKETS) => {
                    o.values.0 = be64("counter", ty, v)?
                }
                (s::NFT_OBJECT_COUNTER, s::NFTA_COUNTER_BYTES) => {
                    o.values.1 = be64("counter", ty, v)?
                }
                (s::NFT_OBJECT_QUOTA, s::NFTA_QUOTA_BYTES) => o.values.0 = be64("quota", ty, v)?,
                (s::NFT_OBJECT_QUOTA, s::NFTA_QUOTA_CONSUMED) => o.values.1 = be64("quota", ty, v)?,
                (s::NFT_OBJECT_QUOTA, s::NFTA_QUOTA_FLAGS) => o.flags = be32("quota", ty, v)?,
                _ => {}
            }
        }
    }
    if o.name.is_empty() {
        return Err(DecodeError::Missing {
            what: "object",
            attr: s::NFTA_OBJ_NAME,
        });
    }
    Ok(o)
}

/// Kernel name of an object type.
pub fn obj_kind_name(kind: u32) -> String {
    match kind {
        s::NFT_OBJECT_COUNTER => "counter".into(),
        s::NFT_OBJECT_QUOTA => "quota".into(),
        s::NFT_OBJECT_CT_HELPER => "ct helper".into(),
        s::NFT_OBJECT_LIMIT => "limit".into(),
        s::NFT_OBJECT_CONNLIMIT => "connlimit".into(),
        s::NFT_OBJECT_TUNNEL => "tunnel".into(),
        s::NFT_OBJECT_CT_TIMEOUT => "ct timeout".into(),
        s::NFT_OBJECT_SECMARK => "secmark".into(),
        s::NFT_OBJECT_CT_EXPECT => "ct expectation".into(),
        s::NFT_OBJECT_SYNPROXY => "synproxy".into(),
        n => format!("object type {n}"),
    }
}

/// NFTA_GEN_ID of an NFT_MSG_NEWGEN.
pub fn decode_gen(payload: &[u8]) -> R<u32> {
    let (_, a) = nfgen(payload)?;
    for at in attrs(a) {
        let (ty, v) = at?;
        if ty == s::NFTA_GEN_ID {
            return be32("generation", ty, v);
        }
    }
    Err(DecodeError::Missing {
        what: "generation",
        attr: s::NFTA_GEN_ID,
    })
}

/// NFT_MSG_NEWRULE, with its expressions decoded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleMsg {
    pub family: Option<Family>,
    pub table: String,
    pub chain: String,
    pub handle: u64,
    pub comment: Option<String>,
    pub exprs: Vec<Expr>,
}

pub fn decode_rule(payload: &[u8]) -> R<RuleMsg> {
    let mut r = RuleMsg::default();
    let head = decode_rule_into(payload, &mut r.exprs, true)?;
    r.family = Some(head.family);
    r.handle = head.handle;
    r.comment = head.comment;
    r.table = head.table;
    r.chain = head.chain;
    Ok(r)
}

/// A rule's attributes other than its expressions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleHead {
    pub family: Family,
    pub handle: u64,
    pub comment: Option<String>,
    /// Empty unless asked for (the per-chain dump already knows them).
    pub table: String,
    pub chain: String,
}

/// Decodes a rule into a caller's expression vector (cleared first), so a dump of thousands
/// of rules reuses one allocation.
pub fn decode_rule_into(payload: &[u8], exprs: &mut Vec<Expr>, names: bool) -> R<RuleHead> {
    exprs.clear();
    let (family, a) = nfgen(payload)?;
    let mut h = RuleHead {
        family,
        handle: 0,
        comment: None,
        table: String::new(),
        chain: String::new(),
    };
    for at in attrs(a) {
        let (ty, v) = at?;
        match ty {
            s::NFTA_RULE_TABLE if names => h.table = string(v),
            s::NFTA_RULE_CHAIN if names => h.chain = string(v),
            s::NFTA_RULE_HANDLE => h.handle = be64("rule", ty, v)?,
            s::NFTA_RULE_USERDATA => h.comment = udata_comment(v, 0),
            s::NFTA_RULE_EXPRESSIONS => {
                for e in attrs(v) {
                    let (_, ev) = e?;
                    exprs.push(decode_expr(ev));
                }
            }
            _ => {}
        }
    }
    Ok(h)
}

/// One expression (NFTA_LIST_ELEM body: NFTA_EXPR_NAME + NFTA_EXPR_DATA). Never fails: a
/// broken one is kept as [`Expr::Undecodable`].
pub fn decode_expr(v: &[u8]) -> Expr {
    // The name is matched in place: no allocation for the expressions this build knows.
    let mut name: &[u8] = &[];
    let mut data: &[u8] = &[];
    for at in attrs(v) {
        match at {
            Ok((ty, v)) if ty == s::NFTA_EXPR_NAME => name = v,
            Ok((ty, v)) if ty == s::NFTA_EXPR_DATA => data = v,
            Ok(_) => {}
            Err(e) => {
                let name = string(name);
                return Expr::Undecodable {
                    name: if name.is_empty() { "?".into() } else { name },
                    reason: DecodeError::from(e).to_string(),
                };
            }
        }
    }
    let end = name.iter().position(|c| *c == 0).unwrap_or(name.len());
    let name = expr_name(&name[..end]);
    match expr_data(name, data) {
        Ok(e) => e,
        Err(e) => Expr::Undecodable {
            name: name.to_string(),
            reason: e.to_string(),
        },
    }
}

/// The expression names [`expr_data`] knows, most frequent first.
const EXPR_NAMES: [&str; 21] = [
    "payload",
    "cmp",
    "meta",
    "counter",
    "immediate",
    "lookup",
    "bitwise",
    "ct",
    "objref",
    "range",
    "byteorder",
    "dynset",
    "log",
    "limit",
    "quota",
    "nat",
    "masq",
    "redir",
    "reject",
    "queue",
    "notrack",
];

/// An expression's name as text: a known one without UTF-8 validation (measurable at 100k
/// expressions per snapshot), others checked.
fn expr_name(b: &[u8]) -> &str {
    EXPR_NAMES
        .iter()
        .find(|k| k.as_bytes() == b)
        .copied()
        .unwrap_or_else(|| std::str::from_utf8(b).unwrap_or("?"))
}

/// Reads the attributes of an expression into a small table indexed by attribute type,
/// filled in place: returning the 256-byte table by value copied it for every expression.
#[inline]
fn table<'a>(data: &'a [u8], t: &mut [Option<&'a [u8]>; 16]) -> R<()> {
    for at in attrs(data) {
        let (ty, v) = at?;
        if let Some(slot) = t.get_mut(ty as usize) {
            *slot = Some(v);
        }
    }
    Ok(())
}

#[inline]
fn get32(t: &[Option<&[u8]>; 16], what: &'static str, attr: u16) -> R<Option<u32>> {
    match t.get(attr as usize).copied().flatten() {
        Some(v) => be32(what, attr, v).map(Some),
        None => Ok(None),
    }
}

#[inline]
fn need32(t: &[Option<&[u8]>; 16], what: &'static str, attr: u16) -> R<u32> {
    get32(t, what, attr)?.ok_or(DecodeError::Missing { what, attr })
}

#[inline]
fn get64(t: &[Option<&[u8]>; 16], what: &'static str, attr: u16) -> R<Option<u64>> {
    match t.get(attr as usize).copied().flatten() {
        Some(v) => be64(what, attr, v).map(Some),
        None => Ok(None),
    }
}

fn get_str(t: &[Option<&[u8]>; 16], attr: u16) -> Option<String> {
    t.get(attr as usize).copied().flatten().map(string)
}

/// NFTA_DATA_VALUE or NFTA_DATA_VERDICT.
pub fn decode_data(v: &[u8]) -> R<Data> {
    for at in attrs(v) {
        let (ty, v) = at?;
        match ty {
            s::NFTA_DATA_VALUE => return Ok(Data::Value(v.to_vec())),
            s::NFTA_DATA_VERDICT => {
                let mut code = None;
                let mut chain = None;
                for vat in attrs(v) {
                    let (vty, vv) = vat?;
                    match vty {
                        s::NFTA_VERDICT_CODE => code = Some(be32("verdict", vty, vv)? as i32),
                        s::NFTA_VERDICT_CHAIN => chain = Some(string(vv)),
                        _ => {}
                    }
                }
                let code = code.ok_or(DecodeError::Missing {
                    what: "verdict",
                    attr: s::NFTA_VERDICT_CODE,
                })?;
                return Ok(Data::Verdict(Verdict::from_code(code, chain)));
            }
            _ => {}
        }
    }
    Err(DecodeError::Missing {
        what: "data",
        attr: s::NFTA_DATA_VALUE,
    })
}

#[inline]
fn value(t: &[Option<&[u8]>; 16], what: &'static str, attr: u16) -> R<Vec<u8>> {
    let v = t
        .get(attr as usize)
        .copied()
        .flatten()
        .ok_or(DecodeError::Missing { what, attr })?;
    match decode_data(v)? {
        Data::Value(b) => Ok(b),
        Data::Verdict(_) => Err(DecodeError::Missing {
            what,
            attr: s::NFTA_DATA_VALUE,
        }),
    }
}

fn expr_data(name: &str, data: &[u8]) -> R<Expr> {
    let mut t: [Option<&[u8]>; 16] = [None; 16];
    table(data, &mut t)?;
    Ok(match name {
        "payload" => {
            let base = need32(&t, "payload", s::NFTA_PAYLOAD_BASE)?;
            let offset = need32(&t, "payload", s::NFTA_PAYLOAD_OFFSET)?;
            let len = need32(&t, "payload", s::NFTA_PAYLOAD_LEN)?;
            match get32(&t, "payload", s::NFTA_PAYLOAD_DREG)? {
                Some(dreg) => Expr::Payload {
                    dreg,
                    base,
                    offset,
                    len,
                },
                None => Expr::PayloadSet {
                    sreg: need32(&t, "payload", s::NFTA_PAYLOAD_SREG)?,
                    base,
                    offset,
                    len,
                },
            }
        }
        "meta" => {
            let key = need32(&t, "meta", s::NFTA_META_KEY)?;
            match get32(&t, "meta", s::NFTA_META_DREG)? {
                Some(dreg) => Expr::Meta { dreg, key },
                None => Expr::MetaSet {
                    sreg: need32(&t, "meta", s::NFTA_META_SREG)?,
                    key,
                },
            }
        }
        "ct" => {
            let key = need32(&t, "ct", s::NFTA_CT_KEY)?;
            let dir = t[s::NFTA_CT_DIRECTION as usize].and_then(|v| v.first().copied());
            match get32(&t, "ct", s::NFTA_CT_DREG)? {
                Some(dreg) => Expr::Ct { dreg, key, dir },
                None => Expr::CtSet {
                    sreg: need32(&t, "ct", s::NFTA_CT_SREG)?,
                    key,
                    dir,
                },
            }
        }
        "cmp" => Expr::Cmp {
            sreg: need32(&t, "cmp", s::NFTA_CMP_SREG)?,
            op: need32(&t, "cmp", s::NFTA_CMP_OP)?,
            data: value(&t, "cmp", s::NFTA_CMP_DATA)?,
        },
        "range" => Expr::Range {
            sreg: need32(&t, "range", s::NFTA_RANGE_SREG)?,
            op: need32(&t, "range", s::NFTA_RANGE_OP)?,
            from: value(&t, "range", s::NFTA_RANGE_FROM_DATA)?,
            to: value(&t, "range", s::NFTA_RANGE_TO_DATA)?,
        },
        "bitwise" => {
            let op = get32(&t, "bitwise", s::NFTA_BITWISE_OP)?.unwrap_or(0);
            let (mask, xor, shift) = if op == 0 {
                (
                    value(&t, "bitwise", s::NFTA_BITWISE_MASK)?,
                    value(&t, "bitwise", s::NFTA_BITWISE_XOR)?,
                    0,
                )
            } else {
                let d = value(&t, "bitwise", s::NFTA_BITWISE_DATA)?;
                let shift = d
                    .get(..4)
                    .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                    .unwrap_or(0);
                (Vec::new(), Vec::new(), shift)
            };
            Expr::Bitwise {
                sreg: need32(&t, "bitwise", s::NFTA_BITWISE_SREG)?,
                dreg: need32(&t, "bitwise", s::NFTA_BITWISE_DREG)?,
                len: need32(&t, "bitwise", s::NFTA_BITWISE_LEN)?,
                op,
                mask,
                xor,
                shift,
            }
        }
        "byteorder" => Expr::Byteorder {
            sreg: need32(&t, "byteorder", s::NFTA_BYTEORDER_SREG)?,
            dreg: need32(&t, "byteorder", s::NFTA_BYTEORDER_DREG)?,
            op: need32(&t, "byteorder", s::NFTA_BYTEORDER_OP)?,
            len: need32(&t, "byteorder", s::NFTA_BYTEORDER_LEN)?,
            size: need32(&t, "byteorder", s::NFTA_BYTEORDER_SIZE)?,
        },
        "immediate" => {
            let d = t[s::NFTA_IMMEDIATE_DATA as usize].ok_or(DecodeError::Missing {
                what: "immediate",
                attr: s::NFTA_IMMEDIATE_DATA,
            })?;
            Expr::Immediate {
                dreg: need32(&t, "immediate", s::NFTA_IMMEDIATE_DREG)?,
                data: decode_data(d)?,
            }
        }
        "lookup" => Expr::Lookup {
            set: get_str(&t, s::NFTA_LOOKUP_SET).ok_or(DecodeError::Missing {
                what: "lookup",
                attr: s::NFTA_LOOKUP_SET,
            })?,
            sreg: need32(&t, "lookup", s::NFTA_LOOKUP_SREG)?,
            dreg: get32(&t, "lookup", s::NFTA_LOOKUP_DREG)?,
            invert: get32(&t, "lookup", s::NFTA_LOOKUP_FLAGS)?.unwrap_or(0) & s::NFT_LOOKUP_F_INV
                != 0,
        },
        "dynset" => {
            let mut exprs = Vec::new();
            if let Some(e) = t[s::NFTA_DYNSET_EXPR as usize] {
                exprs.push(decode_expr(e));
            }
            if let Some(list) = t[s::NFTA_DYNSET_EXPRESSIONS as usize] {
                for at in attrs(list) {
                    let (_, v) = at?;
                    exprs.push(decode_expr(v));
                }
            }
            Expr::Dynset {
                op: need32(&t, "dynset", s::NFTA_DYNSET_OP)?,
                set: get_str(&t, s::NFTA_DYNSET_SET_NAME).ok_or(DecodeError::Missing {
                    what: "dynset",
                    attr: s::NFTA_DYNSET_SET_NAME,
                })?,
                sreg_key: need32(&t, "dynset", s::NFTA_DYNSET_SREG_KEY)?,
                sreg_data: get32(&t, "dynset", s::NFTA_DYNSET_SREG_DATA)?,
                timeout_ms: get64(&t, "dynset", s::NFTA_DYNSET_TIMEOUT)?,
                exprs,
            }
        }
        "counter" => Expr::Counter {
            packets: get64(&t, "counter", s::NFTA_COUNTER_PACKETS)?.unwrap_or(0),
            bytes: get64(&t, "counter", s::NFTA_COUNTER_BYTES)?.unwrap_or(0),
        },
        "objref" => match get_str(&t, s::NFTA_OBJREF_IMM_NAME) {
            Some(name) => Expr::Objref {
                kind: need32(&t, "objref", s::NFTA_OBJREF_IMM_TYPE)?,
                name,
            },
            None => Expr::ObjrefMap {
                sreg: need32(&t, "objref", s::NFTA_OBJREF_SET_SREG)?,
                set: get_str(&t, s::NFTA_OBJREF_SET_NAME).ok_or(DecodeError::Missing {
                    what: "objref",
                    attr: s::NFTA_OBJREF_SET_NAME,
                })?,
            },
        },
        "log" => Expr::Log {
            prefix: get_str(&t, s::NFTA_LOG_PREFIX),
            group: t[s::NFTA_LOG_GROUP as usize]
                .map(|v| be16("log", s::NFTA_LOG_GROUP, v))
                .transpose()?,
            snaplen: get32(&t, "log", s::NFTA_LOG_SNAPLEN)?,
            qthreshold: t[s::NFTA_LOG_QTHRESHOLD as usize]
                .map(|v| be16("log", s::NFTA_LOG_QTHRESHOLD, v))
                .transpose()?,
            level: get32(&t, "log", s::NFTA_LOG_LEVEL)?,
            flags: get32(&t, "log", s::NFTA_LOG_FLAGS)?.unwrap_or(0),
        },
        "limit" => Expr::Limit {
            rate: get64(&t, "limit", s::NFTA_LIMIT_RATE)?.unwrap_or(0),
            unit: get64(&t, "limit", s::NFTA_LIMIT_UNIT)?.unwrap_or(0),
            burst: get32(&t, "limit", s::NFTA_LIMIT_BURST)?.unwrap_or(0),
            bytes: get32(&t, "limit", s::NFTA_LIMIT_TYPE)?.unwrap_or(0) == s::NFT_LIMIT_PKT_BYTES,
            invert: get32(&t, "limit", s::NFTA_LIMIT_FLAGS)?.unwrap_or(0) & s::NFT_LIMIT_F_INV != 0,
        },
        "quota" => Expr::Quota {
            bytes: get64(&t, "quota", s::NFTA_QUOTA_BYTES)?.unwrap_or(0),
            consumed: get64(&t, "quota", s::NFTA_QUOTA_CONSUMED)?.unwrap_or(0),
            invert: get32(&t, "quota", s::NFTA_QUOTA_FLAGS)?.unwrap_or(0) & s::NFT_QUOTA_F_INV != 0,
        },
        "nat" => Expr::Nat {
            kind: need32(&t, "nat", s::NFTA_NAT_TYPE)?,
            family: get32(&t, "nat", s::NFTA_NAT_FAMILY)?.unwrap_or(0),
            addr_min: get32(&t, "nat", s::NFTA_NAT_REG_ADDR_MIN)?,
            addr_max: get32(&t, "nat", s::NFTA_NAT_REG_ADDR_MAX)?,
            proto_min: get32(&t, "nat", s::NFTA_NAT_REG_PROTO_MIN)?,
            proto_max: get32(&t, "nat", s::NFTA_NAT_REG_PROTO_MAX)?,
            flags: get32(&t, "nat", s::NFTA_NAT_FLAGS)?.unwrap_or(0),
        },
        "masq" => Expr::Masq {
            flags: get32(&t, "masq", s::NFTA_MASQ_FLAGS)?.unwrap_or(0),
            proto_min: get32(&t, "masq", s::NFTA_MASQ_REG_PROTO_MIN)?,
            proto_max: get32(&t, "masq", s::NFTA_MASQ_REG_PROTO_MAX)?,
        },
        "redir" => Expr::Redir {
            flags: get32(&t, "redir", s::NFTA_REDIR_FLAGS)?.unwrap_or(0),
            proto_min: get32(&t, "redir", s::NFTA_REDIR_REG_PROTO_MIN)?,
            proto_max: get32(&t, "redir", s::NFTA_REDIR_REG_PROTO_MAX)?,
        },
        "reject" => Expr::Reject {
            kind: need32(&t, "reject", s::NFTA_REJECT_TYPE)?,
            code: t[s::NFTA_REJECT_ICMP_CODE as usize]
                .and_then(|v| v.first().copied())
                .unwrap_or(0),
        },
        "queue" => Expr::Queue {
            num: t[s::NFTA_QUEUE_NUM as usize]
                .map(|v| be16("queue", 1, v))
                .transpose()?
                .unwrap_or(0),
            total: t[s::NFTA_QUEUE_TOTAL as usize]
                .map(|v| be16("queue", 2, v))
                .transpose()?
                .unwrap_or(1),
            flags: t[s::NFTA_QUEUE_FLAGS as usize]
                .map(|v| be16("queue", 3, v))
                .transpose()?
                .unwrap_or(0),
        },
        "notrack" => Expr::Notrack,
        other => {
            // Where these loaders keep their destination register (their DREG attribute).
            let dreg_attr = match other {
                "fib" | "rt" | "exthdr" | "osf" | "numgen" | "xfrm" => Some(1u16),
                "hash" | "socket" | "tunnel" => Some(2u16),
                _ => None,
            };
            let dreg = match dreg_attr {
                Some(a) => get32(&t, "expression", a).ok().flatten(),
                None => None,
            };
            let name = if other.is_empty() {
                "?".into()
            } else {
                other.to_string()
            };
            Expr::Other { name, dreg }
        }
    })
}

/// NFT_MSG_NEWSETELEM: the elements of one message.
pub fn decode_setelems(payload: &[u8], out: &mut Vec<RawElement>) -> R<()> {
    let (_, a) = nfgen(payload)?;
    for at in attrs(a) {
        let (ty, v) = at?;
        if ty != s::NFTA_SET_ELEM_LIST_ELEMENTS {
            continue;
        }
        for el in attrs(v) {
            let (_, ev) = el?;
            out.push(decode_element(ev)?);
        }
    }
    Ok(())
}

/// Counts the elements of one NFT_MSG_NEWSETELEM without keeping them: interval ends do
/// not count. This is what the per-sample element count of large sets costs.
pub fn count_setelems(payload: &[u8]) -> R<u64> {
    let (_, a) = nfgen(payload)?;
    let mut n = 0;
    for at in attrs(a) {
        let (ty, v) = at?;
        if ty != s::NFTA_SET_ELEM_LIST_ELEMENTS {
            continue;
        }
        for el in attrs(v) {
            let (_, ev) = el?;
            let mut end = false;
            for f in attrs(ev) {
                let (fty, fv) = f?;
                if fty == s::NFTA_SET_ELEM_FLAGS {
                    end = be32("element", fty, fv)? & s::NFT_SET_ELEM_INTERVAL_END != 0;
                }
            }
            if !end {
                n += 1;
            }
        }
    }
    Ok(n)
}

fn decode_element(v: &[u8]) -> R<RawElement> {
    let mut e = RawElement::default();
    for at in attrs(v) {
        let (ty, v) = at?;
        match ty {
            s::NFTA_SET_ELEM_KEY => {
                if let Data::Value(b) = decode_data(v)? {
                    e.key = b;
                }
            }
            s::NFTA_SET_ELEM_KEY_END => {
                if let Data::Value(b) = decode_data(v)? {
                    e.key_end = Some(b);
                }
            }
            s::NFTA_SET_ELEM_DATA => e.data = Some(decode_data(v)?),
            s::NFTA_SET_ELEM_FLAGS => e.flags = be32("element", ty, v)?,
            s::NFTA_SET_ELEM_TIMEOUT => e.timeout_ms = Some(be64("element", ty, v)?),
            s::NFTA_SET_ELEM_EXPIRATION => e.expires_ms = Some(be64("element", ty, v)?),
            s::NFTA_SET_ELEM_USERDATA => e.comment = udata_comment(v, 0),
            s::NFTA_SET_ELEM_OBJREF => e.objref = Some(string(v)),
            s::NFTA_SET_ELEM_EXPR => {
                if let Expr::Counter { packets, bytes } = decode_expr(v) {
                    e.counter = Some((packets, bytes));
                }
            }
            s::NFTA_SET_ELEM_EXPRESSIONS => {
                for x in attrs(v) {
                    let (_, xv) = x?;
                    if let Expr::Counter { packets, bytes } = decode_expr(xv) {
                        e.counter = Some((packets, bytes));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(e)
}

/// Builds a request: netlink header, nfgenmsg, attributes (type, bytes).
pub fn build_request(
    msg_type: u16,
    flags: u16,
    seq: u32,
    family: u8,
    attrs: &[(u16, &[u8])],
) -> Vec<u8> {
    let mut b = Vec::with_capacity(64);
    b.extend_from_slice(&0u32.to_ne_bytes());
    b.extend_from_slice(&((s::NFNL_SUBSYS_NFTABLES as u16) << 8 | msg_type).to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    b.extend_from_slice(&[family, 0, 0, 0]);
    for (ty, v) in attrs {
        put_attr(&mut b, *ty, v);
    }
    let total = b.len() as u32;
    b[..4].copy_from_slice(&total.to_ne_bytes());
    b
}

/// Attribute value for a name: NUL-terminated string.
pub fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::sys::netlink::attr as nla;

    fn expr(name: &str, data: &[u8]) -> Vec<u8> {
        let mut v = nla(1, &cstr(name));
        v.extend(nla(2 | 0x8000, data));
        v
    }

    #[test]
    fn request_round_trips_through_the_parser() {
        let req = build_request(7, 0x301, 9, 1, &[(1, &cstr("filter")), (2, &cstr("input"))]);
        let msgs: Vec<_> = messages(&req).collect::<Result<_, _>>().expect("parses");
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].ty, 0x0a07);
        assert_eq!(msgs[0].seq, 9);
        let (fam, a) = nfgen(msgs[0].payload).expect("nfgenmsg");
        assert_eq!(fam, Family::Inet);
        let names: Vec<_> = attrs(a).map(|r| string(r.expect("attr").1)).collect();
        assert_eq!(names, vec!["filter", "input"]);
    }

    #[test]
    fn rule_with_unknown_and_broken_expressions_is_kept() {
        let mut exprs = Vec::new();
        // counter packets 5 bytes 300
        let mut c = nla(1, &300u64.to_be_bytes());
        c.extend(nla(2, &5u64.to_be_bytes()));
        exprs.extend(nla(1 | 0x8000, &expr("counter", &c)));
        exprs.extend(nla(1 | 0x8000, &expr("fib", &nla(1, &1u32.to_be_bytes()))));
        // cmp with a 3-byte sreg: broken
        exprs.extend(nla(1 | 0x8000, &expr("cmp", &nla(1, &[0, 0, 1]))));
        let mut payload = vec![2, 0, 0, 0];
        payload.extend(nla(1, &cstr("t")));
        payload.extend(nla(2, &cstr("c")));
        payload.extend(nla(3, &42u64.to_be_bytes()));
        payload.extend(nla(4 | 0x8000, &exprs));
        payload.extend(nla(7, &[0, 5, b'h', b'e', b'l', b'l', b'o']));
        let r = decode_rule(&payload).expect("rule decodes");
        assert_eq!(r.handle, 42);
        assert_eq!(r.comment.as_deref(), Some("hello"));
        assert_eq!(
            r.exprs[0],
            Expr::Counter {
                packets: 5,
                bytes: 300
            }
        );
        assert_eq!(
            r.exprs[1],
            Expr::Other {
                name: "fib".into(),
                dreg: Some(1)
            }
        );
        assert!(matches!(r.exprs[2], Expr::Undecodable { .. }));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(messages(&[1, 2, 3]).next().expect("one item").is_err());
        assert!(decode_rule(&[2, 0, 0, 0, 255, 0, 1, 0]).is_err());
        assert!(decode_set(&[]).is_err());
        assert!(error_code(&[1]).is_err());
    }
}
