//! Reachability-probe aggregation: a live link with a dead upstream is caught when every
//! configured target fails, `fail_rounds` rounds in a row. One answering target is enough.

use serde::Serialize;

/// What the probes say about the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeVerdict {
    /// No round finished yet (or no targets configured): does not hold the WAN down.
    Unknown,
    /// At least one target answered in the last round.
    Reachable,
    /// Every target failed in each of the last `fail_rounds` rounds.
    Unreachable,
}

/// Counts consecutive rounds in which every target failed.
#[derive(Debug, Clone)]
pub struct ProbeAggregator {
    fail_rounds: u32,
    failed_in_a_row: u32,
    verdict: ProbeVerdict,
}

impl ProbeAggregator {
    /// `fail_rounds` of 0 is treated as 1 (a single all-failed round).
    pub fn new(fail_rounds: u32) -> ProbeAggregator {
        ProbeAggregator {
            fail_rounds: fail_rounds.max(1),
            failed_in_a_row: 0,
            verdict: ProbeVerdict::Unknown,
        }
    }

    /// Records one round: one `bool` per target (answered or not). An empty round (no
    /// targets) changes nothing.
    pub fn record(&mut self, answered: &[bool]) -> ProbeVerdict {
        if answered.is_empty() {
            return self.verdict;
        }
        if answered.iter().any(|ok| *ok) {
            self.failed_in_a_row = 0;
            self.verdict = ProbeVerdict::Reachable;
        } else {
            self.failed_in_a_row = self.failed_in_a_row.saturating_add(1);
            if self.failed_in_a_row >= self.fail_rounds {
                self.verdict = ProbeVerdict::Unreachable;
            }
        }
        self.verdict
    }

    pub fn verdict(&self) -> ProbeVerdict {
        self.verdict
    }

    /// Rounds in a row in which every target failed.
    pub fn failed_in_a_row(&self) -> u32 {
        self.failed_in_a_row
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn all_targets_must_fail_n_rounds() {
        let mut p = ProbeAggregator::new(3);
        assert_eq!(p.verdict(), ProbeVerdict::Unknown);
        assert_eq!(p.record(&[false, true]), ProbeVerdict::Reachable);
        assert_eq!(p.record(&[false, false]), ProbeVerdict::Reachable);
        assert_eq!(p.record(&[false, false]), ProbeVerdict::Reachable);
        assert_eq!(p.record(&[false, false]), ProbeVerdict::Unreachable);
        assert_eq!(p.failed_in_a_row(), 3);
        // one target answering is enough to clear it
        assert_eq!(p.record(&[false, true]), ProbeVerdict::Reachable);
        assert_eq!(p.failed_in_a_row(), 0);
    }

    #[test]
    fn one_answering_target_in_each_round_keeps_it_reachable() {
        let mut p = ProbeAggregator::new(1);
        for i in 0..10 {
            let round = [i % 2 == 0, i % 2 == 1];
            assert_eq!(p.record(&round), ProbeVerdict::Reachable);
        }
    }

    #[test]
    fn empty_round_changes_nothing() {
        let mut p = ProbeAggregator::new(0);
        assert_eq!(p.record(&[]), ProbeVerdict::Unknown);
        assert_eq!(p.record(&[false]), ProbeVerdict::Unreachable);
        assert_eq!(p.record(&[]), ProbeVerdict::Unreachable);
    }
}
