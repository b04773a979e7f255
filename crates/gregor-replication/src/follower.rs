//! A partition this broker follows: truncate by leader epoch, then fetch.

use crate::types::{BrokerId, ReplicationError};

/// What the follower's local log looks like.
pub trait LocalLog {
    /// The log end offset.
    fn log_end(&self) -> u64;
    /// The local high watermark.
    fn high_watermark(&self) -> u64;
    /// The newest leader epoch in the log, if any.
    fn latest_epoch(&self) -> Option<i32>;
    /// The largest epoch ≤ `epoch` in the log and the offset where the
    /// next epoch begins (the log end for the latest); `None` if the log
    /// has no epoch ≤ `epoch`.
    fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, u64)>;
}

/// The leader's answer to OffsetsForLeaderEpoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEnd {
    /// The largest epoch ≤ the requested one the leader has (`None`:
    /// undefined, -1 on the wire).
    pub epoch: Option<i32>,
    /// Where that epoch ends on the leader (`None`: undefined).
    pub end_offset: Option<u64>,
}

/// What the follower sends the leader next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowerRequest {
    /// OffsetsForLeaderEpoch for this epoch (the follower's latest).
    EpochEndOffset {
        /// The follower's latest epoch.
        epoch: i32,
    },
    /// Fetch from this offset.
    Fetch {
        /// The follower's log end.
        offset: u64,
    },
}

/// Cut the local log at this offset (everything from it on goes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncation {
    /// The new log end.
    pub offset: u64,
}

/// The follower side of a partition. After every leader change it first
/// asks the leader where its own latest epoch ends and truncates the part
/// of its log the leader does not share (repeating with the next older
/// epoch when the leader never had this one); then it fetches from its
/// log end. The high watermark alone is never used to truncate while the
/// log has epochs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerPartition {
    leader: BrokerId,
    leader_epoch: i32,
    truncated: bool,
}

impl FollowerPartition {
    /// Follows `leader` in `leader_epoch`; truncation comes first.
    pub fn new(leader: BrokerId, leader_epoch: i32) -> Self {
        Self {
            leader,
            leader_epoch,
            truncated: false,
        }
    }

    /// The leader to fetch from.
    pub fn leader(&self) -> BrokerId {
        self.leader
    }

    /// The leader epoch, sent as `current_leader_epoch`.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    /// Whether truncation is done and fetching has begun.
    pub fn is_fetching(&self) -> bool {
        self.truncated
    }

    /// What to send the leader next; a log without epochs cannot ask by
    /// epoch, so it is cut to its high watermark first
    /// ([`Truncation`] returned alongside).
    pub fn next_request(&mut self, log: &impl LocalLog) -> (FollowerRequest, Option<Truncation>) {
        if self.truncated {
            return (FollowerRequest::Fetch { offset: log.log_end() }, None);
        }
        match log.latest_epoch() {
            Some(epoch) => (FollowerRequest::EpochEndOffset { epoch }, None),
            None => {
                self.truncated = true;
                let hw = log.high_watermark().min(log.log_end());
                let cut = (hw < log.log_end()).then_some(Truncation { offset: hw });
                (FollowerRequest::Fetch { offset: hw }, cut)
            }
        }
    }

    /// The leader answered OffsetsForLeaderEpoch for `requested_epoch`;
    /// returns where to cut the local log. Errors (the leader moved on,
    /// not the leader) leave the follower truncating: the caller retries
    /// or waits for a new LeaderAndIsr. A late answer — truncation already
    /// done, or asked about an epoch the log no longer ends with — is
    /// ignored.
    pub fn on_epoch_end(
        &mut self,
        requested_epoch: i32,
        answer: Result<EpochEnd, ReplicationError>,
        log: &impl LocalLog,
    ) -> Option<Truncation> {
        if self.truncated || log.latest_epoch() != Some(requested_epoch) {
            return None;
        }
        let answer = answer.ok()?;
        let log_end = log.log_end();
        let (offset, done) = match (answer.epoch, answer.end_offset) {
            (_, None) => (log.high_watermark().min(log_end), true),
            (None, Some(end)) => (end.min(log_end), true),
            (Some(leader_epoch), Some(leader_end)) => match log.end_offset_for_epoch(leader_epoch) {
                // The follower never had the leader's epoch: cut where its
                // own older epoch ends and ask again about that one.
                Some((epoch, end)) if epoch != leader_epoch => (end.min(log_end), false),
                Some((_, end)) => (end.min(leader_end).min(log_end), true),
                // Every local epoch is newer than the leader's: the local
                // tail may diverge from its first record; only what is
                // committed (below the HW) is known to match. (Kafka cuts
                // at the leader's end here, which can keep a diverging
                // tail when a replica that never truncated was elected.)
                None => (leader_end.min(log.high_watermark()).min(log_end), true),
            },
        };
        self.truncated = done || log.latest_epoch().is_none();
        Some(Truncation { offset })
    }

    /// The leader refused a fetch as out of range; `leader_log_start` and
    /// `leader_log_end` come from its answer. Returns where the local log
    /// must restart: fully truncated at the leader's log start when the
    /// follower is behind it, otherwise cut to the leader's end.
    pub fn on_offset_out_of_range(
        &mut self,
        log: &impl LocalLog,
        leader_log_start: u64,
        leader_log_end: u64,
    ) -> Truncation {
        if log.log_end() > leader_log_end {
            Truncation { offset: leader_log_end }
        } else {
            Truncation {
                offset: leader_log_start,
            }
        }
    }
}

/// A follower's high watermark after a fetch: the leader's, capped at what
/// it has itself.
pub fn follower_high_watermark(leader_high_watermark: u64, log_end: u64) -> u64 {
    leader_high_watermark.min(log_end)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log as (epoch, start offset) entries and an end.
    struct Epochs {
        entries: Vec<(i32, u64)>,
        end: u64,
        hw: u64,
    }

    impl LocalLog for Epochs {
        fn log_end(&self) -> u64 {
            self.end
        }
        fn high_watermark(&self) -> u64 {
            self.hw
        }
        fn latest_epoch(&self) -> Option<i32> {
            self.entries.last().map(|e| e.0)
        }
        fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, u64)> {
            let i = self.entries.iter().rposition(|e| e.0 <= epoch)?;
            let end = self.entries.get(i + 1).map_or(self.end, |e| e.1);
            Some((self.entries[i].0, end))
        }
    }

    #[test]
    fn diverged_tail_is_cut_where_the_leaders_epoch_ends() {
        // Follower: epoch 1 from 0, epoch 2 from 5, end 9. Leader has
        // epoch 2 ending at 7 (then epoch 3).
        let log = Epochs {
            entries: vec![(1, 0), (2, 5)],
            end: 9,
            hw: 4,
        };
        let mut f = FollowerPartition::new(2, 3);
        assert_eq!(f.next_request(&log).0, FollowerRequest::EpochEndOffset { epoch: 2 });
        let cut = f.on_epoch_end(
            2,
            Ok(EpochEnd {
                epoch: Some(2),
                end_offset: Some(7),
            }),
            &log,
        );
        assert_eq!(cut, Some(Truncation { offset: 7 }));
        assert!(f.is_fetching());
        let late = EpochEnd {
            epoch: Some(1),
            end_offset: Some(3),
        };
        assert_eq!(f.on_epoch_end(2, Ok(late), &log), None, "a late answer changes nothing");
    }

    #[test]
    fn a_log_of_only_newer_epochs_than_the_leaders_keeps_only_what_is_committed() {
        // The follower led epoch 1 (nothing committed: HW 0); the new
        // leader never had epoch 1 and has epoch 0 up to 4. Found by the
        // simulation with reassignments: cutting at the leader's end (2
        // here) kept a diverging tail.
        let log = Epochs {
            entries: vec![(1, 0)],
            end: 2,
            hw: 0,
        };
        let mut f = FollowerPartition::new(3, 4);
        let answer = EpochEnd {
            epoch: Some(0),
            end_offset: Some(4),
        };
        assert_eq!(f.on_epoch_end(1, Ok(answer), &log), Some(Truncation { offset: 0 }));
    }

    #[test]
    fn an_epoch_the_leader_never_had_is_cut_then_the_older_one_asked() {
        // Follower wrote epoch 2 as a leader nobody followed; the leader
        // answers with epoch 1 ending at 6.
        let mut log = Epochs {
            entries: vec![(1, 0), (2, 5)],
            end: 9,
            hw: 4,
        };
        let mut f = FollowerPartition::new(2, 3);
        let answer = EpochEnd {
            epoch: Some(1),
            end_offset: Some(6),
        };
        // Follower's epoch 1 ends at 5: cut there; done since it has epoch 1.
        assert_eq!(f.on_epoch_end(2, Ok(answer), &log), Some(Truncation { offset: 5 }));
        assert!(f.is_fetching());
        // A follower whose older epoch differs from the leader's goes round again.
        log.entries = vec![(0, 0), (2, 5)];
        let mut f = FollowerPartition::new(2, 3);
        assert_eq!(f.on_epoch_end(1, Ok(answer), &log), None, "asked about another epoch");
        assert_eq!(f.on_epoch_end(2, Ok(answer), &log), Some(Truncation { offset: 5 }));
        assert!(!f.is_fetching());
    }

    #[test]
    fn undefined_answers_fall_back_and_errors_retry() {
        let log = Epochs {
            entries: vec![(1, 0)],
            end: 9,
            hw: 4,
        };
        let mut f = FollowerPartition::new(2, 3);
        assert_eq!(
            f.on_epoch_end(1, Err(ReplicationError::NotLeaderOrFollower), &log),
            None
        );
        assert!(!f.is_fetching());
        let undefined = EpochEnd {
            epoch: None,
            end_offset: None,
        };
        assert_eq!(f.on_epoch_end(1, Ok(undefined), &log), Some(Truncation { offset: 4 }));
        assert_eq!(f.next_request(&log).0, FollowerRequest::Fetch { offset: 9 });
    }

    #[test]
    fn a_log_without_epochs_fetches_from_its_high_watermark() {
        let log = Epochs {
            entries: vec![],
            end: 3,
            hw: 1,
        };
        let mut f = FollowerPartition::new(2, 0);
        let (request, cut) = f.next_request(&log);
        assert_eq!(request, FollowerRequest::Fetch { offset: 1 });
        assert_eq!(cut, Some(Truncation { offset: 1 }));
        assert_eq!(follower_high_watermark(10, 1), 1);
    }
}
