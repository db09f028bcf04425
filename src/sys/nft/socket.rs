//! The NETLINK_NETFILTER socket: send one request, stream the answer message by message.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    bind, recv, send, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};

use super::decode::{self, NlMsg, NLMSG_DONE, NLMSG_ERROR, NLM_F_DUMP_INTR};
use crate::firewall::NftError;

const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
/// Large enough for the kernel's biggest dump datagram (it sizes them by our buffer, up to
/// 32 KiB) so nothing is truncated.
const RECV_BUF: usize = 64 * 1024;
/// The nftables multicast group (NFNLGRP_NFTABLES).
const NFNLGRP_NFTABLES: u32 = rustables::sys::NFNLGRP_NFTABLES;

/// How a dump ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DumpEnd {
    /// The kernel set NLM_F_DUMP_INTR: the ruleset changed during the dump.
    pub interrupted: bool,
}

/// A netlink socket talking to nf_tables.
pub struct NftSocket {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
    /// Bytes and messages received, for the benchmark and stats.
    pub bytes: u64,
    pub messages: u64,
    /// The nfgenmsg `res_id` of the last answer message of the last request: the kernel puts
    /// the low 16 bits of the ruleset generation there when it fills each message.
    pub last_res_id: Option<u16>,
}

fn io_err(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

fn open(groups: u32) -> Result<OwnedFd, NftError> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkNetFilter,
    )
    .map_err(|e| NftError::OpenSocket(io_err(e)))?;
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups)).map_err(|e| match e {
        Errno::EPERM => NftError::PermissionDenied,
        e => NftError::OpenSocket(io_err(e)),
    })?;
    // A bigger receive buffer keeps bursts of change events from overflowing (ENOBUFS).
    let _ = setsockopt(&fd, sockopt::RcvBuf, &(1 << 20));
    Ok(fd)
}

impl NftSocket {
    /// Opens a socket for requests.
    pub fn open() -> Result<NftSocket, NftError> {
        Ok(NftSocket {
            fd: open(0)?,
            seq: 1,
            buf: vec![0; RECV_BUF],
            bytes: 0,
            messages: 0,
            last_res_id: None,
        })
    }

    fn recv_some(&mut self, what: &str) -> Result<usize, NftError> {
        loop {
            match recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::empty()) {
                Ok(n) => {
                    self.bytes += n as u64;
                    return Ok(n);
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EPERM) => return Err(NftError::PermissionDenied),
                Err(e) => {
                    return Err(NftError::Receive {
                        what: what.to_string(),
                        source: io_err(e),
                    })
                }
            }
        }
    }

    /// Sends a request and feeds each answer message (not the error/done frames) to `f`.
    /// A kernel error becomes `NftError::Kernel`, EPERM becomes `PermissionDenied`.
    /// A non-dump request is sent without NLM_F_ACK: its one answer message ends it (errors
    /// come anyway), which saves receiving a separate ACK datagram.
    pub fn request(
        &mut self,
        what: &str,
        msg_type: u16,
        dump: bool,
        family: u8,
        attrs: &[(u16, &[u8])],
        mut f: impl FnMut(&NlMsg<'_>) -> Result<(), NftError>,
    ) -> Result<DumpEnd, NftError> {
        let seq = self.send_request(what, msg_type, dump, family, attrs)?;
        let mut end = DumpEnd::default();
        loop {
            let n = self.recv_some(what)?;
            let buf = std::mem::take(&mut self.buf);
            let result = self.handle(&buf[..n], seq, what, dump, &mut end, &mut f);
            self.buf = buf;
            if result? {
                return Ok(end);
            }
        }
    }

    fn send_request(
        &mut self,
        what: &str,
        msg_type: u16,
        dump: bool,
        family: u8,
        attrs: &[(u16, &[u8])],
    ) -> Result<u32, NftError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { 0 };
        self.last_res_id = None;
        let req = decode::build_request(msg_type, flags, seq, family, attrs);
        loop {
            match send(self.fd.as_raw_fd(), &req, MsgFlags::empty()) {
                Ok(_) => return Ok(seq),
                Err(Errno::EINTR) => continue,
                Err(Errno::EPERM) => return Err(NftError::PermissionDenied),
                Err(e) => {
                    return Err(NftError::Send {
                        what: what.to_string(),
                        source: io_err(e),
                    })
                }
            }
        }
    }

    /// Handles one datagram; true when the answer is complete.
    fn handle(
        &mut self,
        datagram: &[u8],
        seq: u32,
        what: &str,
        dump: bool,
        end: &mut DumpEnd,
        f: &mut impl FnMut(&NlMsg<'_>) -> Result<(), NftError>,
    ) -> Result<bool, NftError> {
        let mut done = false;
        for m in decode::messages(datagram) {
            let m = m.map_err(|e| NftError::Decode {
                what: what.to_string(),
                detail: e.to_string(),
            })?;
            if m.seq != seq {
                // A late answer to an earlier request that was abandoned: not ours.
                continue;
            }
            self.messages += 1;
            if m.flags & NLM_F_DUMP_INTR != 0 {
                end.interrupted = true;
            }
            match m.ty {
                NLMSG_ERROR => {
                    let code = decode::error_code(m.payload).map_err(|e| NftError::Decode {
                        what: what.to_string(),
                        detail: e.to_string(),
                    })?;
                    if code == 0 {
                        done = true;
                        continue;
                    }
                    let errno = -code;
                    if errno == Errno::EPERM as i32 {
                        return Err(NftError::PermissionDenied);
                    }
                    return Err(NftError::Kernel {
                        what: what.to_string(),
                        source: io::Error::from_raw_os_error(errno),
                    });
                }
                NLMSG_DONE => {
                    let code = decode::error_code(m.payload).unwrap_or(0);
                    if code < 0 {
                        if -code == Errno::EINTR as i32 {
                            end.interrupted = true;
                        } else {
                            return Err(NftError::Kernel {
                                what: what.to_string(),
                                source: io::Error::from_raw_os_error(-code),
                            });
                        }
                    }
                    done = true;
                }
                _ => {
                    if let [_, _, a, b, ..] = *m.payload {
                        self.last_res_id = Some(u16::from_be_bytes([a, b]));
                    }
                    f(&m)?;
                    if !dump {
                        done = true;
                    }
                }
            }
        }
        Ok(done)
    }
}

/// A socket subscribed to ruleset-change events (the nftables multicast group).
pub struct NftEvents {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl NftEvents {
    pub fn open() -> Result<NftEvents, NftError> {
        let groups = 1u32 << (NFNLGRP_NFTABLES - 1);
        Ok(NftEvents {
            fd: open(groups)?,
            buf: vec![0; RECV_BUF],
        })
    }

    /// Waits up to `timeout` for events; drains what is queued. True when any came (an
    /// overflowed queue, ENOBUFS, also means "something changed").
    pub fn wait(&mut self, timeout: Duration) -> Result<bool, NftError> {
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) => return Ok(false),
            Ok(_) => {}
            Err(Errno::EINTR) => return Ok(false),
            Err(e) => {
                return Err(NftError::Receive {
                    what: "ruleset events".into(),
                    source: io_err(e),
                })
            }
        }
        let mut any = false;
        loop {
            match recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::MSG_DONTWAIT) {
                Ok(_) => any = true,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return Ok(any),
                Err(Errno::ENOBUFS) => any = true,
                Err(e) => {
                    return Err(NftError::Receive {
                        what: "ruleset events".into(),
                        source: io_err(e),
                    })
                }
            }
        }
    }
}
