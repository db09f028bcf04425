//! Pure rtnetlink: parse link and route messages from `&[u8]`, build the two requests the
//! watcher sends. Hand-rolled because we need four attributes of two message types; the
//! netlink-packet-route stack (with its -core, -utils and their dependencies) would be larger
//! than this file. Numbers are in host byte order, as the kernel sends them.
//!
//! Reference: `include/uapi/linux/{netlink,rtnetlink,if_link}.h`. The equivalent commands are
//! `ip -d link show dev X` and `ip route show default`.

use super::link::{LinkSample, OperState};
use crate::sys::netlink::{align4, attrs_ok as attrs};

/// Netlink message types used here.
pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;
pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_DELROUTE: u16 = 25;
pub const RTM_GETROUTE: u16 = 26;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;

const IFF_UP: u32 = 0x1;
const IFF_RUNNING: u32 = 0x40;
const IFLA_IFNAME: u16 = 3;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_CARRIER: u16 = 33;

const RTA_OIF: u16 = 4;
const RTA_MULTIPATH: u16 = 9;
const RTA_TABLE: u16 = 15;
const RTNH_F_DEAD: u32 = 1;
const RTNH_F_LINKDOWN: u32 = 16;
const RTN_UNICAST: u8 = 1;
const RT_TABLE_MAIN: u32 = 254;

const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
const RTMSG_LEN: usize = 12;

/// Why a netlink message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtnlError {
    /// The buffer ends inside a header or a message claims more bytes than were received.
    #[error("truncated netlink message: need {need} bytes at offset {offset}, have {have}")]
    Truncated {
        offset: usize,
        need: usize,
        have: usize,
    },
    /// A length field is smaller than the header it belongs to.
    #[error("bad netlink length {len} at offset {offset}")]
    BadLength { offset: usize, len: usize },
}

/// One netlink message: header fields and the payload after the 16-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NlMsg<'a> {
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
    pub payload: &'a [u8],
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Splits a received datagram into messages.
pub fn messages(buf: &[u8]) -> Result<Vec<NlMsg<'_>>, RtnlError> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < buf.len() {
        let have = buf.len() - off;
        if have < NLMSG_HDRLEN {
            return Err(RtnlError::Truncated {
                offset: off,
                need: NLMSG_HDRLEN,
                have,
            });
        }
        let h = &buf[off..];
        let len = u32_at(h, 0).unwrap_or(0) as usize;
        if len < NLMSG_HDRLEN {
            return Err(RtnlError::BadLength { offset: off, len });
        }
        if len > have {
            return Err(RtnlError::Truncated {
                offset: off,
                need: len,
                have,
            });
        }
        out.push(NlMsg {
            ty: u16_at(h, 4).unwrap_or(0),
            flags: u16_at(h, 6).unwrap_or(0),
            seq: u32_at(h, 8).unwrap_or(0),
            payload: &h[NLMSG_HDRLEN..len],
        });
        off += align4(len);
    }
    Ok(out)
}

/// The errno of an `NLMSG_ERROR` payload (0 is an ack), as a positive number.
pub fn error_code(payload: &[u8]) -> Option<i32> {
    let v = u32_at(payload, 0)? as i32;
    // wrapping: i32::MIN is no errno, but must not panic (found by cargo fuzz)
    Some(v.wrapping_neg())
}

/// The parts of an `RTM_NEWLINK`/`RTM_DELLINK` this daemon uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub ifindex: u32,
    /// `IFF_*` flags.
    pub flags: u32,
    pub name: Option<String>,
    pub operstate: OperState,
    pub carrier: Option<bool>,
}

impl LinkInfo {
    /// The reading for the controller.
    pub fn sample(&self, default_route: Option<bool>) -> LinkSample {
        LinkSample {
            present: true,
            ifindex: Some(self.ifindex),
            admin_up: self.flags & IFF_UP != 0,
            running: self.flags & IFF_RUNNING != 0,
            operstate: self.operstate,
            carrier: self.carrier,
            default_route,
        }
    }
}

/// Parses the payload of a link message (`ifinfomsg` + attributes).
pub fn parse_link(payload: &[u8]) -> Result<LinkInfo, RtnlError> {
    if payload.len() < IFINFOMSG_LEN {
        return Err(RtnlError::Truncated {
            offset: 0,
            need: IFINFOMSG_LEN,
            have: payload.len(),
        });
    }
    let mut info = LinkInfo {
        ifindex: u32_at(payload, 4).unwrap_or(0),
        flags: u32_at(payload, 8).unwrap_or(0),
        name: None,
        operstate: OperState::Unknown,
        carrier: None,
    };
    for (ty, v) in attrs(&payload[IFINFOMSG_LEN..]) {
        match ty {
            IFLA_IFNAME => {
                let end = v.iter().position(|c| *c == 0).unwrap_or(v.len());
                info.name = Some(String::from_utf8_lossy(&v[..end]).into_owned());
            }
            IFLA_OPERSTATE => {
                if let Some(s) = v.first() {
                    info.operstate = OperState::from_kernel(*s);
                }
            }
            IFLA_CARRIER => info.carrier = v.first().map(|c| *c != 0),
            _ => {}
        }
    }
    Ok(info)
}

/// The parts of a route message needed to tell whether a default route is alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    pub family: u8,
    pub dst_len: u8,
    pub table: u32,
    pub rtype: u8,
    /// `RTNH_F_*` flags of the route (single nexthop).
    pub flags: u32,
    pub oif: Option<u32>,
    /// Multipath nexthops: (ifindex, `RTNH_F_*` flags).
    pub nexthops: Vec<(u32, u32)>,
}

impl RouteInfo {
    /// A unicast default route in the main table.
    pub fn is_default(&self) -> bool {
        self.dst_len == 0 && self.rtype == RTN_UNICAST && self.table == RT_TABLE_MAIN
    }

    /// Whether this route carries traffic out of `ifindex` through a nexthop that is neither
    /// `linkdown` nor `dead` (what `ip route` prints as `linkdown`/`dead`).
    pub fn live_via(&self, ifindex: u32) -> bool {
        let dead = RTNH_F_DEAD | RTNH_F_LINKDOWN;
        if self.oif == Some(ifindex) && self.flags & dead == 0 {
            return true;
        }
        self.nexthops
            .iter()
            .any(|(i, f)| *i == ifindex && f & dead == 0)
    }
}

/// Parses the payload of a route message (`rtmsg` + attributes).
pub fn parse_route(payload: &[u8]) -> Result<RouteInfo, RtnlError> {
    if payload.len() < RTMSG_LEN {
        return Err(RtnlError::Truncated {
            offset: 0,
            need: RTMSG_LEN,
            have: payload.len(),
        });
    }
    let mut r = RouteInfo {
        family: payload[0],
        dst_len: payload[1],
        table: u32::from(payload[4]),
        rtype: payload[7],
        flags: u32_at(payload, 8).unwrap_or(0),
        oif: None,
        nexthops: Vec::new(),
    };
    for (ty, v) in attrs(&payload[RTMSG_LEN..]) {
        match ty {
            RTA_OIF => r.oif = u32_at(v, 0),
            RTA_TABLE => {
                if let Some(t) = u32_at(v, 0) {
                    r.table = t;
                }
            }
            RTA_MULTIPATH => {
                // struct rtnexthop { u16 len; u8 flags; u8 hops; i32 ifindex; } + attrs
                let mut rest = v;
                while rest.len() >= 8 {
                    let len = u16_at(rest, 0).unwrap_or(0) as usize;
                    if len < 8 || len > rest.len() {
                        break;
                    }
                    r.nexthops
                        .push((u32_at(rest, 4).unwrap_or(0), u32::from(rest[2])));
                    rest = rest.get(align4(len)..).unwrap_or(&[]);
                }
            }
            _ => {}
        }
    }
    Ok(r)
}

fn header(buf: &mut Vec<u8>, ty: u16, flags: u16, seq: u32) {
    buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched by finish()
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
}

fn finish(mut buf: Vec<u8>) -> Vec<u8> {
    let len = buf.len() as u32;
    buf[0..4].copy_from_slice(&len.to_ne_bytes());
    buf
}

/// `RTM_GETLINK` for one interface by name (`ip link show dev NAME`). The kernel answers with
/// one `RTM_NEWLINK`, or an error (`ENODEV` when it does not exist).
pub fn getlink_request(name: &str, seq: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(64);
    header(&mut b, RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, seq);
    b.extend_from_slice(&[0u8; IFINFOMSG_LEN]); // family AF_UNSPEC, index 0: look up by name
    let name_len = name.len() + 1;
    b.extend_from_slice(&((4 + name_len) as u16).to_ne_bytes());
    b.extend_from_slice(&IFLA_IFNAME.to_ne_bytes());
    b.extend_from_slice(name.as_bytes());
    b.push(0);
    while b.len() % 4 != 0 {
        b.push(0);
    }
    finish(b)
}

/// `RTM_GETROUTE` dump for one address family (`ip -4/-6 route show table all`).
pub fn getroute_dump(family: u8, seq: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(32);
    header(&mut b, RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq);
    let mut rtm = [0u8; RTMSG_LEN];
    rtm[0] = family;
    b.extend_from_slice(&rtm);
    finish(b)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    use crate::sys::netlink::attr;

    fn msg(ty: u16, payload: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        header(&mut b, ty, 0, 7);
        b.extend_from_slice(payload);
        finish(b)
    }

    /// An `RTM_NEWLINK` laid out as the kernel sends it for `ip link set wan0 up` on a veth
    /// with carrier: ifinfomsg (ARPHRD_ETHER, index 5, UP|BROADCAST|RUNNING|MULTICAST|
    /// LOWER_UP), IFLA_IFNAME, IFLA_OPERSTATE 6, IFLA_CARRIER 1, plus an attribute we ignore.
    fn newlink(flags: u32, operstate: u8, carrier: u8) -> Vec<u8> {
        let mut p = Vec::new();
        p.push(0); // family
        p.push(0);
        p.extend_from_slice(&1u16.to_ne_bytes()); // ARPHRD_ETHER
        p.extend_from_slice(&5i32.to_ne_bytes());
        p.extend_from_slice(&flags.to_ne_bytes());
        p.extend_from_slice(&0u32.to_ne_bytes());
        p.extend(attr(IFLA_IFNAME, b"wan0\0"));
        p.extend(attr(4, &1500u32.to_ne_bytes())); // IFLA_MTU, ignored
        p.extend(attr(IFLA_OPERSTATE, &[operstate]));
        p.extend(attr(IFLA_CARRIER, &[carrier]));
        msg(RTM_NEWLINK, &p)
    }

    #[test]
    fn parses_a_link_message() {
        let b = newlink(0x11043, 6, 1);
        let m = messages(&b).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].ty, RTM_NEWLINK);
        assert_eq!(m[0].seq, 7);
        let l = parse_link(m[0].payload).unwrap();
        assert_eq!(l.ifindex, 5);
        assert_eq!(l.name.as_deref(), Some("wan0"));
        assert_eq!(l.operstate, OperState::Up);
        assert_eq!(l.carrier, Some(true));
        let s = l.sample(None);
        assert!(s.admin_up && s.running && s.usable());
    }

    #[test]
    fn up_without_running_is_not_usable() {
        // IFF_UP|IFF_BROADCAST|IFF_MULTICAST, operstate LOWERLAYERDOWN, no carrier
        let b = newlink(0x1003, 3, 0);
        let l = parse_link(messages(&b).unwrap()[0].payload).unwrap();
        assert_eq!(l.operstate, OperState::LowerLayerDown);
        assert!(!l.sample(None).usable());
    }

    #[test]
    fn ppp_at_operstate_unknown_is_usable() {
        // IFF_UP|IFF_POINTOPOINT|IFF_RUNNING|IFF_NOARP|IFF_MULTICAST|IFF_LOWER_UP, operstate 0
        let b = newlink(0x110d1, 0, 1);
        let l = parse_link(messages(&b).unwrap()[0].payload).unwrap();
        assert_eq!(l.operstate, OperState::Unknown);
        assert!(l.sample(None).usable());
    }

    #[test]
    fn several_messages_and_errors() {
        let mut b = newlink(0x11043, 6, 1);
        let mut e = Vec::new();
        e.extend_from_slice(&(-19i32).to_ne_bytes()); // -ENODEV
        e.extend_from_slice(&[0u8; 16]); // the offending request's header
        b.extend(msg(NLMSG_ERROR, &e));
        b.extend(msg(NLMSG_DONE, &0u32.to_ne_bytes()));
        let m = messages(&b).unwrap();
        assert_eq!(m.iter().map(|m| m.ty).collect::<Vec<_>>(), [16, 2, 3]);
        assert_eq!(error_code(m[1].payload), Some(19));
        assert_eq!(error_code(&i32::MIN.to_ne_bytes()), Some(i32::MIN));
        assert_eq!(error_code(&[0, 0]), None);
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let b = newlink(0x11043, 6, 1);
        for cut in 1..b.len() {
            let r = messages(&b[..cut]);
            assert!(r.is_err(), "cut at {cut} accepted");
        }
        assert!(matches!(
            messages(&[4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(RtnlError::BadLength { len: 4, .. })
        ));
        assert!(parse_link(&[0; 8]).is_err());
        assert!(parse_route(&[0; 4]).is_err());
        // a garbage attribute after a good one: the good one is kept
        let mut p = vec![0u8; 16];
        p.extend(attr(IFLA_IFNAME, b"x\0"));
        p.extend_from_slice(&[200, 0, 1, 0]);
        assert_eq!(parse_link(&p).unwrap().name.as_deref(), Some("x"));
    }

    fn route(dst_len: u8, flags: u32, oif: u32) -> Vec<u8> {
        let mut p = vec![10, dst_len, 0, 0, 254, 3, 0, RTN_UNICAST];
        p.extend_from_slice(&flags.to_ne_bytes());
        p.extend(attr(RTA_TABLE, &254u32.to_ne_bytes()));
        p.extend(attr(RTA_OIF, &oif.to_ne_bytes()));
        p
    }

    #[test]
    fn default_route_flagged_linkdown_does_not_count() {
        let live = parse_route(&route(0, 0, 5)).unwrap();
        assert!(live.is_default() && live.live_via(5));
        assert!(!live.live_via(6));
        let linkdown = parse_route(&route(0, RTNH_F_LINKDOWN, 5)).unwrap();
        assert!(linkdown.is_default() && !linkdown.live_via(5));
        let not_default = parse_route(&route(64, 0, 5)).unwrap();
        assert!(!not_default.is_default());
    }

    #[test]
    fn multipath_nexthops() {
        let mut p = vec![2, 0, 0, 0, 254, 3, 0, RTN_UNICAST];
        p.extend_from_slice(&0u32.to_ne_bytes());
        let mut nh = Vec::new();
        for (flags, ifindex) in [(RTNH_F_LINKDOWN as u8, 5u32), (0u8, 6u32)] {
            nh.extend_from_slice(&8u16.to_ne_bytes());
            nh.push(flags);
            nh.push(0);
            nh.extend_from_slice(&ifindex.to_ne_bytes());
        }
        p.extend(attr(RTA_MULTIPATH, &nh));
        let r = parse_route(&p).unwrap();
        assert_eq!(r.nexthops, vec![(5, 16), (6, 0)]);
        assert!(!r.live_via(5));
        assert!(r.live_via(6));
    }

    #[test]
    fn requests_are_well_formed() {
        let b = getlink_request("wan0", 9);
        assert_eq!(b.len() % 4, 0);
        let m = messages(&b).unwrap();
        assert_eq!(m[0].ty, RTM_GETLINK);
        assert_eq!(m[0].seq, 9);
        assert_eq!(
            parse_link(m[0].payload).unwrap().name.as_deref(),
            Some("wan0")
        );
        let d = getroute_dump(10, 3);
        let m = messages(&d).unwrap();
        assert_eq!((m[0].ty, m[0].flags), (RTM_GETROUTE, 0x301));
        assert_eq!(m[0].payload[0], 10);
    }
}
