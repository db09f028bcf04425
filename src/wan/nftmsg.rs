//! Pure decoding of the one nftables answer the RA blocker reads back: a rule from an
//! `NFT_MSG_GETRULE` dump of our own chain, with its counters. (The ruleset reader proper is
//! elsewhere; this is only what the block needs to report "packets dropped".)
//!
//! Layout: `include/uapi/linux/netfilter/nf_tables.h`; integers inside nftables attributes
//! are big-endian.

use super::DropCounter;
use crate::sys::netlink::attrs_ok as attrs;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_HANDLE: u16 = 3;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_COUNTER_BYTES: u16 = 1;
const NFTA_COUNTER_PACKETS: u16 = 2;
/// `struct nfgenmsg`: family, version, resource id.
const NFGENMSG_LEN: usize = 4;

/// A rule of our chain, reduced to what the block reports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleCounters {
    /// `NFPROTO_*` family from the nfgenmsg header.
    pub family: u8,
    pub table: String,
    pub chain: String,
    pub handle: Option<u64>,
    /// Every `counter` expression in the rule, in order. Other expressions are skipped.
    pub counters: Vec<DropCounter>,
}

fn be64(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.get(..8)?.try_into().ok()?))
}

fn cstr(v: &[u8]) -> String {
    let end = v.iter().position(|c| *c == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end]).into_owned()
}

/// Parses a table message's payload: its `NFPROTO_*` family and name.
pub fn parse_table(payload: &[u8]) -> Option<(u8, String)> {
    let family = *payload.first()?;
    let body = payload.get(NFGENMSG_LEN..)?;
    attrs(body)
        .find(|(ty, _)| *ty == NFTA_TABLE_NAME)
        .map(|(_, v)| (family, cstr(v)))
}

/// Parses a rule message's payload (after the 16-byte netlink header). `None` when it is too
/// short to hold the nfgenmsg header.
pub fn parse_rule(payload: &[u8]) -> Option<RuleCounters> {
    let family = *payload.first()?;
    let body = payload.get(NFGENMSG_LEN..)?;
    let mut r = RuleCounters {
        family,
        ..RuleCounters::default()
    };
    for (ty, v) in attrs(body) {
        match ty {
            NFTA_RULE_TABLE => r.table = cstr(v),
            NFTA_RULE_CHAIN => r.chain = cstr(v),
            NFTA_RULE_HANDLE => r.handle = be64(v),
            NFTA_RULE_EXPRESSIONS => {
                for (elem_ty, elem) in attrs(v) {
                    if elem_ty != NFTA_LIST_ELEM {
                        continue;
                    }
                    let mut name = String::new();
                    let mut data: &[u8] = &[];
                    for (t, x) in attrs(elem) {
                        match t {
                            NFTA_EXPR_NAME => name = cstr(x),
                            NFTA_EXPR_DATA => data = x,
                            _ => {}
                        }
                    }
                    if name == "counter" {
                        let mut c = DropCounter::default();
                        for (t, x) in attrs(data) {
                            match t {
                                NFTA_COUNTER_BYTES => c.bytes = be64(x).unwrap_or(0),
                                NFTA_COUNTER_PACKETS => c.packets = be64(x).unwrap_or(0),
                                _ => {}
                            }
                        }
                        r.counters.push(c);
                    }
                }
            }
            _ => {}
        }
    }
    Some(r)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    use crate::sys::netlink::attr;

    fn nested(ty: u16, v: &[u8]) -> Vec<u8> {
        attr(ty | 0x8000, v)
    }

    fn expr(name: &str, data: &[u8]) -> Vec<u8> {
        let mut e = attr(NFTA_EXPR_NAME, format!("{name}\0").as_bytes());
        e.extend(nested(NFTA_EXPR_DATA, data));
        nested(NFTA_LIST_ELEM, &e)
    }

    /// The shape of our drop rule as the kernel dumps it: meta, cmp, payload, cmp, counter,
    /// immediate (contents of the non-counter expressions abbreviated).
    fn drop_rule(packets: u64, bytes: u64) -> Vec<u8> {
        let mut p = vec![1, 0, 0, 0]; // NFPROTO_INET, version 0, res id
        p.extend(attr(NFTA_RULE_TABLE, b"pirouterd\0"));
        p.extend(attr(NFTA_RULE_CHAIN, b"ra_block\0"));
        p.extend(attr(NFTA_RULE_HANDLE, &3u64.to_be_bytes()));
        let mut counter = attr(NFTA_COUNTER_BYTES, &bytes.to_be_bytes());
        counter.extend(attr(NFTA_COUNTER_PACKETS, &packets.to_be_bytes()));
        let mut list = expr("meta", &attr(2, &16u32.to_be_bytes()));
        list.extend(expr("cmp", &attr(1, &1u32.to_be_bytes())));
        list.extend(expr("counter", &counter));
        list.extend(expr("immediate", &[]));
        p.extend(nested(NFTA_RULE_EXPRESSIONS, &list));
        p
    }

    #[test]
    fn reads_the_counter() {
        let r = parse_rule(&drop_rule(7, 560)).expect("parses");
        assert_eq!(r.family, 1);
        assert_eq!(r.table, "pirouterd");
        assert_eq!(r.chain, "ra_block");
        assert_eq!(r.handle, Some(3));
        assert_eq!(
            r.counters,
            vec![DropCounter {
                packets: 7,
                bytes: 560
            }]
        );
    }

    #[test]
    fn reads_a_table_name() {
        let mut p = vec![1, 0, 0, 0];
        p.extend(attr(NFTA_TABLE_NAME, b"pirouterd\0"));
        p.extend(attr(2, &2u32.to_be_bytes())); // NFTA_TABLE_FLAGS: owner
        assert_eq!(parse_table(&p), Some((1, "pirouterd".to_string())));
        assert_eq!(parse_table(&p[..4]), None);
    }

    #[test]
    fn truncation_never_panics() {
        let b = drop_rule(1, 2);
        for cut in 0..b.len() {
            let _ = parse_rule(&b[..cut]);
        }
        assert!(parse_rule(&[1, 0]).is_none());
    }
}
