//! The RA block as a value. `sys::ra_block` turns a plan into one nftables netlink batch and
//! logs its `Display`, which is the same change in nft syntax (`nft -f` would accept it).

use std::fmt;

/// The daemon's own table and chain. The user's ruleset is never touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaBlockSpec {
    /// Table name in the `inet` family (`pirouterd`).
    pub table: String,
    /// Base chain on the output hook (`ra_block`).
    pub chain: String,
    /// Output hook priority; 0 is the usual `filter` priority.
    pub priority: i32,
    /// Packets with this mark (`SO_MARK`) pass: the RFC 7084 final RA sent with lifetime 0.
    pub exempt_mark: Option<u32>,
    /// Create the table with `flags owner` (kernel 5.12+): only our socket may change it and
    /// it dies with the daemon. `false` on older kernels, where ruleset events are watched.
    pub owner: bool,
}

impl Default for RaBlockSpec {
    fn default() -> Self {
        RaBlockSpec {
            table: "pirouterd".into(),
            chain: "ra_block".into(),
            priority: 0,
            exempt_mark: None,
            owner: true,
        }
    }
}

/// One change to the RA block, applied as a single netlink batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RaBlockPlan {
    /// Create the table (replacing any of ours), the output chain and its rules.
    Engage(RaBlockSpec),
    /// Delete the table and everything in it.
    Release(RaBlockSpec),
}

impl RaBlockPlan {
    pub fn spec(&self) -> &RaBlockSpec {
        match self {
            RaBlockPlan::Engage(s) | RaBlockPlan::Release(s) => s,
        }
    }
}

impl fmt::Display for RaBlockPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RaBlockPlan::Engage(s) => {
                let flags = if s.owner { " { flags owner; }" } else { "" };
                // add + delete + add makes the batch idempotent: a leftover copy of our table
                // (older kernels, no owner flag) is replaced, not doubled.
                write!(
                    f,
                    "add table inet {t}{flags}; delete table inet {t}; add table inet {t}{flags}; \
                     add chain inet {t} {c} {{ type filter hook output priority {p}; policy accept; }}; ",
                    t = s.table,
                    c = s.chain,
                    p = s.priority
                )?;
                if let Some(mark) = s.exempt_mark {
                    write!(
                        f,
                        "add rule inet {} {} meta mark {mark:#x} accept; ",
                        s.table, s.chain
                    )?;
                }
                write!(
                    f,
                    "add rule inet {} {} icmpv6 type nd-router-advert counter drop",
                    s.table, s.chain
                )
            }
            RaBlockPlan::Release(s) => write!(f, "delete table inet {}", s.table),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_nft_change() {
        let spec = RaBlockSpec {
            exempt_mark: Some(0x7072),
            ..RaBlockSpec::default()
        };
        assert_eq!(
            RaBlockPlan::Engage(spec.clone()).to_string(),
            "add table inet pirouterd { flags owner; }; delete table inet pirouterd; \
             add table inet pirouterd { flags owner; }; add chain inet pirouterd ra_block \
             { type filter hook output priority 0; policy accept; }; add rule inet pirouterd \
             ra_block meta mark 0x7072 accept; add rule inet pirouterd ra_block icmpv6 type \
             nd-router-advert counter drop"
        );
        assert_eq!(
            RaBlockPlan::Release(spec).to_string(),
            "delete table inet pirouterd"
        );
    }

    #[test]
    fn no_owner_no_mark() {
        let spec = RaBlockSpec {
            owner: false,
            ..RaBlockSpec::default()
        };
        let s = RaBlockPlan::Engage(spec).to_string();
        assert!(!s.contains("owner"));
        assert!(!s.contains("mark"));
        assert!(s.ends_with("icmpv6 type nd-router-advert counter drop"));
    }
}
