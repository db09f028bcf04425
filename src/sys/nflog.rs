//! The NFLOG socket: binds nfnetlink_log groups (`log group N` rules) and hands each logged
//! packet to the caller, decoded. Byte layouts live in `drops::nflog`; this file only opens,
//! configures and reads the socket.
//!
//! Bursts: the kernel drops a batch when our receive buffer is full and `recv` then fails
//! with `ENOBUFS`. We ask for a large buffer (`SO_RCVBUFFORCE`, falling back to `SO_RCVBUF`)
//! and for per-group sequence numbers, so each gap is counted exactly as lost packets, and
//! carry on.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{
    bind, recv, send, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};
use nix::sys::time::TimeVal;

use crate::drops::nflog::{
    self as wire, Message, NflogDecodeError, Packet, NFULA_CFG_CMD, NFULA_CFG_FLAGS,
    NFULA_CFG_MODE, NFULA_CFG_NLBUFSIZ, NFULA_CFG_QTHRESH, NFULA_CFG_TIMEOUT, NFULNL_CFG_CMD_BIND,
    NFULNL_CFG_CMD_PF_BIND, NFULNL_CFG_CMD_UNBIND, NFULNL_CFG_F_SEQ, NFULNL_COPY_PACKET,
};
use crate::drops::{DropEvent, IfName};

/// How to bind.
#[derive(Debug, Clone)]
pub struct NflogOptions {
    /// The groups of the ruleset's `log group N` rules (config `drops.nflog_groups`).
    pub groups: Vec<u16>,
    /// Bytes of each packet copied to us, from the network header on. 256 holds an IPv4
    /// header with options or an IPv6 header with a few extension headers, plus TCP with
    /// options; more only costs buffer space.
    pub copy_range: u32,
    /// Socket receive buffer to ask for, in bytes.
    pub rcvbuf: usize,
    /// Kernel batch size (`NFULA_CFG_NLBUFSIZ`); our read buffer is twice this.
    pub nlbufsiz: u32,
    /// Longest the kernel holds a batch, in 1/100 s (`NFULA_CFG_TIMEOUT`).
    pub flush_timeout_cs: u32,
    /// Most packets in one batch (`NFULA_CFG_QTHRESH`).
    pub qthresh: u32,
    /// Also send `NFULNL_CFG_CMD_PF_BIND` for IPv4, IPv6 and bridge. Only kernels before 3.17
    /// (or a netns where another logger was bound) need it; it makes nfnetlink_log the
    /// netns' default logger, so leave it off unless `log group` packets do not arrive.
    pub pf_bind: bool,
    /// How long one [`NflogSocket::recv`] waits before returning with nothing.
    pub read_timeout: Duration,
}

impl Default for NflogOptions {
    fn default() -> Self {
        NflogOptions {
            groups: vec![1],
            copy_range: 256,
            rcvbuf: 8 << 20,
            nlbufsiz: 64 << 10,
            flush_timeout_cs: 10,
            qthresh: 64,
            pf_bind: false,
            read_timeout: Duration::from_millis(500),
        }
    }
}

/// Why NFLOG could not be set up or read.
#[derive(Debug, thiserror::Error)]
pub enum NflogError {
    /// The netlink socket could not be created (no `CONFIG_NETFILTER_NETLINK` kernel
    /// support, or a seccomp filter).
    #[error("cannot open a NETLINK_NETFILTER socket")]
    Socket(#[source] Errno),
    /// Binding the netlink socket itself failed.
    #[error("cannot bind the netlink socket")]
    Bind(#[source] Errno),
    /// Setting a socket option (receive buffer, timeout) failed.
    #[error("cannot set socket option {option}")]
    SockOpt {
        option: &'static str,
        #[source]
        source: Errno,
    },
    /// Sending a config request failed.
    #[error("cannot send the NFLOG config request for group {group}")]
    Send {
        group: u16,
        #[source]
        source: Errno,
    },
    /// The kernel refused a config request. EPERM: another program (ulogd, another
    /// pirouterd) has bound this group in this network namespace (stop it or pick another
    /// group), or pirouterd lacks CAP_NET_ADMIN. ENOENT/EOPNOTSUPP: no nfnetlink_log support
    /// (`modprobe nfnetlink_log`).
    #[error("the kernel refused to {what} NFLOG group {group}{hint}")]
    Refused {
        group: u16,
        what: &'static str,
        /// What to check, from the errno.
        hint: &'static str,
        #[source]
        source: Errno,
    },
    /// No answer to a config request.
    #[error("no answer from the kernel to the NFLOG config request for group {group}")]
    NoAnswer { group: u16 },
    /// Reading failed for a reason other than a full buffer or the read timeout.
    #[error("cannot read from the NFLOG socket")]
    Recv(#[source] Errno),
    /// The kernel sent bytes we could not decode.
    #[error("malformed NFLOG message")]
    Decode(#[from] NflogDecodeError),
}

/// What one [`NflogSocket::recv`] call saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecvStats {
    /// Packet records handed to the callback.
    pub packets: u64,
    /// Packets the kernel logged that never reached us (sequence gaps).
    pub lost: u64,
    /// The read failed with ENOBUFS (the kernel dropped at least one batch).
    pub overrun: bool,
}

/// A bound NFLOG socket.
pub struct NflogSocket {
    fd: OwnedFd,
    buf: Vec<u8>,
    groups: Vec<u16>,
    seq: u32,
    /// Next expected per-group sequence number.
    expect: HashMap<u16, u32>,
    names: IfNames,
    /// ENOBUFS seen since open.
    pub overruns: u64,
    /// Packets lost since open (sequence gaps).
    pub lost: u64,
}

fn sockopt_err(option: &'static str) -> impl Fn(Errno) -> NflogError {
    move |source| NflogError::SockOpt { option, source }
}

impl NflogSocket {
    /// Opens a socket in the calling thread's network namespace and binds `opts.groups`.
    pub fn open(opts: &NflogOptions) -> Result<NflogSocket, NflogError> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkNetFilter,
        )
        .map_err(NflogError::Socket)?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(NflogError::Bind)?;
        // Root or CAP_NET_ADMIN may exceed net.core.rmem_max; otherwise take what we get.
        if setsockopt(&fd, sockopt::RcvBufForce, &opts.rcvbuf).is_err() {
            setsockopt(&fd, sockopt::RcvBuf, &opts.rcvbuf).map_err(sockopt_err("SO_RCVBUF"))?;
        }
        let tv = TimeVal::new(
            opts.read_timeout.as_secs() as _,
            opts.read_timeout.subsec_micros() as _,
        );
        setsockopt(&fd, sockopt::ReceiveTimeout, &tv).map_err(sockopt_err("SO_RCVTIMEO"))?;
        let mut s = NflogSocket {
            fd,
            buf: vec![0u8; (opts.nlbufsiz as usize * 2).max(64 << 10)],
            groups: Vec::new(),
            seq: 0,
            expect: HashMap::new(),
            names: IfNames::default(),
            overruns: 0,
            lost: 0,
        };
        if opts.pf_bind {
            for pf in [libc_af::INET, libc_af::INET6, libc_af::BRIDGE] {
                s.request(
                    0,
                    pf,
                    "bind the protocol family for",
                    &[(NFULA_CFG_CMD, &[NFULNL_CFG_CMD_PF_BIND])],
                )?;
            }
        }
        let mode = wire::mode_value(NFULNL_COPY_PACKET, opts.copy_range);
        let nlbufsiz = opts.nlbufsiz.to_be_bytes();
        let timeout = opts.flush_timeout_cs.to_be_bytes();
        let qthresh = opts.qthresh.to_be_bytes();
        let flags = NFULNL_CFG_F_SEQ.to_be_bytes();
        for &group in &opts.groups {
            s.request(group, 0, "bind", &[(NFULA_CFG_CMD, &[NFULNL_CFG_CMD_BIND])])?;
            s.groups.push(group);
            s.request(
                group,
                0,
                "configure",
                &[
                    (NFULA_CFG_MODE, &mode),
                    (NFULA_CFG_NLBUFSIZ, &nlbufsiz),
                    (NFULA_CFG_TIMEOUT, &timeout),
                    (NFULA_CFG_QTHRESH, &qthresh),
                    (NFULA_CFG_FLAGS, &flags),
                ],
            )?;
        }
        Ok(s)
    }

    /// The groups bound.
    pub fn groups(&self) -> &[u16] {
        &self.groups
    }

    /// Sends one config request and waits for its acknowledgement. Packet records that
    /// arrive meanwhile (an earlier group already bound) are counted as lost, not dropped
    /// silently.
    fn request(
        &mut self,
        group: u16,
        family: u8,
        what: &'static str,
        attrs: &[(u16, &[u8])],
    ) -> Result<(), NflogError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let msg = wire::config_request(seq, family, group, attrs);
        send(self.fd.as_raw_fd(), &msg, MsgFlags::empty())
            .map_err(|source| NflogError::Send { group, source })?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let n = match recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::empty()) {
                Ok(n) => n,
                Err(Errno::EAGAIN | Errno::EINTR) => continue,
                Err(Errno::ENOBUFS) => {
                    self.overruns += 1;
                    continue;
                }
                Err(e) => return Err(NflogError::Recv(e)),
            };
            for m in wire::messages(&self.buf[..n]) {
                match wire::decode(&m?)? {
                    Message::Ack { seq: s, errno } if s == seq => {
                        return if errno == 0 {
                            Ok(())
                        } else {
                            let source = Errno::from_raw(errno);
                            Err(NflogError::Refused {
                                group,
                                what,
                                hint: refusal_hint(source),
                                source,
                            })
                        };
                    }
                    Message::Packet(_) => self.lost += 1,
                    _ => {}
                }
            }
        }
        Err(NflogError::NoAnswer { group })
    }

    /// Waits up to the read timeout for one batch and calls `f` with each packet record.
    /// ENOBUFS is counted and reported, not an error: the caller just calls again.
    pub fn recv_packets(
        &mut self,
        mut f: impl FnMut(&Packet<'_>),
    ) -> Result<RecvStats, NflogError> {
        let mut stats = RecvStats::default();
        let n = match recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::empty()) {
            Ok(n) => n,
            Err(Errno::EAGAIN | Errno::EINTR) => return Ok(stats),
            Err(Errno::ENOBUFS) => {
                self.overruns += 1;
                stats.overrun = true;
                return Ok(stats);
            }
            Err(e) => return Err(NflogError::Recv(e)),
        };
        for m in wire::messages(&self.buf[..n]) {
            if let Message::Packet(p) = wire::decode(&m?)? {
                if let Some(seq) = p.seq {
                    let expected = self.expect.insert(p.group, seq.wrapping_add(1));
                    if let Some(e) = expected {
                        let gap = seq.wrapping_sub(e);
                        // A huge "gap" is a counter reset (group rebound), not a loss.
                        if gap > 0 && gap < u32::MAX / 2 {
                            stats.lost += u64::from(gap);
                        }
                    }
                }
                stats.packets += 1;
                f(&p);
            }
        }
        self.lost += stats.lost;
        Ok(stats)
    }

    /// [`NflogSocket::recv_packets`], with each record decoded into a [`DropEvent`] (interface
    /// indexes resolved to names in this thread's network namespace).
    pub fn recv_events(
        &mut self,
        mut f: impl FnMut(&DropEvent<'_>),
    ) -> Result<RecvStats, NflogError> {
        let mut names = std::mem::take(&mut self.names);
        let r = self.recv_packets(|p| {
            let ev = p.to_event(&mut |i| names.get(i));
            f(&ev);
        });
        self.names = names;
        r
    }

    /// Unbinds the groups (the kernel also does this when the socket closes).
    pub fn close(mut self) {
        for g in std::mem::take(&mut self.groups) {
            let _ = self.request(g, 0, "unbind", &[(NFULA_CFG_CMD, &[NFULNL_CFG_CMD_UNBIND])]);
        }
    }
}

fn refusal_hint(e: Errno) -> &'static str {
    match e {
        Errno::EPERM => {
            " (another program such as ulogd may have bound it, or pirouterd lacks CAP_NET_ADMIN)"
        }
        Errno::ENOENT | Errno::EOPNOTSUPP => {
            " (is nfnetlink_log available? modprobe nfnetlink_log)"
        }
        _ => "",
    }
}

/// Protocol family numbers (`AF_*`) as nfgenmsg wants them.
mod libc_af {
    pub const INET: u8 = 2;
    pub const INET6: u8 = 10;
    pub const BRIDGE: u8 = 7;
}

/// ifindex -> name, cached, refreshed every 30 s (interfaces come and go: PPP, VPNs).
#[derive(Default)]
struct IfNames {
    map: HashMap<u32, IfName>,
    since: Option<Instant>,
}

impl IfNames {
    fn get(&mut self, index: u32) -> Option<IfName> {
        let now = Instant::now();
        if self
            .since
            .is_none_or(|t| now.duration_since(t) > Duration::from_secs(30))
        {
            self.map.clear();
            self.since = Some(now);
        }
        if let Some(n) = self.map.get(&index) {
            return Some(*n);
        }
        let name = nix::net::if_::if_indextoname(index).ok()?;
        let name = IfName::new(&name.to_string_lossy());
        // Bounded: a netns has few interfaces, but never let this grow without limit.
        if self.map.len() < 1024 {
            self.map.insert(index, name);
        }
        Some(name)
    }
}
