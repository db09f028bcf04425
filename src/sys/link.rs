//! The WAN link from rtnetlink: one `RTM_GETLINK` at start, then `RTM_NEWLINK`/`RTM_DELLINK`
//! events (multicast group `RTNLGRP_LINK`), re-read periodically and whenever the kernel says
//! events were lost (`ENOBUFS`). With `check_routes`, default routes are dumped too and route
//! events trigger a re-read, so a default route flagged `linkdown` makes the link unusable.
//!
//! Parsing lives in [`crate::wan::rtnl`] (pure, fuzzed); this file only moves bytes.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    bind, recv, send, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};

use crate::wan::rtnl::{self, LinkInfo, RtnlError};
use crate::wan::{LinkSample, WanWatcher};

const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_IPV4_ROUTE: u32 = 0x40;
const RTMGRP_IPV6_ROUTE: u32 = 0x400;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
/// How long a re-read may wait for the kernel's answer before it counts as failed.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the WAN link could not be watched.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The rtnetlink socket could not be created or bound (seccomp, or no netlink at all).
    #[error("cannot open an rtnetlink socket")]
    Open {
        #[source]
        source: Errno,
    },
    /// A request could not be sent.
    #[error("cannot send {what} to rtnetlink")]
    Send {
        what: &'static str,
        #[source]
        source: Errno,
    },
    /// Receiving failed for a reason other than lost events (`ENOBUFS` triggers a re-read).
    #[error("cannot receive from rtnetlink")]
    Recv {
        #[source]
        source: Errno,
    },
    /// The kernel sent something that does not parse.
    #[error("malformed rtnetlink message")]
    Parse {
        #[source]
        source: RtnlError,
    },
    /// The kernel refused a request (other than "no such interface", which means down).
    #[error("rtnetlink refused {what}: errno {errno}")]
    Refused { what: &'static str, errno: i32 },
    /// Events overflowed the socket while waiting for an answer (retried by `reread`).
    #[error("rtnetlink answer lost to an overflowing socket (ENOBUFS)")]
    Lost,
    /// No answer to a request in time.
    #[error("no rtnetlink answer to {what} within {timeout:?}")]
    Timeout {
        what: &'static str,
        timeout: Duration,
    },
}

/// Options for [`RtnlWatcher`].
#[derive(Debug, Clone)]
pub struct RtnlOptions {
    /// The WAN interface name (`wan.interface`).
    pub interface: String,
    /// Re-read even without events this often (events can be lost; default 30 s).
    pub reread_every: Duration,
    /// Require a live default route through the interface (`wan.require_default_route`).
    pub check_routes: bool,
}

/// The real [`WanWatcher`]: rtnetlink link (and optionally route) events for one interface.
pub struct RtnlWatcher {
    opts: RtnlOptions,
    sock: OwnedFd,
    seq: u32,
    last_read: Option<Instant>,
    current: LinkSample,
    buf: Vec<u8>,
    /// Set when events were lost or a route changed: the next call re-reads everything.
    dirty: bool,
    lost: u64,
}

impl RtnlWatcher {
    /// Opens the socket and subscribes to link (and route) events. The first
    /// [`next_sample`](WanWatcher::next_sample) reads the link's current state.
    pub fn open(opts: RtnlOptions) -> Result<RtnlWatcher, LinkError> {
        let sock = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .map_err(|source| LinkError::Open { source })?;
        let mut groups = RTMGRP_LINK;
        if opts.check_routes {
            groups |= RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE;
        }
        bind(sock.as_raw_fd(), &NetlinkAddr::new(0, groups))
            .map_err(|source| LinkError::Open { source })?;
        // A burst of route events (a BGP/RA storm) must not cost us link events: ask for a
        // larger buffer; ENOBUFS is still handled by a full re-read.
        let _ = setsockopt(&sock, sockopt::RcvBuf, &(1 << 20));
        Ok(RtnlWatcher {
            opts,
            sock,
            seq: 1,
            last_read: None,
            current: LinkSample::absent(),
            buf: vec![0; 64 * 1024],
            dirty: true,
            lost: 0,
        })
    }

    /// Sets the socket's receive buffer (`SO_RCVBUF`; the kernel doubles it). The default is
    /// 1 MiB; a small one makes event loss (`ENOBUFS`) easy to provoke in tests.
    pub fn set_receive_buffer(&self, bytes: usize) -> Result<(), LinkError> {
        setsockopt(&self.sock, sockopt::RcvBuf, &bytes).map_err(|source| LinkError::Open { source })
    }

    /// How often the kernel reported lost events (each answered by a full re-read).
    pub fn lost_events(&self) -> u64 {
        self.lost
    }

    /// The last reading.
    pub fn current(&self) -> &LinkSample {
        &self.current
    }

    /// Reads the link (and routes) now, answering from the kernel, not from events. Queued
    /// events are discarded first (the answer is newer, and a full socket would make the
    /// kernel drop the answer); an answer lost to a burst of events is asked for again.
    pub fn reread(&mut self) -> Result<LinkSample, LinkError> {
        let mut attempt = 0;
        loop {
            self.drain();
            match self.reread_once() {
                Err(LinkError::Lost) if attempt < 3 => attempt += 1,
                other => return other,
            }
        }
    }

    /// Discards whatever is queued on the socket.
    fn drain(&mut self) {
        loop {
            match recv(self.sock.as_raw_fd(), &mut self.buf, MsgFlags::MSG_DONTWAIT) {
                Ok(_) | Err(Errno::ENOBUFS) | Err(Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    }

    fn reread_once(&mut self) -> Result<LinkSample, LinkError> {
        let seq = self.next_seq();
        let req = rtnl::getlink_request(&self.opts.interface, seq);
        send(self.sock.as_raw_fd(), &req, MsgFlags::empty()).map_err(|source| LinkError::Send {
            what: "RTM_GETLINK",
            source,
        })?;
        let mut link: Option<Option<LinkInfo>> = None;
        self.read_answer(seq, "RTM_GETLINK", |m| match m.ty {
            rtnl::RTM_NEWLINK => {
                let info =
                    rtnl::parse_link(m.payload).map_err(|source| LinkError::Parse { source })?;
                link = Some(Some(info));
                Ok(true)
            }
            rtnl::NLMSG_ERROR => match rtnl::error_code(m.payload) {
                Some(0) => Ok(link.is_some()),
                // ENODEV: the interface does not exist (a ppp0 between sessions): down
                Some(19) => {
                    link = Some(None);
                    Ok(true)
                }
                Some(errno) => Err(LinkError::Refused {
                    what: "RTM_GETLINK",
                    errno,
                }),
                None => Ok(false),
            },
            _ => Ok(false),
        })?;
        let sample = match link.flatten() {
            None => LinkSample::absent(),
            Some(info) => {
                let routes = if self.opts.check_routes {
                    Some(self.default_route_live(info.ifindex)?)
                } else {
                    None
                };
                info.sample(routes)
            }
        };
        self.current = sample.clone();
        self.last_read = Some(Instant::now());
        self.dirty = false;
        Ok(sample)
    }

    /// Whether a main-table default route (IPv4 or IPv6) leaves through `ifindex` and is
    /// neither `linkdown` nor `dead`.
    fn default_route_live(&mut self, ifindex: u32) -> Result<bool, LinkError> {
        let mut live = false;
        for family in [AF_INET, AF_INET6] {
            let seq = self.next_seq();
            let req = rtnl::getroute_dump(family, seq);
            send(self.sock.as_raw_fd(), &req, MsgFlags::empty()).map_err(|source| {
                LinkError::Send {
                    what: "RTM_GETROUTE",
                    source,
                }
            })?;
            self.read_answer(seq, "RTM_GETROUTE", |m| match m.ty {
                rtnl::RTM_NEWROUTE => {
                    let r = rtnl::parse_route(m.payload)
                        .map_err(|source| LinkError::Parse { source })?;
                    live |= r.is_default() && r.live_via(ifindex);
                    Ok(false)
                }
                rtnl::NLMSG_DONE => Ok(true),
                rtnl::NLMSG_ERROR => match rtnl::error_code(m.payload) {
                    Some(0) | None => Ok(false),
                    Some(errno) => Err(LinkError::Refused {
                        what: "RTM_GETROUTE",
                        errno,
                    }),
                },
                _ => Ok(false),
            })?;
        }
        Ok(live)
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// Receives until `on_msg` says the answer to `seq` is complete. Multicast events that
    /// arrive meanwhile are dropped: the answer is newer than they are.
    fn read_answer(
        &mut self,
        seq: u32,
        what: &'static str,
        mut on_msg: impl FnMut(&rtnl::NlMsg<'_>) -> Result<bool, LinkError>,
    ) -> Result<(), LinkError> {
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.wait_readable(left)? {
                return Err(LinkError::Timeout {
                    what,
                    timeout: ANSWER_TIMEOUT,
                });
            }
            let n = match recv(self.sock.as_raw_fd(), &mut self.buf, MsgFlags::MSG_DONTWAIT) {
                Ok(n) => n,
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
                // The socket overflowed: our answer may be among what was dropped.
                Err(Errno::ENOBUFS) => {
                    self.lost += 1;
                    return Err(LinkError::Lost);
                }
                Err(source) => return Err(LinkError::Recv { source }),
            };
            let msgs =
                rtnl::messages(&self.buf[..n]).map_err(|source| LinkError::Parse { source })?;
            for m in msgs {
                if m.seq != seq {
                    continue;
                }
                if on_msg(&m)? {
                    return Ok(());
                }
            }
        }
    }

    fn wait_readable(&self, timeout: Duration) -> Result<bool, LinkError> {
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(n) => Ok(n > 0),
            Err(Errno::EINTR) => Ok(false),
            Err(source) => Err(LinkError::Recv { source }),
        }
    }

    /// Applies one event; returns whether the reading changed.
    fn apply_event(&mut self, m: &rtnl::NlMsg<'_>) -> Result<bool, LinkError> {
        match m.ty {
            rtnl::RTM_NEWLINK | rtnl::RTM_DELLINK => {
                let info =
                    rtnl::parse_link(m.payload).map_err(|source| LinkError::Parse { source })?;
                let ours_by_name = info.name.as_deref() == Some(self.opts.interface.as_str());
                let ours_by_index = self.current.ifindex == Some(info.ifindex);
                if !ours_by_name && !ours_by_index {
                    return Ok(false);
                }
                let before = self.current.clone();
                if m.ty == rtnl::RTM_DELLINK || !ours_by_name {
                    // deleted, or renamed away from the configured name: gone
                    self.current = LinkSample::absent();
                } else {
                    let routes = self.current.default_route;
                    self.current = info.sample(routes);
                }
                let changed = before != self.current;
                if changed && self.opts.check_routes && self.current.present {
                    // The kernel sets and clears a route's `linkdown` flag without a route
                    // event, and a new link (ppp0 back) has new routes: read them now.
                    self.dirty = true;
                }
                Ok(changed)
            }
            rtnl::RTM_NEWROUTE | rtnl::RTM_DELROUTE if self.opts.check_routes => {
                if let Ok(r) = rtnl::parse_route(m.payload) {
                    if r.dst_len == 0 {
                        self.dirty = true;
                    }
                }
                Ok(false)
            }
            _ => Ok(false),
        }
    }
}

impl WanWatcher for RtnlWatcher {
    type Error = LinkError;

    fn next_sample(&mut self, timeout: Duration) -> Result<Option<LinkSample>, LinkError> {
        let start = Instant::now();
        let deadline = start + timeout;
        loop {
            let now = Instant::now();
            let reread_due = match self.last_read {
                None => true,
                Some(t) => now.duration_since(t) >= self.opts.reread_every,
            };
            if self.dirty || reread_due {
                return self.reread().map(Some);
            }
            let until_reread = self
                .last_read
                .map(|t| (t + self.opts.reread_every).saturating_duration_since(now))
                .unwrap_or(Duration::ZERO);
            let left = deadline.saturating_duration_since(now).min(until_reread);
            if left.is_zero() && now >= deadline {
                return Ok(None);
            }
            if !self.wait_readable(left)? {
                if Instant::now() >= deadline {
                    return Ok(None);
                }
                continue;
            }
            let n = match recv(self.sock.as_raw_fd(), &mut self.buf, MsgFlags::MSG_DONTWAIT) {
                Ok(n) => n,
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
                Err(Errno::ENOBUFS) => {
                    self.lost += 1;
                    // The kernel dropped events: what we know may be stale.
                    log::debug!(
                        "rtnetlink events lost (ENOBUFS); re-reading {}",
                        self.opts.interface
                    );
                    self.dirty = true;
                    continue;
                }
                Err(source) => return Err(LinkError::Recv { source }),
            };
            let buf = std::mem::take(&mut self.buf);
            let applied = rtnl::messages(&buf[..n])
                .map_err(|source| LinkError::Parse { source })
                .and_then(|msgs| {
                    let mut changed = false;
                    for m in &msgs {
                        changed |= self.apply_event(m)?;
                    }
                    Ok(changed)
                });
            self.buf = buf;
            let changed = applied?;
            if self.dirty {
                return self.reread().map(Some);
            }
            if changed {
                return Ok(Some(self.current.clone()));
            }
        }
    }
}

/// One reachability-probe round: a TCP connect to each target, all at once, each within
/// `timeout`. A target answered if the connect succeeded or was refused (a RST proves the path
/// works); timeouts and unreachable errors are failures. No capabilities needed.
pub fn tcp_probe_round(targets: &[std::net::SocketAddr], timeout: Duration) -> Vec<bool> {
    std::thread::scope(|s| {
        let handles: Vec<_> = targets
            .iter()
            .map(|t| {
                s.spawn(
                    move || match std::net::TcpStream::connect_timeout(t, timeout) {
                        Ok(_) => true,
                        Err(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
                    },
                )
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(false))
            .collect()
    })
}
