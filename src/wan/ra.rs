//! ICMPv6 router advertisements (RFC 4861 section 4.2) as a raw ICMPv6 socket sees them: no
//! IPv6 header, checksum filled in by the kernel. Used for the RFC 7084 "final" RA with router
//! lifetime 0 that tells LAN hosts to drop the default route at once.

/// ICMPv6 type of a router advertisement.
pub const ND_ROUTER_ADVERT: u8 = 134;
/// Length of an RA without options.
pub const RA_LEN: usize = 16;

/// The fixed part of a router advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterAdvert {
    pub cur_hop_limit: u8,
    /// M, O and the other flag bits, as sent.
    pub flags: u8,
    /// Router lifetime in seconds; 0 means "I am not a default router".
    pub router_lifetime: u16,
    pub reachable_ms: u32,
    pub retrans_ms: u32,
}

impl RouterAdvert {
    /// The RFC 7084 (G-5) advertisement of a router without upstream: lifetime 0, nothing else.
    pub fn withdraw() -> RouterAdvert {
        RouterAdvert {
            cur_hop_limit: 0,
            flags: 0,
            router_lifetime: 0,
            reachable_ms: 0,
            retrans_ms: 0,
        }
    }

    /// The 16 bytes to send on a raw ICMPv6 socket (checksum 0: the kernel computes it).
    pub fn to_bytes(&self) -> [u8; RA_LEN] {
        let mut b = [0u8; RA_LEN];
        b[0] = ND_ROUTER_ADVERT;
        b[4] = self.cur_hop_limit;
        b[5] = self.flags;
        b[6..8].copy_from_slice(&self.router_lifetime.to_be_bytes());
        b[8..12].copy_from_slice(&self.reachable_ms.to_be_bytes());
        b[12..16].copy_from_slice(&self.retrans_ms.to_be_bytes());
        b
    }

    /// Parses an ICMPv6 message; `None` unless it is a well-formed RA (type 134, code 0).
    /// Options after the fixed part are ignored.
    pub fn parse(b: &[u8]) -> Option<RouterAdvert> {
        if b.len() < RA_LEN || b[0] != ND_ROUTER_ADVERT || b[1] != 0 {
            return None;
        }
        Some(RouterAdvert {
            cur_hop_limit: b[4],
            flags: b[5],
            router_lifetime: u16::from_be_bytes([b[6], b[7]]),
            reachable_ms: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            retrans_ms: u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_layout() {
        let ra = RouterAdvert {
            cur_hop_limit: 64,
            flags: 0x40,
            router_lifetime: 1800,
            reachable_ms: 0,
            retrans_ms: 0,
        };
        let b = ra.to_bytes();
        assert_eq!(&b[..8], &[134, 0, 0, 0, 64, 0x40, 0x07, 0x08]);
        assert_eq!(RouterAdvert::parse(&b), Some(ra));
        assert_eq!(RouterAdvert::withdraw().to_bytes()[6..8], [0, 0]);
    }

    #[test]
    fn refuses_what_is_not_an_ra() {
        let mut b = RouterAdvert::withdraw().to_bytes();
        assert!(RouterAdvert::parse(&b[..15]).is_none());
        b[0] = 133;
        assert!(RouterAdvert::parse(&b).is_none());
        b[0] = 134;
        b[1] = 1;
        assert!(RouterAdvert::parse(&b).is_none());
    }
}
