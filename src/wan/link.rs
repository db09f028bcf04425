//! One reading of the WAN link and the rule that decides whether it is usable.

use serde::Serialize;

/// RFC 2863 operational state as the kernel reports it (`IFLA_OPERSTATE`); unknown values kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OperState {
    Unknown,
    NotPresent,
    Down,
    LowerLayerDown,
    Testing,
    Dormant,
    Up,
    /// A value this build does not know, kept as the kernel sent it.
    Other(u8),
}

impl OperState {
    /// Maps the kernel's `IF_OPER_*` number.
    pub fn from_kernel(v: u8) -> OperState {
        match v {
            0 => OperState::Unknown,
            1 => OperState::NotPresent,
            2 => OperState::Down,
            3 => OperState::LowerLayerDown,
            4 => OperState::Testing,
            5 => OperState::Dormant,
            6 => OperState::Up,
            other => OperState::Other(other),
        }
    }
}

/// What the kernel says about the WAN interface at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkSample {
    /// The interface exists (a ppp0 that went away is not present, hence down).
    pub present: bool,
    /// Interface index, when present.
    pub ifindex: Option<u32>,
    /// `IFF_UP`: administratively up (`ip link set X up`).
    pub admin_up: bool,
    /// `IFF_RUNNING`: the driver says it can pass traffic (carrier, or a ppp/WireGuard link
    /// that is working while its operstate stays `unknown`).
    pub running: bool,
    pub operstate: OperState,
    /// `IFLA_CARRIER`, when the kernel sent it.
    pub carrier: Option<bool>,
    /// Whether a default route through this interface exists that is not flagged `linkdown`
    /// or `dead`; `None` when routes are not checked (`wan.require_default_route = false`).
    pub default_route: Option<bool>,
}

impl LinkSample {
    /// The reading for an interface that does not exist.
    pub fn absent() -> LinkSample {
        LinkSample {
            present: false,
            ifindex: None,
            admin_up: false,
            running: false,
            operstate: OperState::NotPresent,
            carrier: None,
            default_route: None,
        }
    }

    /// Usable means present, `IFF_UP` and `IFF_RUNNING`, and (when routes are checked) a live
    /// default route through it. Operstate is deliberately not required to be `up`: ppp and
    /// WireGuard links sit at `unknown` while they work.
    pub fn usable(&self) -> bool {
        self.present && self.admin_up && self.running && self.default_route != Some(false)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn up() -> LinkSample {
        LinkSample {
            present: true,
            ifindex: Some(3),
            admin_up: true,
            running: true,
            operstate: OperState::Up,
            carrier: Some(true),
            default_route: None,
        }
    }

    #[test]
    fn usable_needs_up_and_running_not_operstate_up() {
        assert!(up().usable());
        let ppp = LinkSample {
            operstate: OperState::Unknown,
            carrier: None,
            ..up()
        };
        assert!(
            ppp.usable(),
            "ppp/WireGuard at operstate unknown are usable"
        );
        assert!(!LinkSample {
            running: false,
            ..up()
        }
        .usable());
        assert!(!LinkSample {
            admin_up: false,
            ..up()
        }
        .usable());
        assert!(!LinkSample::absent().usable());
    }

    #[test]
    fn linkdown_default_route_does_not_count() {
        assert!(!LinkSample {
            default_route: Some(false),
            ..up()
        }
        .usable());
        assert!(LinkSample {
            default_route: Some(true),
            ..up()
        }
        .usable());
    }

    #[test]
    fn unknown_operstate_is_kept() {
        assert_eq!(OperState::from_kernel(6), OperState::Up);
        assert_eq!(OperState::from_kernel(42), OperState::Other(42));
    }
}
