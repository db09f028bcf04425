//! The firewall as people read it: a point-in-time snapshot of the kernel's nftables state
//! (tables, chains, rules with their counters and nft-syntax text, sets, named counters and
//! quotas, the ruleset generation), plus the pure pieces that build it.
//!
//! Everything here is pure: no sockets, no clock. The kernel side lives in `sys::nft`, which
//! decodes netlink into [`Expr`] values and fills a [`RulesetSnapshot`]; it sits behind the
//! small blocking [`RulesetSource`] trait so the sampler and the HTTP layer never see netlink.
//!
//! - [`expr`]: nftables expressions as the kernel lists them (payload, cmp, lookup, ...).
//! - [`render`]: expressions back to nft syntax (`ip saddr 192.0.2.1 tcp dport 22 accept`).
//! - [`labels`]: nfprom-style `nft(key=value;...)` comment labels.
//! - [`api`]: `/api/v1/firewall` JSON, the set-elements route, the `status` section.
//! - [`sampler`]: the daemon thread that samples and publishes (start hook).
//!
//! What is learnt from snapshots over time (firewall insight):
//!
//! - [`identity`]: rule identity across reloads, reset-safe deltas, reload diffs.
//! - [`history`]: per-rule rates (1 min, 15 min, 1 h) and sparklines in bounded memory.
//! - [`insight`]: hot / never-hit / packets views of the rules; not-measurable rules.
//! - [`persist`]: first-seen and last-hit times kept across restarts in the state dir.
//! - [`metrics`]: the `pirouterd_nft_*` Prometheus families with nfprom labels.
//! - [`insight_area`]: the daemon glue: the insight thread fed by the sampler's snapshots,
//!   `/api/v1/firewall/rules`, managed-set routes (`sys::nft_sets`), metrics, events.
//!
//! Snapshots are meant to be published behind an `Arc` and shared by readers; names inside
//! them are `Arc<str>` so a rule costs a few pointers plus its text and comment.

pub mod api;
pub mod expr;
pub mod history;
pub mod identity;
pub mod insight;
pub mod insight_area;
pub mod labels;
pub mod metrics;
pub mod persist;
pub mod render;
pub mod sampler;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An nftables address family (`nfgenmsg.nfgen_family`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Ip,
    Ip6,
    Inet,
    Arp,
    Bridge,
    Netdev,
    /// A family number this build does not know; kept, shown as a number.
    Other(u8),
}

impl Family {
    /// The kernel's NFPROTO_* number.
    pub fn to_raw(self) -> u8 {
        match self {
            Family::Inet => 1,
            Family::Ip => 2,
            Family::Arp => 3,
            Family::Netdev => 5,
            Family::Bridge => 7,
            Family::Ip6 => 10,
            Family::Other(n) => n,
        }
    }

    /// From the kernel's NFPROTO_* number.
    pub fn from_raw(n: u8) -> Family {
        match n {
            1 => Family::Inet,
            2 => Family::Ip,
            3 => Family::Arp,
            5 => Family::Netdev,
            7 => Family::Bridge,
            10 => Family::Ip6,
            n => Family::Other(n),
        }
    }

    /// Parses the name nft uses (`ip`, `ip6`, `inet`, `arp`, `bridge`, `netdev`).
    pub fn parse(s: &str) -> Option<Family> {
        Some(match s {
            "ip" => Family::Ip,
            "ip6" => Family::Ip6,
            "inet" => Family::Inet,
            "arp" => Family::Arp,
            "bridge" => Family::Bridge,
            "netdev" => Family::Netdev,
            _ => return None,
        })
    }

    /// Hook name for a chain's hook number in this family, as nft writes it.
    pub fn hook_name(self, hook: u32) -> Option<&'static str> {
        let names: &[&str] = match self {
            Family::Netdev => &["ingress", "egress"],
            Family::Arp => &["input", "output", "forward"],
            _ => &[
                "prerouting",
                "input",
                "forward",
                "output",
                "postrouting",
                "ingress",
            ],
        };
        names.get(hook as usize).copied()
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Family::Ip => f.write_str("ip"),
            Family::Ip6 => f.write_str("ip6"),
            Family::Inet => f.write_str("inet"),
            Family::Arp => f.write_str("arp"),
            Family::Bridge => f.write_str("bridge"),
            Family::Netdev => f.write_str("netdev"),
            Family::Other(n) => write!(f, "family{n}"),
        }
    }
}

/// A table: `table inet filter { ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub family: Family,
    pub name: Arc<str>,
    pub handle: u64,
    /// Raw NFT_TABLE_F_* flags; see [`Table::flag_names`].
    pub flags: u32,
    /// Netlink port id of the owning process for `flags owner` tables.
    pub owner: Option<u32>,
    pub comment: Option<String>,
}

impl Table {
    /// Flag names as nft writes them (`dormant`, `owner`, `persist`), unknown bits as hex.
    pub fn flag_names(&self) -> Vec<String> {
        flag_names(self.flags, &[(1, "dormant"), (2, "owner"), (4, "persist")])
    }
}

/// A chain's hook, for base chains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// `input`, `prerouting`, ... (or `hook<N>` for a number this build does not know).
    pub name: String,
    pub priority: i32,
    /// `filter`, `nat`, `route`.
    pub chain_type: String,
    /// `accept` or `drop`.
    pub policy: String,
    /// Device for netdev/ingress chains.
    pub device: Option<String>,
}

/// A chain: base (with a hook) or regular (a jump target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub family: Family,
    pub table: Arc<str>,
    pub name: Arc<str>,
    pub handle: u64,
    /// `Some` for base chains.
    pub hook: Option<Hook>,
    /// Number of rules listed in this snapshot.
    pub rule_count: u32,
    pub comment: Option<String>,
}

/// Packets and bytes of a counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    pub packets: u64,
    pub bytes: u64,
}

/// A chain's identity and the storage of its rules' text and comments, shared by its rules
/// (one allocation per chain instead of two per rule: at 50k rules that is most of the
/// snapshot's memory).
#[derive(Debug, PartialEq, Eq)]
pub struct ChainText {
    pub family: Family,
    pub table: Arc<str>,
    pub name: Arc<str>,
    /// Every rule's text and comment, back to back.
    text: String,
}

impl ChainText {
    /// A chain's text store; `text` holds what the rules' ranges point into.
    pub fn new(family: Family, table: Arc<str>, name: Arc<str>, text: String) -> ChainText {
        ChainText {
            family,
            table,
            name,
            text,
        }
    }
}

/// One rule with what people and metrics need; the expressions themselves are not kept
/// (see the module docs of `sys::nft` for why: memory at 50k rules). Cloning is cheap: the
/// names and text live in the chain's shared [`ChainText`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    chain: Arc<ChainText>,
    text: (u32, u32),
    /// `u32::MAX` length: no comment (an `Option` would cost 4 more bytes per rule).
    comment: (u32, u32),
    /// Kernel handle; changes when the ruleset is reloaded with `nft -f`.
    pub handle: u64,
    /// 0-based index of the rule in its chain.
    pub position: u32,
    /// True when every expression was understood, so `text()` loads back as the same rule.
    pub text_exact: bool,
    /// The kernel's answer for this rule could not be decoded; `text()` says why.
    pub undecodable: bool,
    /// The rule has at least one anonymous `counter` expression.
    pub has_counter: bool,
    /// Sum of every anonymous `counter` expression in the rule (zero without one).
    pub counter: Counter,
    /// Names of named counters the rule references (`counter name "x"`).
    pub counter_refs: Box<[Box<str>]>,
}

/// Where a rule's text and comment sit in its chain's [`ChainText`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextRange {
    pub text: (u32, u32),
    pub comment: Option<(u32, u32)>,
}

const NO_COMMENT: (u32, u32) = (0, u32::MAX);

impl Rule {
    /// A rule whose text and comment sit at `at` in `chain`'s store.
    pub fn new(chain: Arc<ChainText>, at: TextRange, handle: u64, position: u32) -> Rule {
        Rule {
            chain,
            text: at.text,
            comment: at.comment.unwrap_or(NO_COMMENT),
            handle,
            position,
            text_exact: false,
            undecodable: false,
            has_counter: false,
            counter: Counter::default(),
            counter_refs: Box::default(),
        }
    }

    /// A rule with its own text store (tests, tools): `text` and `comment` as given.
    pub fn standalone(
        family: Family,
        table: &str,
        chain: &str,
        handle: u64,
        position: u32,
        text: &str,
        comment: Option<&str>,
    ) -> Rule {
        let mut store = String::new();
        let at = push_text(&mut store, text, comment);
        let ct = Arc::new(ChainText::new(family, table.into(), chain.into(), store));
        Rule::new(ct, at, handle, position)
    }

    fn slice(&self, (start, len): (u32, u32)) -> &str {
        self.chain
            .text
            .get(start as usize..start as usize + len as usize)
            .unwrap_or("")
    }
    pub fn family(&self) -> Family {
        self.chain.family
    }
    pub fn table(&self) -> &Arc<str> {
        &self.chain.table
    }
    pub fn chain(&self) -> &Arc<str> {
        &self.chain.name
    }
    /// The rule as nft syntax, without counter values (`tcp dport 22 counter accept`).
    pub fn text(&self) -> &str {
        self.slice(self.text)
    }
    /// The rule's `comment "..."` (from its userdata).
    pub fn comment(&self) -> Option<&str> {
        (self.comment != NO_COMMENT).then(|| self.slice(self.comment))
    }
    /// Whether the rule has at least one anonymous counter.
    pub fn has_counter(&self) -> bool {
        self.has_counter
    }
    /// Packets counted (0 without a counter).
    pub fn packets(&self) -> u64 {
        self.counter.packets
    }
    /// Bytes counted (0 without a counter).
    pub fn bytes(&self) -> u64 {
        self.counter.bytes
    }
}

/// Appends a rule's text and comment to a chain's store; returns where they went.
pub fn push_text(store: &mut String, text: &str, comment: Option<&str>) -> TextRange {
    let mut put = |s: &str| {
        let start = store.len() as u32;
        store.push_str(s);
        (start, s.len() as u32)
    };
    let text = put(text);
    let comment = comment.map(put);
    TextRange { text, comment }
}

/// Set flags as booleans (NFT_SET_*).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetFlags {
    pub anonymous: bool,
    pub constant: bool,
    pub interval: bool,
    pub map: bool,
    pub timeout: bool,
    /// `dynamic`: updated from the packet path.
    pub dynamic: bool,
    pub object: bool,
    pub concat: bool,
    pub raw: u32,
}

impl SetFlags {
    pub fn from_raw(raw: u32) -> SetFlags {
        SetFlags {
            anonymous: raw & 1 != 0,
            constant: raw & 2 != 0,
            interval: raw & 4 != 0,
            map: raw & 8 != 0,
            timeout: raw & 16 != 0,
            dynamic: raw & 32 != 0,
            object: raw & 64 != 0,
            concat: raw & 128 != 0,
            raw,
        }
    }
    /// Names as nft writes them in `flags ...` (map/anonymous/concat are implied there).
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.constant {
            v.push("constant");
        }
        if self.interval {
            v.push("interval");
        }
        if self.timeout {
            v.push("timeout");
        }
        if self.dynamic {
            v.push("dynamic");
        }
        v
    }
}

/// How an element count was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountFreshness {
    /// Counted during this snapshot.
    Fresh,
    /// Carried over from an earlier sample: large sets are recounted on a slower cadence.
    Carried { age: Duration },
}

/// A named set or map (anonymous sets are not listed; they show inside rule text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetInfo {
    pub family: Family,
    pub table: Arc<str>,
    pub name: Arc<str>,
    pub handle: u64,
    pub flags: SetFlags,
    /// Key type as nft writes it (`ipv4_addr`, `ipv4_addr . inet_service`).
    pub key_type: String,
    pub key_len: u32,
    /// For maps: the data type (`verdict`, `ipv4_addr`, ...).
    pub data_type: Option<String>,
    /// Default element timeout.
    pub timeout_ms: Option<u64>,
    /// Maximum size (`size N`).
    pub size: Option<u32>,
    pub comment: Option<String>,
    /// Number of elements (intervals count once); `None` when it could not be counted yet.
    pub element_count: Option<u64>,
    pub count_freshness: CountFreshness,
}

/// One element of a set, as people read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetElement {
    /// The key as nft writes it (`192.0.2.7`, `10.0.0.0/8`, `1000-2000`, `10.0.0.1 . 22`).
    pub key: String,
    /// For maps: the value (`accept`, `jump web`, `10.0.0.2`).
    pub data: Option<String>,
    /// The element's own timeout.
    pub timeout_ms: Option<u64>,
    /// Time left before the element expires, as the kernel reported it.
    pub expires_ms: Option<u64>,
    pub comment: Option<String>,
    /// Per-element counter, when the set has `counter`.
    pub counter: Option<Counter>,
}

/// A set and its elements, read on demand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetElements {
    pub set: SetInfo,
    pub elements: Vec<SetElement>,
}

/// What a named object holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectValue {
    Counter(Counter),
    Quota {
        /// Quota size in bytes.
        bytes: u64,
        consumed: u64,
        /// `over`: matches once the quota is used up.
        over: bool,
    },
    /// Any other object type (limit, ct helper, ...): kept with its kernel type name.
    Other {
        kind: String,
    },
}

/// A named object: `counter cnt_0 { }`, `quota q { over 10 mbytes }`, ...
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedObject {
    pub family: Family,
    pub table: Arc<str>,
    pub name: Arc<str>,
    pub handle: u64,
    pub value: ObjectValue,
    pub comment: Option<String>,
}

/// Numbers about how a snapshot was taken (for the bench, logs and status).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Whole-snapshot attempts (more than 1 when a dump was interrupted by a change).
    pub attempts: u32,
    /// Netlink bytes received.
    pub bytes: u64,
    /// Netlink messages received.
    pub messages: u64,
    /// Dump requests sent.
    pub requests: u32,
    /// Sets whose elements were counted in this snapshot.
    pub sets_counted: u32,
}

/// The whole ruleset at one moment (one ruleset generation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RulesetSnapshot {
    /// Ruleset generation id: changes with every committed ruleset change.
    pub generation: u32,
    pub tables: Vec<Table>,
    pub chains: Vec<Chain>,
    /// Rules in kernel order: by table, chain, then position.
    pub rules: Vec<Rule>,
    pub sets: Vec<SetInfo>,
    pub objects: Vec<NamedObject>,
    /// Things that did not stop the listing but a person should know (undecodable table,
    /// snapshot not consistent after retries, ...).
    pub warnings: Vec<String>,
    pub stats: SnapshotStats,
}

impl RulesetSnapshot {
    /// Named counters with their values.
    pub fn counters(&self) -> impl Iterator<Item = (&NamedObject, Counter)> {
        self.objects.iter().filter_map(|o| match o.value {
            ObjectValue::Counter(c) => Some((o, c)),
            _ => None,
        })
    }
    /// Finds a set by family, table and name.
    pub fn set(&self, family: Family, table: &str, name: &str) -> Option<&SetInfo> {
        self.sets
            .iter()
            .find(|s| s.family == family && &*s.table == table && &*s.name == name)
    }
}

/// Errors of the ruleset source. Each says what to check.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// The process lacks CAP_NET_ADMIN in its network namespace (the kernel answered EPERM).
    #[error(
        "pirouterd needs CAP_NET_ADMIN to read nftables; run it from the systemd unit or as root"
    )]
    PermissionDenied,
    /// The netlink socket could not be opened or bound; check that the kernel has nf_tables.
    #[error("cannot open the nftables netlink socket")]
    OpenSocket(#[source] std::io::Error),
    /// Sending a request failed.
    #[error("cannot send the {what} request to the kernel")]
    Send {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Receiving an answer failed.
    #[error("cannot receive the kernel's answer to {what}")]
    Receive {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The kernel refused a request.
    #[error("the kernel refused {what}")]
    Kernel {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The kernel's framing could not be decoded (not one rule: the message stream itself).
    #[error("cannot decode the kernel's answer to {what}: {detail}")]
    Decode { what: String, detail: String },
    /// A table or chain kept vanishing while being listed (the ruleset is being rewritten
    /// faster than it can be read); the next sample will try again.
    #[error("{family} table {table:?} (chain {chain:?}) vanished while being listed, {attempts} attempts")]
    Vanished {
        family: Family,
        table: String,
        chain: String,
        attempts: u32,
    },
    /// The set asked for does not exist.
    #[error("no set {family} {table} {set}")]
    NoSuchSet {
        family: Family,
        table: String,
        set: String,
    },
}

/// The ruleset seam: the kernel (`sys::nft::NftSource`) or anything else that can list it.
pub trait RulesetSource {
    /// Reads the whole ruleset. `now` drives the slower recount cadence of large sets.
    fn snapshot(&mut self, now: Instant) -> Result<RulesetSnapshot, NftError>;
    /// Reads one set's elements, with expiry for timed ones.
    fn set_elements(
        &mut self,
        family: Family,
        table: &str,
        set: &str,
    ) -> Result<SetElements, NftError>;
    /// Blocks up to `timeout` for a ruleset-change announcement; true when one came.
    fn wait_for_change(&mut self, timeout: Duration) -> Result<bool, NftError>;
    /// Starts listening for change announcements now (otherwise the first
    /// `wait_for_change` does), so none made after this call is missed.
    fn subscribe(&mut self) -> Result<(), NftError> {
        Ok(())
    }
}

/// Names of set bits, unknown bits as one hex value.
fn flag_names(flags: u32, names: &[(u32, &str)]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = flags;
    for (bit, name) in names {
        if flags & bit != 0 {
            out.push((*name).to_string());
            rest &= !bit;
        }
    }
    if rest != 0 {
        out.push(format!("{rest:#x}"));
    }
    out
}

/// Formats milliseconds as nft writes durations: `10s`, `2h`, `1d2h`, `500ms` (the same
/// form the config reads, [`crate::duration::Human`]).
pub fn format_duration_ms(ms: u64) -> String {
    crate::duration::Human(std::time::Duration::from_millis(ms)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_nft() {
        assert_eq!(format_duration_ms(10_000), "10s");
        assert_eq!(format_duration_ms(7_200_000), "2h");
        assert_eq!(format_duration_ms(93_600_000), "1d2h");
        assert_eq!(format_duration_ms(1_500), "1s500ms");
    }

    #[test]
    fn families_round_trip() {
        for f in [
            Family::Ip,
            Family::Ip6,
            Family::Inet,
            Family::Arp,
            Family::Bridge,
            Family::Netdev,
        ] {
            assert_eq!(Family::from_raw(f.to_raw()), f);
            assert_eq!(Family::parse(&f.to_string()), Some(f));
        }
        assert_eq!(Family::from_raw(42), Family::Other(42));
    }

    #[test]
    fn table_flags_keep_unknown_bits() {
        let t = Table {
            family: Family::Inet,
            name: "t".into(),
            handle: 1,
            flags: 2 | 0x40,
            owner: None,
            comment: None,
        };
        assert_eq!(
            t.flag_names(),
            vec!["owner".to_string(), "0x40".to_string()]
        );
    }
}
