//! The WAN loop body: wait for a link reading or the controller's next deadline, feed the
//! controller, make the kernel's RA block match what it wants. Generic over the two seams and
//! the clock, so it runs the same against rtnetlink + nftables and against test doubles.

use crate::logging::error_chain as chain;
use std::sync::Arc;
use std::time::Duration;

use super::controller::{RaMode, WanController, WanEvent};
use super::{DropCounter, RaBlocker, WanWatcher};
use crate::sys::clock::Clock;

/// What one [`WanRunner::step`] did.
#[derive(Debug, Default)]
pub struct StepReport {
    /// The controller's events, in order.
    pub events: Vec<WanEvent>,
    /// The block was engaged (`Some(true)`) or released (`Some(false)`) in the kernel.
    pub applied: Option<bool>,
    /// Applying the block or reading the link failed (retried next step).
    pub error: Option<String>,
}

/// Owns the watcher, the blocker and the controller.
pub struct WanRunner<W: WanWatcher, B: RaBlocker> {
    pub watcher: W,
    pub blocker: B,
    pub controller: WanController,
    clock: Arc<dyn Clock>,
}

impl<W: WanWatcher, B: RaBlocker> WanRunner<W, B> {
    pub fn new(watcher: W, blocker: B, controller: WanController, clock: Arc<dyn Clock>) -> Self {
        WanRunner {
            watcher,
            blocker,
            controller,
            clock,
        }
    }

    /// Waits up to `max_wait` (less if a debounce deadline comes first), then brings the
    /// block in line with the controller.
    pub fn step(&mut self, max_wait: Duration) -> StepReport {
        let mut report = StepReport::default();
        let now = self.clock.monotonic();
        let wait = match self.controller.next_deadline(now) {
            Some(at) => at.saturating_duration_since(now).min(max_wait),
            None => max_wait,
        };
        match self.watcher.next_sample(wait) {
            Ok(Some(sample)) => {
                let now = self.clock.monotonic();
                report.events = self.controller.observe_link(sample, now);
            }
            Ok(None) => {}
            Err(e) => {
                report.error = Some(format!("reading the WAN link: {}", chain(&e)));
                // do not spin on a broken socket
                std::thread::sleep(wait.min(Duration::from_secs(1)));
            }
        }
        let now = self.clock.monotonic();
        report.events.extend(self.controller.tick(now));
        self.reconcile(&mut report);
        report
    }

    /// Changes the mode and applies the result at once.
    pub fn set_mode(&mut self, mode: RaMode) -> StepReport {
        let now = self.clock.monotonic();
        let mut report = StepReport {
            events: self.controller.set_mode(mode, now),
            ..StepReport::default()
        };
        self.reconcile(&mut report);
        report
    }

    /// Feeds one probe round (one `bool` per target) and applies the result.
    pub fn observe_probe(&mut self, answered: &[bool]) -> StepReport {
        let now = self.clock.monotonic();
        let mut report = StepReport {
            events: self.controller.observe_probe(answered, now),
            ..StepReport::default()
        };
        self.reconcile(&mut report);
        report
    }

    /// Packets dropped by the block so far.
    pub fn dropped(&mut self) -> Result<DropCounter, String> {
        self.blocker.dropped().map_err(|e| chain(&e))
    }

    fn reconcile(&mut self, report: &mut StepReport) {
        let want = self.controller.block_wanted();
        if want == self.blocker.is_blocked() {
            return;
        }
        match self.blocker.set_blocked(want) {
            Ok(()) => report.applied = Some(want),
            Err(e) => {
                let what = if want { "engaging" } else { "releasing" };
                report.error = Some(format!("{what} the RA block: {}", chain(&e)));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::wan::controller::WanPolicy;
    use crate::wan::link::{LinkSample, OperState};
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use std::time::Instant;

    /// A clock the test moves by hand.
    struct TestClock(Mutex<Instant>);
    impl Clock for TestClock {
        fn now_ms(&self) -> u64 {
            0
        }
        fn monotonic(&self) -> Instant {
            *self.0.lock().unwrap()
        }
    }

    /// Scripted readings; each `next_sample` advances the test clock by the time it "waited".
    struct Script {
        clock: Arc<TestClock>,
        readings: VecDeque<Option<bool>>,
    }
    impl WanWatcher for Script {
        type Error = std::io::Error;
        fn next_sample(&mut self, timeout: Duration) -> Result<Option<LinkSample>, Self::Error> {
            *self.clock.0.lock().unwrap() += timeout;
            Ok(self.readings.pop_front().flatten().map(|up| LinkSample {
                present: true,
                ifindex: Some(1),
                admin_up: true,
                running: up,
                operstate: OperState::Up,
                carrier: Some(up),
                default_route: None,
            }))
        }
    }

    #[derive(Default)]
    struct Recorder {
        on: bool,
        fail_next: bool,
        calls: Vec<bool>,
    }
    impl RaBlocker for Recorder {
        type Error = std::io::Error;
        fn set_blocked(&mut self, blocked: bool) -> Result<(), Self::Error> {
            self.calls.push(blocked);
            if std::mem::take(&mut self.fail_next) {
                return Err(std::io::Error::other("EPERM"));
            }
            self.on = blocked;
            Ok(())
        }
        fn is_blocked(&self) -> bool {
            self.on
        }
        fn dropped(&mut self) -> Result<DropCounter, Self::Error> {
            Ok(DropCounter::default())
        }
    }

    #[test]
    fn engages_after_down_after_and_retries_a_failed_apply() {
        let clock = Arc::new(TestClock(Mutex::new(Instant::now())));
        let policy = WanPolicy {
            down_after: Duration::from_secs(2),
            up_after: Duration::from_secs(4),
            damping: None,
            probe_fail_rounds: 1,
        };
        let ctl = WanController::new(policy, RaMode::Auto, clock.monotonic());
        let watcher = Script {
            clock: clock.clone(),
            readings: [Some(true), Some(false)].into_iter().collect(),
        };
        let blocker = Recorder {
            fail_next: true,
            ..Recorder::default()
        };
        let mut r = WanRunner::new(watcher, blocker, ctl, clock.clone());
        let t0 = clock.monotonic();
        assert_eq!(r.step(Duration::from_secs(1)).applied, None); // up
        assert_eq!(r.step(Duration::from_secs(1)).applied, None); // down seen at 2 s
                                                                  // the runner waits exactly until the deadline (4 s), then applies; the first try fails
        let rep = r.step(Duration::from_secs(10));
        assert_eq!(clock.monotonic() - t0, Duration::from_secs(4));
        assert!(rep.error.as_deref().unwrap_or("").contains("EPERM"));
        assert!(!r.blocker.is_blocked());
        let rep = r.step(Duration::from_millis(100));
        assert_eq!(rep.applied, Some(true));
        assert_eq!(r.blocker.calls, vec![true, true]);
        // forcing off releases at once
        assert_eq!(r.set_mode(RaMode::Off).applied, Some(false));
    }
}
