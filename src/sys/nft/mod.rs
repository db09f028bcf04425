//! nftables over netlink: the kernel side of [`RulesetSource`].
//!
//! How a snapshot is read, and why:
//! - Rules are dumped **per chain** with the chain's own family. One whole-ruleset GETRULE
//!   dump costs the kernel quadratic time (it re-walks every chain to find where to resume
//!   each datagram), and asking with family UNSPEC mixes up `ip` and `inet` tables that
//!   share a name.
//! - Messages are decoded **as they stream** and each rule is rendered at once; only the
//!   [`Rule`] (names shared as `Arc<str>`, text, comment, counter) is kept, never the
//!   expressions. That keeps a 50k-rule snapshot near the size of its text.
//! - The generation id is read before and after; if it moved, or the kernel flagged a dump
//!   as interrupted (NLM_F_DUMP_INTR), the snapshot is taken again (up to 4 times).
//! - Anonymous sets (`tcp dport { 80, 443 }`) are needed to render rules; they never change
//!   while they exist, so their elements are cached by handle across snapshots.
//! - Named sets' element counts need a full element dump (the kernel keeps no count):
//!   small sets are counted on every snapshot, large ones on a slower cadence
//!   ([`CountPolicy`]).

pub mod decode;
pub mod socket;

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustables::sys as s;

use crate::firewall::expr::{Expr, RawElement, SetShape};
use crate::firewall::render::{self, RenderEnv};
use crate::firewall::{
    push_text, Chain, ChainText, CountFreshness, Counter, Family, Hook, NamedObject, NftError,
    ObjectValue, Rule, RulesetSnapshot, RulesetSource, SetElements, SetFlags, SetInfo,
    SnapshotStats, Table, TextRange,
};
use decode::{ChainMsg, SetMsg};
use socket::{NftEvents, NftSocket};

const ATTEMPTS: u32 = 4;
const ENOENT: i32 = 2;

/// When to recount a named set's elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountPolicy {
    /// Sets whose last count was at most this many elements are counted every snapshot.
    pub small_max: u64,
    /// Larger sets are recounted when their count is older than this.
    pub large_every: Duration,
}

impl Default for CountPolicy {
    fn default() -> Self {
        CountPolicy {
            small_max: 10_000,
            large_every: Duration::from_secs(60),
        }
    }
}

type SetKey = (Family, Arc<str>, Arc<str>, u64);
type WriterKey = (Family, Arc<str>, String);

/// Reads nftables from the kernel of the network namespace it was opened in.
pub struct NftSource {
    sock: NftSocket,
    events: Option<NftEvents>,
    policy: CountPolicy,
    /// Anonymous sets rendered inline (`{ 80, 443 }`), by handle: they never change.
    anon: HashMap<SetKey, Arc<(String, bool)>>,
    /// Last element count of each named set: (count, when, generation).
    counts: HashMap<SetKey, (u64, Instant, u32)>,
    /// Sets some rule writes from the packet path (`add @s { ip saddr }`), as read at a
    /// generation; `None` also when a rule could not be decoded (it might be one).
    writers: Option<(u32, HashSet<WriterKey>)>,
    /// Rules in the last snapshot: the next one reserves that much at once instead of
    /// doubling its vector (which would briefly hold two copies at 50k rules).
    last_rules: usize,
}

enum Attempt {
    Done(RulesetSnapshot, bool),
    Vanished {
        family: Family,
        table: String,
        chain: String,
    },
}

fn kernel_errno(e: &NftError) -> Option<i32> {
    match e {
        NftError::Kernel { source, .. } => source.raw_os_error(),
        _ => None,
    }
}

struct Env<'a> {
    sets: Option<&'a HashMap<String, SetShape>>,
    ifnames: &'a Ifnames,
}

impl RenderEnv for Env<'_> {
    fn set(&self, name: &str) -> Option<&SetShape> {
        self.sets.and_then(|m| m.get(name))
    }
    fn ifname(&self, index: u32) -> Option<String> {
        self.ifnames.get_or_init(ifnames).get(&index).cloned()
    }
}

/// Interface names by index, read only if a rule needs one (`iif`, `oif`).
type Ifnames = std::cell::OnceCell<HashMap<u32, String>>;

fn ifnames() -> HashMap<u32, String> {
    let mut m = HashMap::new();
    if let Ok(list) = nix::net::if_::if_nameindex() {
        for i in list.iter() {
            m.insert(i.index(), i.name().to_string_lossy().into_owned());
        }
    }
    m
}

fn set_info(m: &SetMsg, table: Arc<str>, count: Option<u64>, fresh: CountFreshness) -> SetInfo {
    let flags = SetFlags::from_raw(m.shape.flags);
    let data_type = if flags.map {
        m.shape.data_type.map(render::key_type_name)
    } else if flags.object {
        m.shape.obj_type.map(decode::obj_kind_name)
    } else {
        None
    };
    SetInfo {
        family: m.family.unwrap_or(Family::Other(0)),
        table,
        name: m.name.as_str().into(),
        handle: m.handle,
        flags,
        key_type: render::key_type_name(m.shape.key_type),
        key_len: m.shape.key_len,
        data_type,
        timeout_ms: m.timeout_ms,
        size: m.size,
        comment: m.comment.clone(),
        element_count: count,
        count_freshness: fresh,
    }
}

impl NftSource {
    /// Opens the netlink socket (no privilege is needed for that; the first request
    /// says whether we have CAP_NET_ADMIN).
    pub fn open(policy: CountPolicy) -> Result<NftSource, NftError> {
        Ok(NftSource {
            sock: NftSocket::open()?,
            events: None,
            policy,
            anon: HashMap::new(),
            counts: HashMap::new(),
            writers: None,
            last_rules: 0,
        })
    }

    /// Bytes and messages received so far (for the benchmark).
    pub fn received(&self) -> (u64, u64) {
        (self.sock.bytes, self.sock.messages)
    }

    /// The ruleset generation id.
    pub fn generation(&mut self) -> Result<u32, NftError> {
        let mut gen = None;
        let mut err = None;
        self.sock
            .request("GETGEN", s::NFT_MSG_GETGEN as u16, false, 0, &[], |m| {
                match decode::decode_gen(m.payload) {
                    Ok(g) => gen = Some(g),
                    Err(e) => err = Some(e.to_string()),
                }
                Ok(())
            })?;
        gen.ok_or_else(|| NftError::Decode {
            what: "GETGEN".into(),
            detail: err.unwrap_or_else(|| "no generation in the answer".into()),
        })
    }

    fn dump_elements(
        &mut self,
        family: Family,
        table: &str,
        set: &str,
        out: &mut Vec<RawElement>,
    ) -> Result<bool, NftError> {
        let (t, n) = (decode::cstr(table), decode::cstr(set));
        let what = format!("GETSETELEM {family} {table} {set}");
        let mut bad = None;
        let end = self.sock.request(
            &what,
            s::NFT_MSG_GETSETELEM as u16,
            true,
            family.to_raw(),
            &[
                (s::NFTA_SET_ELEM_LIST_TABLE, &t),
                (s::NFTA_SET_ELEM_LIST_SET, &n),
            ],
            |m| {
                if let Err(e) = decode::decode_setelems(m.payload, out) {
                    bad = Some(e);
                }
                Ok(())
            },
        )?;
        if let Some(e) = bad {
            return Err(NftError::Decode {
                what,
                detail: e.to_string(),
            });
        }
        Ok(end.interrupted)
    }

    /// Counts a set's elements without keeping them.
    pub fn count_elements(
        &mut self,
        family: Family,
        table: &str,
        set: &str,
    ) -> Result<u64, NftError> {
        let (t, n) = (decode::cstr(table), decode::cstr(set));
        let what = format!("GETSETELEM {family} {table} {set}");
        let mut count = 0u64;
        let mut bad = None;
        self.sock.request(
            &what,
            s::NFT_MSG_GETSETELEM as u16,
            true,
            family.to_raw(),
            &[
                (s::NFTA_SET_ELEM_LIST_TABLE, &t),
                (s::NFTA_SET_ELEM_LIST_SET, &n),
            ],
            |m| {
                match decode::count_setelems(m.payload) {
                    Ok(c) => count += c,
                    Err(e) => bad = Some(e),
                }
                Ok(())
            },
        )?;
        match bad {
            Some(e) => Err(NftError::Decode {
                what,
                detail: e.to_string(),
            }),
            None => Ok(count),
        }
    }

    /// Dumps every object of one kind (`what`: request name, message type, and the noun for
    /// warnings), decoding each message and handing it to `keep`. A message that does not
    /// decode becomes a warning, never an error: one odd object must not stop the listing.
    fn dump_each<T, E: std::fmt::Display>(
        &mut self,
        what: (&str, u32, &str),
        decode: impl Fn(&[u8]) -> Result<T, E>,
        mut keep: impl FnMut(T),
        acc: (&mut Vec<String>, &mut bool, &mut SnapshotStats),
    ) -> Result<(), NftError> {
        let (name, msg_type, noun) = what;
        let (warnings, interrupted, stats) = acc;
        let end = self
            .sock
            .request(name, msg_type as u16, true, 0, &[], |m| {
                match decode(m.payload) {
                    Ok(x) => keep(x),
                    Err(e) => warnings.push(format!("{noun} could not be decoded: {e}")),
                }
                Ok(())
            })?;
        *interrupted |= end.interrupted;
        stats.requests += 1;
        Ok(())
    }

    fn attempt(&mut self, now: Instant) -> Result<Attempt, NftError> {
        let (bytes0, msgs0) = self.received();
        let mut stats = SnapshotStats::default();
        let mut warnings = Vec::new();
        let gen0 = self.generation()?;
        let mut interrupted = false;

        // Tables.
        let mut tables: Vec<Table> = Vec::new();
        self.dump_each(
            ("GETTABLE", s::NFT_MSG_GETTABLE, "a table"),
            decode::decode_table,
            |t| {
                tables.push(Table {
                    family: t.family,
                    name: t.name.into(),
                    handle: t.handle,
                    flags: t.flags,
                    owner: t.owner,
                    comment: t.comment,
                })
            },
            (&mut warnings, &mut interrupted, &mut stats),
        )?;
        let table_name = |fam: Family, name: &str| -> Arc<str> {
            tables
                .iter()
                .find(|t| t.family == fam && &*t.name == name)
                .map(|t| t.name.clone())
                .unwrap_or_else(|| name.into())
        };

        // Chains.
        let mut chain_msgs: Vec<ChainMsg> = Vec::new();
        self.dump_each(
            ("GETCHAIN", s::NFT_MSG_GETCHAIN, "a chain"),
            decode::decode_chain,
            |m| chain_msgs.push(m),
            (&mut warnings, &mut interrupted, &mut stats),
        )?;

        // Sets.
        let mut set_msgs: Vec<SetMsg> = Vec::new();
        self.dump_each(
            ("GETSET", s::NFT_MSG_GETSET, "a set"),
            decode::decode_set,
            |m| set_msgs.push(m),
            (&mut warnings, &mut interrupted, &mut stats),
        )?;

        // Named objects (counters, quotas, ...).
        let mut objects: Vec<NamedObject> = Vec::new();
        self.dump_each(
            ("GETOBJ", s::NFT_MSG_GETOBJ, "a named object"),
            decode::decode_obj,
            |o| {
                let family = o.family.unwrap_or(Family::Other(0));
                let value = match o.kind {
                    s::NFT_OBJECT_COUNTER => ObjectValue::Counter(Counter {
                        packets: o.values.0,
                        bytes: o.values.1,
                    }),
                    s::NFT_OBJECT_QUOTA => ObjectValue::Quota {
                        bytes: o.values.0,
                        consumed: o.values.1,
                        over: o.flags & s::NFT_QUOTA_F_INV != 0,
                    },
                    k => ObjectValue::Other {
                        kind: decode::obj_kind_name(k),
                    },
                };
                objects.push(NamedObject {
                    family,
                    table: table_name(family, &o.table),
                    name: o.name.into(),
                    handle: o.handle,
                    value,
                    comment: o.comment,
                });
            },
            (&mut warnings, &mut interrupted, &mut stats),
        )?;

        // Set shapes per table, anonymous set elements, named set counts.
        let ifnames = Ifnames::new();
        let mut shapes: HashMap<(Family, Arc<str>), HashMap<String, SetShape>> = HashMap::new();
        let mut sets: Vec<SetInfo> = Vec::new();
        let mut seen: HashSet<SetKey> = HashSet::new();
        // Consumed as it goes: at 50k rules there are thousands of anonymous sets.
        for mut m in set_msgs {
            let family = m.family.unwrap_or(Family::Other(0));
            let table = table_name(family, &m.table);
            let key: SetKey = (family, table.clone(), m.name.as_str().into(), m.handle);
            seen.insert(key.clone());
            if m.shape.flags & s::NFT_SET_ANONYMOUS != 0 {
                let inline = match self.anon.get(&key) {
                    Some(e) => e.clone(),
                    None => {
                        let mut v = Vec::new();
                        match self.dump_elements(family, &m.table, &m.name, &mut v) {
                            Ok(intr) => interrupted |= intr,
                            Err(e) if kernel_errno(&e) == Some(ENOENT) => interrupted = true,
                            Err(e) => return Err(e),
                        }
                        stats.requests += 1;
                        let env = Env {
                            sets: None,
                            ifnames: &ifnames,
                        };
                        let inline = Arc::new(render::render_inline_set(&m.shape, &v, &env));
                        self.anon.insert(key.clone(), inline.clone());
                        inline
                    }
                };
                m.shape.inline = Some(inline);
            } else {
                let last = self.counts.get(&key).copied();
                // A set without timeouts that the datapath cannot fill (no `dynamic`) only
                // changes through a commit, which moves the generation: counted at this
                // generation, its count is still exact.
                // A dynset can write a set without the `dynamic` flag too (the kernel only
                // asks for it with per-element expressions), so a set no rule writes, as read
                // at this same generation.
                let static_set = m.shape.flags & (s::NFT_SET_TIMEOUT | s::NFT_SET_EVAL) == 0
                    && match &self.writers {
                        Some((g, w)) if *g == gen0 => {
                            !w.contains(&(family, table.clone(), m.name.clone()))
                        }
                        _ => false,
                    };
                let current = match last {
                    Some((n, _, g)) if static_set && g == gen0 => Some(n),
                    _ => None,
                };
                let due = match last {
                    None => true,
                    Some((n, at, _)) => {
                        n <= self.policy.small_max
                            || now.saturating_duration_since(at) >= self.policy.large_every
                    }
                };
                let (count, fresh) = if let Some(n) = current {
                    (Some(n), CountFreshness::Fresh)
                } else if due {
                    stats.requests += 1;
                    match self.count_elements(family, &m.table, &m.name) {
                        Ok(n) => {
                            self.counts.insert(key.clone(), (n, now, gen0));
                            stats.sets_counted += 1;
                            (Some(n), CountFreshness::Fresh)
                        }
                        Err(e) if kernel_errno(&e) == Some(ENOENT) => {
                            interrupted = true;
                            (None, CountFreshness::Fresh)
                        }
                        Err(e @ NftError::Decode { .. }) => {
                            warnings.push(e.to_string());
                            (None, CountFreshness::Fresh)
                        }
                        Err(e) => return Err(e),
                    }
                } else {
                    let (n, at, _) = last.unwrap_or((0, now, gen0));
                    (
                        Some(n),
                        CountFreshness::Carried {
                            age: now.saturating_duration_since(at),
                        },
                    )
                };
                sets.push(set_info(&m, table.clone(), count, fresh));
            }
            shapes
                .entry((family, table))
                .or_default()
                .insert(m.name, m.shape);
        }
        self.anon.retain(|k, _| seen.contains(k));
        self.counts.retain(|k, _| seen.contains(k));

        // Chains, then their rules, chain by chain.
        let mut chains: Vec<Chain> = Vec::with_capacity(chain_msgs.len());
        let mut pending: Vec<Pending> = Vec::new();
        let mut scratch: Vec<Expr> = Vec::with_capacity(16);
        let capacity = if self.last_rules == 0 && !chain_msgs.is_empty() {
            // First snapshot: count the rules first (a dump that decodes nothing), so the
            // rule vector is allocated once; growing it by doubling would briefly hold two
            // copies of it, the largest transient at 50k rules.
            let mut n = 0usize;
            for c in &chain_msgs {
                let family = c.family.unwrap_or(Family::Other(0));
                let (t, nm) = (decode::cstr(&c.table), decode::cstr(&c.name));
                let res = self.sock.request(
                    "GETRULE (count)",
                    s::NFT_MSG_GETRULE as u16,
                    true,
                    family.to_raw(),
                    &[(s::NFTA_RULE_TABLE, &t), (s::NFTA_RULE_CHAIN, &nm)],
                    |_| {
                        n += 1;
                        Ok(())
                    },
                );
                stats.requests += 1;
                match res {
                    Ok(_) => {}
                    Err(e) if kernel_errno(&e) == Some(ENOENT) => interrupted = true,
                    Err(e) => return Err(e),
                }
            }
            n + n / 32 + 16
        } else {
            self.last_rules + self.last_rules / 32 + 16
        };
        let mut rules: Vec<Rule> = Vec::with_capacity(capacity);
        // Per chain: family, shared table name, the sets its rules may name, the request.
        let names: Vec<(Family, Arc<str>)> = chain_msgs
            .iter()
            .map(|c| {
                let family = c.family.unwrap_or(Family::Other(0));
                (family, table_name(family, &c.table))
            })
            .collect();
        let envs: Vec<Env> = names
            .iter()
            .map(|(family, table)| Env {
                sets: shapes.get(&(*family, table.clone())),
                ifnames: &ifnames,
            })
            .collect();
        let mut store = String::new();
        let mut vanished: Option<usize> = None;
        let mut writers: Option<HashSet<WriterKey>> = Some(HashSet::new());
        let mut written: Vec<String> = Vec::new();
        let mut feed = |i: usize, item: Feed<'_>| -> Result<ControlFlow<()>, NftError> {
            let (family, table) = &names[i];
            let res = match item {
                Feed::Msg(payload) => {
                    let p = build_rule(
                        payload,
                        *family,
                        &envs[i],
                        &mut store,
                        &mut scratch,
                        &mut written,
                    );
                    // A rule that did not decode, or a dynset that did not, might write any
                    // set: then no count is carried over at this generation.
                    if p.undecodable || written.iter().any(String::is_empty) {
                        writers = None;
                    }
                    if let Some(w) = writers.as_mut() {
                        for set in written.drain(..) {
                            w.insert((*family, table.clone(), set));
                        }
                    }
                    written.clear();
                    pending.push(p);
                    return Ok(ControlFlow::Continue(()));
                }
                Feed::End(res) => res,
            };
            stats.requests += 1;
            match res {
                Ok(end) => interrupted |= end.interrupted,
                Err(e) if kernel_errno(&e) == Some(ENOENT) => {
                    vanished = Some(i);
                    return Ok(ControlFlow::Break(()));
                }
                Err(e) => return Err(e),
            }
            let c = &chain_msgs[i];
            let family = *family;
            let name: Arc<str> = c.name.as_str().into();
            let hook = c.hook.map(|(num, priority)| Hook {
                name: family
                    .hook_name(num)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("hook{num}")),
                priority,
                chain_type: c.chain_type.clone().unwrap_or_else(|| "filter".into()),
                policy: match c.policy {
                    Some(0) => "drop".into(),
                    _ => "accept".into(),
                },
                device: c.device.clone(),
            });
            // The chain's text is allocated once, at its exact size: growing each chain's
            // store by doubling and shrinking it afterwards left holes in the heap between
            // the long-lived texts (about 0.5 MiB more peak at 50k rules). `store` is
            // scratch, kept at the largest chain's size.
            let text = String::from(store.as_str());
            store.clear();
            let ct = Arc::new(ChainText::new(family, table.clone(), name.clone(), text));
            let count = pending.len() as u32;
            for (i, p) in pending.drain(..).enumerate() {
                let mut r = Rule::new(ct.clone(), p.at, p.handle, i as u32);
                r.text_exact = p.exact;
                r.undecodable = p.undecodable;
                r.has_counter = p.counter.is_some();
                r.counter = p.counter.unwrap_or_default();
                r.counter_refs = p.refs;
                rules.push(r);
            }
            chains.push(Chain {
                family,
                table: table.clone(),
                name,
                handle: c.handle,
                hook,
                rule_count: count,
                comment: c.comment.clone(),
            });
            Ok(ControlFlow::Continue(()))
        };
        dump_rules(&mut self.sock, &chain_msgs, &names, &mut feed)?;
        // Only a complete listing says which sets no rule writes.
        self.writers = match vanished {
            None => writers.map(|w| (gen0, w)),
            Some(_) => None,
        };
        if let Some(i) = vanished {
            let c = &chain_msgs[i];
            return Ok(Attempt::Vanished {
                family: names[i].0,
                table: c.table.clone(),
                chain: c.name.clone(),
            });
        }
        rules.shrink_to_fit();
        self.last_rules = rules.len();

        // The generation after: every answer message carries the low 16 bits of the
        // generation current when the kernel filled it, and the generation only grows. So
        // when the last message of the last dump still shows `gen0`, no commit happened since
        // `gen0` was read (short of exactly 65536 commits within one snapshot) and asking
        // again is not needed. An empty last dump (no message) tells nothing: ask.
        let gen1 = match self.sock.last_res_id {
            Some(r) if r == gen0 as u16 => gen0,
            _ => self.generation()?,
        };
        let (bytes1, msgs1) = self.received();
        stats.bytes = bytes1 - bytes0;
        stats.messages = msgs1 - msgs0;
        let consistent = gen0 == gen1 && !interrupted;
        Ok(Attempt::Done(
            RulesetSnapshot {
                generation: gen1,
                tables,
                chains,
                rules,
                sets,
                objects,
                warnings,
                stats,
            },
            consistent,
        ))
    }
}

/// What the rule dumps hand to the snapshot, chain by chain (by index): each rule message's
/// payload, then how the chain's dump ended.
enum Feed<'a> {
    Msg(&'a [u8]),
    End(Result<socket::DumpEnd, NftError>),
}

type FeedFn<'f> = dyn FnMut(usize, Feed<'_>) -> Result<ControlFlow<()>, NftError> + 'f;

/// Dumps every chain's rules in order (each with its own family), feeding them to `feed`;
/// stops when it breaks.
fn dump_rules(
    sock: &mut NftSocket,
    chains: &[ChainMsg],
    names: &[(Family, Arc<str>)],
    feed: &mut FeedFn<'_>,
) -> Result<(), NftError> {
    for (i, (c, (family, _))) in chains.iter().zip(names).enumerate() {
        let (t, n) = (decode::cstr(&c.table), decode::cstr(&c.name));
        let res = sock.request(
            &format!("GETRULE {family} {} {}", c.table, c.name),
            s::NFT_MSG_GETRULE as u16,
            true,
            family.to_raw(),
            &[(s::NFTA_RULE_TABLE, &t), (s::NFTA_RULE_CHAIN, &n)],
            |m| feed(i, Feed::Msg(m.payload)).map(|_| ()),
        );
        if feed(i, Feed::End(res))?.is_break() {
            return Ok(());
        }
    }
    Ok(())
}

/// A rule of the chain being dumped, before the chain's text store is shared.
struct Pending {
    at: TextRange,
    handle: u64,
    exact: bool,
    undecodable: bool,
    counter: Option<Counter>,
    refs: Box<[Box<str>]>,
}

/// Decodes and renders one rule into the chain's text store (text, then comment); a rule
/// that does not decode is still listed, as such. `exprs` is scratch space reused per rule.
fn build_rule(
    payload: &[u8],
    family: Family,
    env: &Env<'_>,
    store: &mut String,
    exprs: &mut Vec<Expr>,
    written: &mut Vec<String>,
) -> Pending {
    match decode::decode_rule_into(payload, exprs, false) {
        Ok(head) => {
            let start = store.len() as u32;
            let exact = render::render_rule_into(family, exprs, env, store);
            let text = (start, store.len() as u32 - start);
            let comment = head.comment.as_deref().map(|c| {
                let at = store.len() as u32;
                store.push_str(c);
                (at, c.len() as u32)
            });
            let mut counter: Option<Counter> = None;
            let mut refs: Vec<Box<str>> = Vec::new();
            for e in exprs.iter() {
                match e {
                    Expr::Counter { packets, bytes } => {
                        let c = counter.get_or_insert_with(Counter::default);
                        c.packets += packets;
                        c.bytes += bytes;
                    }
                    Expr::Objref { kind, name } if *kind == s::NFT_OBJECT_COUNTER => {
                        refs.push(Box::from(name.as_str()));
                    }
                    Expr::Dynset { set, .. } => written.push(set.clone()),
                    // A dynset that did not decode writes some set: an empty name says so.
                    Expr::Undecodable { name, .. } if name == "dynset" => {
                        written.push(String::new());
                    }
                    _ => {}
                }
            }
            Pending {
                at: TextRange { text, comment },
                handle: head.handle,
                exact,
                undecodable: false,
                counter,
                refs: refs.into_boxed_slice(),
            }
        }
        Err(e) => Pending {
            at: push_text(store, &format!("<undecodable rule: {e}>"), None),
            handle: 0,
            exact: false,
            undecodable: true,
            counter: None,
            refs: Box::default(),
        },
    }
}

impl RulesetSource for NftSource {
    fn snapshot(&mut self, now: Instant) -> Result<RulesetSnapshot, NftError> {
        let mut last_vanished = None;
        for attempt in 1..=ATTEMPTS {
            match self.attempt(now)? {
                Attempt::Done(mut snap, consistent) => {
                    snap.stats.attempts = attempt;
                    if consistent {
                        return Ok(snap);
                    }
                    if attempt == ATTEMPTS {
                        snap.warnings.push(format!(
                            "the ruleset kept changing while it was read ({ATTEMPTS} attempts); counters may mix two generations"
                        ));
                        return Ok(snap);
                    }
                }
                Attempt::Vanished {
                    family,
                    table,
                    chain,
                } => last_vanished = Some((family, table, chain)),
            }
        }
        let (family, table, chain) =
            last_vanished.unwrap_or((Family::Other(0), String::new(), String::new()));
        Err(NftError::Vanished {
            family,
            table,
            chain,
            attempts: ATTEMPTS,
        })
    }

    fn set_elements(
        &mut self,
        family: Family,
        table: &str,
        set: &str,
    ) -> Result<SetElements, NftError> {
        let (t, n) = (decode::cstr(table), decode::cstr(set));
        let mut msg = None;
        let mut bad = None;
        let res = self.sock.request(
            "GETSET",
            s::NFT_MSG_GETSET as u16,
            false,
            family.to_raw(),
            &[(s::NFTA_SET_TABLE, &t), (s::NFTA_SET_NAME, &n)],
            |m| {
                match decode::decode_set(m.payload) {
                    Ok(sm) => msg = Some(sm),
                    Err(e) => bad = Some(e),
                }
                Ok(())
            },
        );
        let nosuch = || NftError::NoSuchSet {
            family,
            table: table.to_string(),
            set: set.to_string(),
        };
        match res {
            Ok(_) => {}
            Err(e) if kernel_errno(&e) == Some(ENOENT) => return Err(nosuch()),
            Err(e) => return Err(e),
        }
        if let Some(e) = bad {
            return Err(NftError::Decode {
                what: "GETSET".into(),
                detail: e.to_string(),
            });
        }
        let m = msg.ok_or_else(nosuch)?;
        let mut raw = Vec::new();
        match self.dump_elements(family, table, set, &mut raw) {
            Ok(_) => {}
            Err(e) if kernel_errno(&e) == Some(ENOENT) => return Err(nosuch()),
            Err(e) => return Err(e),
        }
        let ifn = Ifnames::new();
        let env = Env {
            sets: None,
            ifnames: &ifn,
        };
        let elements: Vec<_> = render::render_elements(&m.shape, &raw, &env)
            .into_iter()
            .map(|(e, _)| e)
            .collect();
        let count = elements.len() as u64;
        Ok(SetElements {
            set: set_info(&m, table.into(), Some(count), CountFreshness::Fresh),
            elements,
        })
    }

    fn subscribe(&mut self) -> Result<(), NftError> {
        if self.events.is_none() {
            self.events = Some(NftEvents::open()?);
        }
        Ok(())
    }

    fn wait_for_change(&mut self, timeout: Duration) -> Result<bool, NftError> {
        if self.events.is_none() {
            self.events = Some(NftEvents::open()?);
        }
        match self.events.as_mut() {
            Some(ev) => ev.wait(timeout),
            None => Ok(false),
        }
    }
}
