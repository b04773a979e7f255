//! The coordinator tests' harness: a state machine leading the only
//! `__transaction_state` partition, with its writes acked on request and
//! producer ids from a counter.

#![allow(dead_code)] // each test file uses part of it

use gregor_log::TopicPartition;
use gregor_transaction::records::{key_bytes, value_bytes, TransactionLogValue};
use gregor_transaction::{
    MarkerRequest, Output, ProducerIdAndEpoch, RequestId, Response, StoredRecord, TransactionError, TransactionResult,
    TransactionSettings, TransactionState, TransactionStateMachine, TransactionVersion, Write,
};

pub const TX: &str = "tx";
pub const TIMEOUT: i32 = 60_000;

/// A machine leading the only `__transaction_state` partition, acking
/// writes on request, with a counter for producer ids.
pub struct Harness {
    pub m: TransactionStateMachine,
    pub now: i64,
    pub next_pid: i64,
    pub fail_ids: bool,
    pub next_request: u64,
    pub writes: Vec<Write>,
    pub markers: Vec<MarkerRequest>,
    pub answers: Vec<(RequestId, Response)>,
    /// The records of every acked write, in order.
    pub log: Vec<StoredRecord>,
}

impl Harness {
    pub fn new() -> Self {
        Self::at_level(0)
    }

    /// A harness whose coordinator runs its own aborts at
    /// `transaction.version` `level`.
    pub fn at_level(level: u8) -> Self {
        let settings = TransactionSettings {
            state_log_partitions: 1,
            transaction_version: level,
            ..Default::default()
        };
        let mut h = Self {
            m: TransactionStateMachine::new(settings),
            now: 1_000,
            next_pid: 100,
            fail_ids: false,
            next_request: 0,
            writes: Vec::new(),
            markers: Vec::new(),
            answers: Vec::new(),
            log: Vec::new(),
        };
        h.m.begin_load(0, 1);
        h.m.load(0, 1, &[], h.now);
        h
    }

    /// Lets `ms` pass and runs the machine's timers (timeouts,
    /// expiration, retries), taking what they put out.
    pub fn tick_after(&mut self, ms: i64) {
        self.now += ms;
        let out = self.m.tick(self.now);
        self.take(out);
    }

    pub fn take(&mut self, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Respond { request, response } => self.answers.push((request, response)),
                Output::Write(w) => self.writes.push(w),
                Output::SendMarkers(m) => self.markers.push(m),
            }
        }
    }

    pub fn request(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    /// Acks (`ok`) or fails every write out, repeatedly, until none is left.
    pub fn settle(&mut self, ok: bool) {
        while let Some(w) = self.writes.pop() {
            let result = if ok {
                Ok(())
            } else {
                Err(TransactionError::CoordinatorNotAvailable)
            };
            if ok {
                self.log.extend(w.records.iter().cloned());
            }
            let out = self.m.persisted(w.id, result, self.now);
            self.take(out);
        }
    }

    /// The coordinator moves: a new machine loads the acked records (at
    /// coordinator epoch 2); writes and markers out are dropped.
    pub fn failover(&mut self) {
        self.m = TransactionStateMachine::new(self.m.settings().clone());
        self.writes.clear();
        self.markers.clear();
        self.m.begin_load(0, 2);
        let out = self.m.load(0, 2, &self.log, self.now);
        self.take(out);
    }

    pub fn answer(&mut self, r: RequestId) -> Option<Response> {
        let i = self.answers.iter().position(|(id, _)| *id == r)?;
        Some(self.answers.remove(i).1)
    }

    pub fn init_with(
        &mut self,
        expected: Option<ProducerIdAndEpoch>,
        ok: bool,
    ) -> Result<ProducerIdAndEpoch, TransactionError> {
        let r = self.request();
        let (mut next, fail) = (self.next_pid, self.fail_ids);
        let mut ids = || {
            if fail {
                return Err(TransactionError::CoordinatorLoadInProgress);
            }
            next += 1;
            Ok(next)
        };
        let out = self
            .m
            .init_producer_id(r, Some(TX), TIMEOUT, expected, self.now, &mut ids);
        self.next_pid = next;
        self.take(out);
        self.settle(ok);
        match self.answer(r) {
            Some(Response::InitProducerId(result)) => result,
            other => panic!("InitProducerId answered {other:?}"),
        }
    }

    pub fn init(&mut self) -> Result<ProducerIdAndEpoch, TransactionError> {
        self.init_with(None, true)
    }

    pub fn add(&mut self, p: ProducerIdAndEpoch, partitions: &[u32]) -> Result<(), TransactionError> {
        self.add_as(p, partitions, TransactionVersion::V0)
    }

    /// AddPartitionsToTxn under `version`, its write acked.
    pub fn add_as(
        &mut self,
        p: ProducerIdAndEpoch,
        partitions: &[u32],
        version: TransactionVersion,
    ) -> Result<(), TransactionError> {
        let r = self.request();
        let parts: Vec<TopicPartition> = partitions.iter().map(|i| TopicPartition::new("t", *i)).collect();
        let out = self
            .m
            .add_partitions(r, TX, p.producer_id, p.producer_epoch, parts.clone(), version, self.now);
        self.take(out);
        self.settle(true);
        match self.answer(r) {
            Some(Response::AddPartitions(results)) => {
                assert_eq!(results.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(), parts);
                results.into_iter().map(|(_, r)| r).next().unwrap_or(Ok(()))
            }
            other => panic!("AddPartitions answered {other:?}"),
        }
    }

    /// EndTxn, its Prepare write acked; markers are left out.
    pub fn end(&mut self, p: ProducerIdAndEpoch, result: TransactionResult) -> Result<(), TransactionError> {
        let answer = self.end_as(p, result, TransactionVersion::V0);
        if let Ok(producer) = answer {
            assert_eq!(producer, ProducerIdAndEpoch::NONE, "version 0 answers no producer");
        }
        answer.map(|_| ())
    }

    /// EndTxn under `version`, its Prepare write acked; markers are left
    /// out.
    pub fn end_as(
        &mut self,
        p: ProducerIdAndEpoch,
        result: TransactionResult,
        version: TransactionVersion,
    ) -> Result<ProducerIdAndEpoch, TransactionError> {
        let r = self.request();
        let fail = self.fail_ids;
        let mut ids = || {
            if fail {
                return Err(TransactionError::CoordinatorLoadInProgress);
            }
            self.next_pid += 1;
            Ok(self.next_pid)
        };
        let out = self.m.end_txn(
            r,
            TX,
            p.producer_id,
            p.producer_epoch,
            result,
            version,
            self.now,
            &mut ids,
        );
        self.take(out);
        self.settle(true);
        match self.answer(r) {
            Some(Response::EndTxn(result)) => result,
            other => panic!("EndTxn answered {other:?}"),
        }
    }

    /// Every marker request out is delivered; completions are written.
    pub fn deliver_markers(&mut self) {
        while let Some(m) = self.markers.pop() {
            let out = self.m.markers_written(m.id);
            self.take(out);
            self.settle(true);
        }
    }

    pub fn state(&self) -> (TransactionState, i64, i16) {
        let d = self.m.describe(&[TX.to_string()]).remove(0).1.expect("described");
        (d.state, d.producer_id, d.producer_epoch)
    }
}

pub fn pe(producer_id: i64, producer_epoch: i16) -> ProducerIdAndEpoch {
    ProducerIdAndEpoch {
        producer_id,
        producer_epoch,
    }
}
/// A machine whose id `TX` is stored at `epoch`, in `state`.
pub fn loaded_at(epoch: i16, state: TransactionState) -> Harness {
    loaded_into(Harness::new(), epoch, state, 0)
}

/// `h`'s machine with `TX` stored at `epoch`, in `state`, last added to
/// or ended under client transaction version `client_version`.
pub fn loaded_into(mut h: Harness, epoch: i16, state: TransactionState, client_version: i16) -> Harness {
    let value = TransactionLogValue {
        producer_id: 50,
        producer_epoch: epoch,
        timeout_ms: TIMEOUT,
        status: state.id(),
        partitions: (state != TransactionState::Empty).then(|| vec![("t".to_string(), vec![0])]),
        last_update_ms: h.now,
        start_ms: if state == TransactionState::Empty { -1 } else { h.now },
        previous_producer_id: -1,
        next_producer_id: -1,
        client_transaction_version: client_version,
    };
    h.m.begin_load(0, 2);
    let out = h.m.load(0, 2, &[(key_bytes(TX), Some(value_bytes(&value)))], h.now);
    h.take(out);
    h
}
