//! The only code that touches the OS: netlink, processes, GPIO, files, the clock, signals.
//! Everything here sits behind small blocking traits so pure code can be tested without it.

pub mod atomic_file;
pub mod clock;
pub mod gpio;
pub mod jool;
pub mod link;
pub mod netlink;
pub mod netns;
pub mod nflog;
pub mod nft;
pub mod nft_sets;
pub mod notify;
pub mod ra_block;
pub mod signals;
