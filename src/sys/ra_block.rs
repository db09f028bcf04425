//! The RA block in the kernel: the daemon's own `table inet pirouterd`, created with
//! `flags owner` on a netlink socket kept open for the daemon's life. A foreign
//! `nft flush ruleset` skips an owned table, nobody else can change it, and the kernel deletes
//! it when the socket closes, so a crash never leaves a stale block.
//!
//! Where the kernel has no owner tables (before 5.12: `EOPNOTSUPP`), the table is created
//! without the flag and a thread watches ruleset events (`NFNLGRP_NFTABLES`), re-applying the
//! table when someone flushes it while the block is wanted.
//!
//! Every change is a [`RaBlockPlan`]; [`NftRaBlocker::apply`] is the one place that turns a
//! plan into a netlink batch (built with rustables, sent on our socket) and logs its text.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{
    bind, recv, send, sendto, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr,
    SockFlag, SockProtocol, SockType, SockaddrIn6,
};
use rustables::expr::{Cmp, CmpOp, Counter, Meta, MetaType, Payload, Register};
use rustables::{Batch, Chain, ChainPolicy, ChainType, Hook, HookClass, MsgType, ProtocolFamily};
use rustables::{Rule, Table};

use crate::firewall::expr::Expr;
use crate::firewall::Family;
use crate::sys::nft::decode;
use crate::wan::plan::{RaBlockPlan, RaBlockSpec};
use crate::wan::ra::RouterAdvert;
use crate::wan::rtnl;
use crate::wan::{DropCounter, RaBlocker};

const NFT_TABLE_F_OWNER: u32 = 0x2;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_GETRULE: u16 = 7;
const NFNLGRP_NFTABLES: u32 = 7;
const NFPROTO_IPV6: u8 = 10;
const IPPROTO_ICMPV6: u8 = 58;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const EOPNOTSUPP: i32 = 95;
const ENOENT: i32 = 2;
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the RA block could not be applied or read.
#[derive(Debug, thiserror::Error)]
pub enum RaBlockError {
    /// The nftables netlink socket could not be opened (needs CAP_NET_ADMIN and nf_tables).
    #[error("cannot open an nftables netlink socket: does pirouterd have CAP_NET_ADMIN?")]
    Open {
        #[source]
        source: Errno,
    },
    /// Building the batch failed (a name rustables refused).
    #[error("cannot build the nftables batch: {0}")]
    Build(String),
    /// Sending the batch or a request failed.
    #[error("cannot send {what} to nftables")]
    Send {
        what: &'static str,
        #[source]
        source: Errno,
    },
    /// Receiving the kernel's answer failed.
    #[error("cannot receive the nftables answer to {what}")]
    Recv {
        what: &'static str,
        #[source]
        source: Errno,
    },
    /// The kernel refused the change. EPERM: another process owns a table of this name;
    /// EEXIST/EOPNOTSUPP: a table `inet pirouterd` exists that is not ours (delete it);
    /// ENOENT: the nf_tables module or the needed expressions are missing.
    #[error("nftables refused `{plan}`: errno {errno} ({})", Errno::from_raw(*errno).desc())]
    Refused { plan: String, errno: i32 },
    /// No answer in time.
    #[error("no nftables answer to {what} within {timeout:?}")]
    Timeout {
        what: &'static str,
        timeout: Duration,
    },
    /// The final RA could not be sent on a LAN interface: the raw ICMPv6 socket needs
    /// CAP_NET_RAW (EPERM without it), and the interface must exist (ENODEV) and be up with a
    /// link-local address (EADDRNOTAVAIL).
    #[error(
        "cannot send the final router advertisement on {interface} (needs CAP_NET_RAW, and \
         the interface up with a link-local address)"
    )]
    FinalRa {
        interface: String,
        #[source]
        source: Errno,
    },
}

/// Options for [`NftRaBlocker`].
#[derive(Debug, Clone)]
pub struct RaBlockOptions {
    /// Table, chain, priority and exemption mark. `owner` is the wish; the kernel decides.
    pub spec: RaBlockSpec,
    /// LAN interfaces that get one RA with router lifetime 0 when the block engages
    /// (`wan.final_ra_interfaces`; empty: none). Needs `spec.exempt_mark`.
    pub final_ra_interfaces: Vec<String>,
}

/// State shared with the re-apply thread (kernels without owner tables).
struct Shared {
    wanted: bool,
}

struct Reapplier {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Reapplier {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The real [`RaBlocker`]. Dropping it closes the socket, and the kernel removes an owned
/// table with it; an unowned table (old kernels) is deleted explicitly in `Drop`.
pub struct NftRaBlocker {
    opts: RaBlockOptions,
    /// The socket that owns the table. Kept open for the blocker's life on purpose.
    sock: Arc<Mutex<OwnedFd>>,
    blocked: bool,
    released: DropCounter,
    shared: Arc<Mutex<Shared>>,
    reapplied: Arc<AtomicU64>,
    reapplier: Option<Reapplier>,
    final_ra: Option<Result<usize, String>>,
}

impl NftRaBlocker {
    /// Opens the socket the table will belong to. Nothing is applied yet.
    pub fn open(opts: RaBlockOptions) -> Result<NftRaBlocker, RaBlockError> {
        let sock = nft_socket(0)?;
        let mut b = NftRaBlocker {
            opts,
            sock: Arc::new(Mutex::new(sock)),
            blocked: false,
            released: DropCounter::default(),
            shared: Arc::new(Mutex::new(Shared { wanted: false })),
            reapplied: Arc::new(AtomicU64::new(0)),
            reapplier: None,
            final_ra: None,
        };
        if !b.opts.spec.owner {
            b.start_reapplier()?;
        }
        Ok(b)
    }

    /// Whether the table is created with `flags owner` (false after a fallback).
    pub fn owner(&self) -> bool {
        self.opts.spec.owner
    }

    /// How often the re-apply thread restored the table after a foreign flush.
    pub fn reapplied(&self) -> u64 {
        self.reapplied.load(Ordering::Relaxed)
    }

    /// The outcome of the last final RA (interfaces sent to, or why not); `None` before the
    /// first engagement or when no LAN interfaces are configured.
    pub fn last_final_ra(&self) -> Option<&Result<usize, String>> {
        self.final_ra.as_ref()
    }

    /// The plan that engages the block with the current options.
    pub fn engage_plan(&self) -> RaBlockPlan {
        RaBlockPlan::Engage(self.opts.spec.clone())
    }

    /// Applies one plan as one batch on the kept socket, logging its text.
    pub fn apply(&self, plan: &RaBlockPlan) -> Result<(), RaBlockError> {
        let sock = self.sock.lock().unwrap_or_else(|p| p.into_inner());
        apply_on(&sock, plan)?;
        log::info!("nftables: {plan}");
        Ok(())
    }

    fn engage(&mut self) -> Result<(), RaBlockError> {
        let plan = self.engage_plan();
        match self.apply(&plan) {
            Err(RaBlockError::Refused { errno, .. })
                if errno == EOPNOTSUPP && self.opts.spec.owner =>
            {
                log::warn!(
                    "this kernel has no owner tables (5.12+); creating table inet {} without \
                     them and re-applying it after foreign ruleset flushes",
                    self.opts.spec.table
                );
                self.opts.spec.owner = false;
                self.start_reapplier()?;
                self.apply(&self.engage_plan())
            }
            other => other,
        }
    }

    fn start_reapplier(&mut self) -> Result<(), RaBlockError> {
        if self.reapplier.is_some() {
            return Ok(());
        }
        // Both sockets are opened here, on the caller's thread, so they live in its network
        // namespace whatever the new thread does.
        let events = nft_socket(1 << (NFNLGRP_NFTABLES - 1))?;
        let _ = setsockopt(
            &events,
            sockopt::ReceiveTimeout,
            &nix::sys::time::TimeVal::new(0, 300_000),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let ctx = ReapplyCtx {
            events,
            sock: Arc::clone(&self.sock),
            shared: Arc::clone(&self.shared),
            spec: self.opts.spec.clone(),
            stop: Arc::clone(&stop),
            reapplied: Arc::clone(&self.reapplied),
        };
        let handle = std::thread::Builder::new()
            .name("ra-block-reapply".into())
            .spawn(move || ctx.run())
            .map_err(|e| RaBlockError::Build(format!("cannot start the re-apply thread: {e}")))?;
        self.reapplier = Some(Reapplier {
            stop,
            handle: Some(handle),
        });
        Ok(())
    }

    /// Sends the RFC 7084 final RA (router lifetime 0) on every configured LAN interface.
    /// Returns how many were sent; the first failure is returned after trying all.
    pub fn send_final_ra(&self) -> Result<usize, RaBlockError> {
        let Some(mark) = self.opts.spec.exempt_mark else {
            return Ok(0);
        };
        let mut sent = 0;
        let mut first_err = None;
        for ifname in &self.opts.final_ra_interfaces {
            match send_ra(ifname, mark, &RouterAdvert::withdraw()) {
                Ok(()) => {
                    sent += 1;
                    log::info!("sent router advertisement with lifetime 0 on {ifname}");
                }
                Err(e) => {
                    log::warn!("{e}");
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(sent),
        }
    }

    fn read_counter(&self) -> Result<DropCounter, RaBlockError> {
        let sock = self.sock.lock().unwrap_or_else(|p| p.into_inner());
        rule_counters(&sock, &self.opts.spec)
    }
}

impl RaBlocker for NftRaBlocker {
    type Error = RaBlockError;

    fn set_blocked(&mut self, blocked: bool) -> Result<(), RaBlockError> {
        if blocked == self.blocked {
            return Ok(());
        }
        let shared = Arc::clone(&self.shared);
        let mut guard = shared.lock().unwrap_or_else(|p| p.into_inner());
        if blocked {
            self.engage()?;
            self.blocked = true;
            guard.wanted = true;
            drop(guard);
            // After the block, not before: an RA from the RA daemon in between would
            // re-announce the route; ours passes the drop by its mark.
            let sent = self.send_final_ra();
            if let Err(e) = &sent {
                log::warn!("RA block engaged, but the final RA failed: {e}");
            }
            if !self.opts.final_ra_interfaces.is_empty() {
                self.final_ra = Some(sent.map_err(|e| e.to_string()));
            }
        } else {
            // Keep what this engagement counted: the counter dies with the table.
            if let Ok(c) = self.read_counter() {
                self.released.packets += c.packets;
                self.released.bytes += c.bytes;
            }
            guard.wanted = false;
            let plan = RaBlockPlan::Release(self.opts.spec.clone());
            match self.apply(&plan) {
                Ok(()) => {}
                // already gone (a foreign flush on an old kernel): released all the same
                Err(RaBlockError::Refused { errno, .. }) if errno == ENOENT => {}
                Err(e) => {
                    guard.wanted = true;
                    return Err(e);
                }
            }
            self.blocked = false;
        }
        Ok(())
    }

    fn is_blocked(&self) -> bool {
        self.blocked
    }

    fn dropped(&mut self) -> Result<DropCounter, RaBlockError> {
        let now = if self.blocked {
            self.read_counter()?
        } else {
            DropCounter::default()
        };
        Ok(DropCounter {
            packets: self.released.packets + now.packets,
            bytes: self.released.bytes + now.bytes,
        })
    }
}

impl Drop for NftRaBlocker {
    fn drop(&mut self) {
        self.reapplier = None; // stop the thread first so it cannot re-apply
        if self.blocked && !self.opts.spec.owner {
            let _ = self.apply(&RaBlockPlan::Release(self.opts.spec.clone()));
        }
    }
}

struct ReapplyCtx {
    events: OwnedFd,
    sock: Arc<Mutex<OwnedFd>>,
    shared: Arc<Mutex<Shared>>,
    spec: RaBlockSpec,
    stop: Arc<AtomicBool>,
    reapplied: Arc<AtomicU64>,
}

impl ReapplyCtx {
    fn run(self) {
        let mut buf = vec![0u8; 64 * 1024];
        while !self.stop.load(Ordering::SeqCst) {
            match recv(self.events.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                // any ruleset change (or lost events): check our table
                Ok(_) | Err(Errno::ENOBUFS) => {}
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
                Err(e) => {
                    log::warn!("nftables event socket failed ({e}); RA block re-apply stopped");
                    return;
                }
            }
            let shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
            if !shared.wanted {
                continue;
            }
            let sock = self.sock.lock().unwrap_or_else(|p| p.into_inner());
            match table_exists(&sock, &self.spec.table) {
                Ok(true) => {}
                Ok(false) => {
                    let plan = RaBlockPlan::Engage(self.spec.clone());
                    match apply_on(&sock, &plan) {
                        Ok(()) => {
                            self.reapplied.fetch_add(1, Ordering::Relaxed);
                            log::warn!(
                                "table inet {} was flushed by someone else; re-applied: {plan}",
                                self.spec.table
                            );
                        }
                        Err(e) => log::warn!("cannot re-apply the RA block: {e}"),
                    }
                }
                Err(e) => log::warn!("cannot check table inet {}: {e}", self.spec.table),
            }
        }
    }
}

fn nft_socket(groups: u32) -> Result<OwnedFd, RaBlockError> {
    let sock = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkNetFilter,
    )
    .map_err(|source| RaBlockError::Open { source })?;
    bind(sock.as_raw_fd(), &NetlinkAddr::new(0, groups))
        .map_err(|source| RaBlockError::Open { source })?;
    Ok(sock)
}

/// Builds the batch for a plan. Returns the bytes and the sequence number of its last object.
fn build_batch(plan: &RaBlockPlan) -> Result<(Vec<u8>, u32), RaBlockError> {
    let spec = plan.spec();
    let table = Table::new(ProtocolFamily::Inet).with_name(spec.table.as_str());
    let mut batch = Batch::new();
    let mut objects = 0u32;
    match plan {
        RaBlockPlan::Release(_) => {
            batch.add(&table, MsgType::Del);
            objects += 1;
        }
        RaBlockPlan::Engage(_) => {
            let flags = if spec.owner { NFT_TABLE_F_OWNER } else { 0 };
            let table = table.with_flags(flags);
            batch.add(&table, MsgType::Add);
            batch.add(&table, MsgType::Del);
            batch.add(&table, MsgType::Add);
            let chain = Chain::new(&table)
                .with_name(spec.chain.as_str())
                .with_hook(Hook::new(HookClass::Out, spec.priority))
                .with_type(ChainType::Filter)
                .with_policy(ChainPolicy::Accept);
            batch.add(&chain, MsgType::Add);
            objects += 4;
            let err = |e: rustables::error::BuilderError| RaBlockError::Build(e.to_string());
            if let Some(mark) = spec.exempt_mark {
                // meta mark MARK accept
                let rule = Rule::new(&chain)
                    .map_err(err)?
                    .with_expr(Meta::new(MetaType::Mark))
                    .with_expr(Cmp::new(CmpOp::Eq, mark.to_ne_bytes()))
                    .accept();
                batch.add(&rule, MsgType::Add);
                objects += 1;
            }
            // meta nfproto ipv6 meta l4proto ipv6-icmp icmpv6 type nd-router-advert counter drop
            let rule = Rule::new(&chain)
                .map_err(err)?
                .with_expr(Meta::new(MetaType::NfProto))
                .with_expr(Cmp::new(CmpOp::Eq, [NFPROTO_IPV6]))
                .with_expr(Meta::new(MetaType::L4Proto))
                .with_expr(Cmp::new(CmpOp::Eq, [IPPROTO_ICMPV6]))
                .with_expr(
                    Payload::default()
                        .with_base(NFT_PAYLOAD_TRANSPORT_HEADER)
                        .with_offset(0u32)
                        .with_len(1u32)
                        .with_dreg(Register::Reg1),
                )
                .with_expr(Cmp::new(CmpOp::Eq, [crate::wan::ra::ND_ROUTER_ADVERT]))
                .with_expr(Counter::default())
                .drop();
            batch.add(&rule, MsgType::Add);
            objects += 1;
        }
    }
    // rustables numbers the batch-begin 0 and objects from 1.
    Ok((batch.finalize(), objects))
}

/// Sends one plan's batch on `sock` and waits for every ack.
fn apply_on(sock: &OwnedFd, plan: &RaBlockPlan) -> Result<(), RaBlockError> {
    let (bytes, last_seq) = build_batch(plan)?;
    drain(sock);
    let mut sent = 0;
    while sent < bytes.len() {
        sent += send(sock.as_raw_fd(), &bytes[sent..], MsgFlags::empty()).map_err(|source| {
            RaBlockError::Send {
                what: "the batch",
                source,
            }
        })?;
    }
    let mut refused = None;
    read_until(sock, "the batch", |m| {
        if m.ty == rtnl::NLMSG_ERROR {
            match rtnl::error_code(m.payload) {
                Some(0) => return Ok(m.seq >= last_seq),
                Some(errno) => {
                    refused.get_or_insert(errno);
                    return Ok(true);
                }
                None => {}
            }
        }
        Ok(false)
    })?;
    if let Some(errno) = refused {
        drain(sock);
        return Err(RaBlockError::Refused {
            plan: plan.to_string(),
            errno,
        });
    }
    Ok(())
}

/// Discards anything left from an earlier exchange (late acks after an error).
fn drain(sock: &OwnedFd) {
    let mut buf = [0u8; 4096];
    while recv(sock.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT).is_ok() {}
}

fn read_until(
    sock: &OwnedFd,
    what: &'static str,
    mut on_msg: impl FnMut(&rtnl::NlMsg<'_>) -> Result<bool, RaBlockError>,
) -> Result<(), RaBlockError> {
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if Instant::now() >= deadline {
            return Err(RaBlockError::Timeout {
                what,
                timeout: ANSWER_TIMEOUT,
            });
        }
        let mut fds = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(sock),
            nix::poll::PollFlags::POLLIN,
        )];
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_millis() as u16;
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(left.max(1))) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(source) => return Err(RaBlockError::Recv { what, source }),
        }
        let n = match recv(sock.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
            Ok(n) => n,
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
            Err(source) => return Err(RaBlockError::Recv { what, source }),
        };
        // A malformed answer is treated like no answer: the timeout reports it.
        let Ok(msgs) = rtnl::messages(&buf[..n]) else {
            continue;
        };
        for m in &msgs {
            if on_msg(m)? {
                return Ok(());
            }
        }
    }
}

/// Whether `table inet NAME` exists (`nft list table inet NAME` succeeding): one table dump.
fn table_exists(sock: &OwnedFd, name: &str) -> Result<bool, RaBlockError> {
    drain(sock);
    let req = rustables::query::get_list_of_objects::<Table>(NFT_MSG_GETTABLE, 1, None)
        .map_err(|e| RaBlockError::Build(e.to_string()))?;
    send(sock.as_raw_fd(), &req, MsgFlags::empty()).map_err(|source| RaBlockError::Send {
        what: "NFT_MSG_GETTABLE",
        source,
    })?;
    let mut exists = false;
    read_until(sock, "NFT_MSG_GETTABLE", |m| {
        if m.ty == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE {
            if let Ok(t) = decode::decode_table(m.payload) {
                exists |= t.family == Family::Inet && t.name == name;
            }
            return Ok(false);
        }
        match m.ty {
            rtnl::NLMSG_DONE => Ok(true),
            rtnl::NLMSG_ERROR => match rtnl::error_code(m.payload) {
                Some(0) | None => Ok(false),
                Some(errno) => Err(RaBlockError::Refused {
                    plan: "list tables".into(),
                    errno,
                }),
            },
            _ => Ok(false),
        }
    })?;
    Ok(exists)
}

/// Sums the counters of our chain's rules (only the drop rule has one).
fn rule_counters(sock: &OwnedFd, spec: &RaBlockSpec) -> Result<DropCounter, RaBlockError> {
    let table = Table::new(ProtocolFamily::Inet).with_name(spec.table.as_str());
    let chain = Chain::new(&table).with_name(spec.chain.as_str());
    let rule = Rule::new(&chain).map_err(|e| RaBlockError::Build(e.to_string()))?;
    drain(sock);
    let req = rustables::query::get_list_of_objects(NFT_MSG_GETRULE, 1, Some(&rule))
        .map_err(|e| RaBlockError::Build(e.to_string()))?;
    send(sock.as_raw_fd(), &req, MsgFlags::empty()).map_err(|source| RaBlockError::Send {
        what: "NFT_MSG_GETRULE",
        source,
    })?;
    let mut total = DropCounter::default();
    read_until(sock, "NFT_MSG_GETRULE", |m| {
        if m.ty == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE {
            // The snapshot's decoder; only counter expressions matter here.
            if let Ok(r) = decode::decode_rule(m.payload) {
                if r.family == Some(Family::Inet) && r.table == spec.table && r.chain == spec.chain
                {
                    for e in &r.exprs {
                        if let Expr::Counter { packets, bytes } = e {
                            total.packets += packets;
                            total.bytes += bytes;
                        }
                    }
                }
            }
            return Ok(false);
        }
        match m.ty {
            rtnl::NLMSG_DONE => Ok(true),
            rtnl::NLMSG_ERROR => match rtnl::error_code(m.payload) {
                Some(0) | None => Ok(false),
                // the table is gone (flushed on an old kernel): nothing counted now
                Some(ENOENT) => Ok(true),
                Some(errno) => Err(RaBlockError::Refused {
                    plan: format!("list chain inet {} {}", spec.table, spec.chain),
                    errno,
                }),
            },
            _ => Ok(false),
        }
    })?;
    Ok(total)
}

/// Sends one RA to ff02::1 on `ifname` with hop limit 255 and the exemption mark.
pub fn send_ra(ifname: &str, mark: u32, ra: &RouterAdvert) -> Result<(), RaBlockError> {
    let fail = |source| RaBlockError::FinalRa {
        interface: ifname.to_string(),
        source,
    };
    let ifindex = nix::net::if_::if_nametoindex(ifname).map_err(fail)?;
    let sock = socket(
        AddressFamily::Inet6,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::IcmpV6,
    )
    .map_err(fail)?;
    setsockopt(&sock, sockopt::Mark, &mark).map_err(fail)?;
    // RFC 4861: hosts drop an RA whose hop limit is not 255 (proof it was not routed).
    setsockopt(&sock, sockopt::Ipv6MulticastHops, &255).map_err(fail)?;
    let dst = SockaddrIn6::from(std::net::SocketAddrV6::new(
        std::net::Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
        0,
        0,
        ifindex,
    ));
    sendto(sock.as_raw_fd(), &ra.to_bytes(), &dst, MsgFlags::empty()).map_err(fail)?;
    Ok(())
}
