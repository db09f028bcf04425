//! Shutdown signals. SIGTERM, SIGINT and SIGHUP are blocked in every thread (the mask is set
//! before the first thread starts and inherited) and received by one thread with `sigwait`,
//! so no Rust code runs in signal context.

use std::sync::mpsc::Sender;

use nix::sys::signal::{SigSet, Signal};

fn set() -> SigSet {
    let mut s = SigSet::empty();
    s.add(Signal::SIGTERM);
    s.add(Signal::SIGINT);
    s.add(Signal::SIGHUP);
    s
}

/// Blocks the shutdown signals in the calling thread; call first thing in `main`.
pub fn block() -> nix::Result<()> {
    set().thread_block()
}

/// Starts the thread that turns signals into messages on `tx`.
pub fn forward(tx: Sender<Signal>) {
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            match set().wait() {
                Ok(sig) => {
                    if tx.send(sig).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    log::error!("waiting for signals failed: {e}");
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        log::error!("cannot start the signal thread: {e}");
    }
}
