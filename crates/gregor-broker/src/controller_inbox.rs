//! Requests for the controller (Kafka's ControlledShutdown from brokers;
//! AlterPartitionReassignments, ListPartitionReassignments and
//! ElectLeaders from administrators), handed from the request pipeline to
//! the controller that runs in this process while it holds the office.
//! Brokers that are not the controller answer NOT_CONTROLLER.

use gregor_log::TopicPartition;
use gregor_replication::{ElectionKind, Reassignment};
use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

/// A broker asking to be shut down in a controlled way: the controller
/// moves its leaderships and answers with the partitions it still leads.
#[derive(Debug)]
pub struct ShutdownAsk {
    /// The broker stopping.
    pub broker_id: i32,
    /// Its broker epoch (-1: not sent, ControlledShutdown v0–1).
    pub broker_epoch: i64,
    /// The partitions it still leads, or why the controller refused.
    pub reply: oneshot::Sender<Result<Vec<TopicPartition>, ResponseError>>,
}

/// One partition's outcome: done, or an error with a message.
pub type PartitionOutcome = (TopicPartition, Result<(), (ResponseError, Option<String>)>);

/// The controller's answer: a result, or why it could not serve at all.
pub type Reply<T> = oneshot::Sender<Result<T, ResponseError>>;

/// A reassignment in progress as ListPartitionReassignments shows it:
/// the partition, its full replica set and what is added and removed.
pub type ReassignmentListing = (TopicPartition, Vec<i32>, Reassignment);

/// What is asked of the controller.
#[derive(Debug)]
pub enum ControllerAsk {
    /// A broker's controlled shutdown.
    Shutdown(ShutdownAsk),
    /// Reassign partitions to new replicas (`None`: cancel).
    Reassign {
        /// The partitions and their target replicas.
        partitions: Vec<(TopicPartition, Option<Vec<i32>>)>,
        /// Each partition's outcome.
        reply: Reply<Vec<PartitionOutcome>>,
    },
    /// List the reassignments in progress (`None`: all).
    ListReassignments {
        /// The partitions asked about.
        partitions: Option<Vec<TopicPartition>>,
        /// Those of them being reassigned.
        reply: Reply<Vec<ReassignmentListing>>,
    },
    /// Elect leaders (`None`: every partition).
    Elect {
        /// Preferred or unclean.
        kind: ElectionKind,
        /// The partitions.
        partitions: Option<Vec<TopicPartition>>,
        /// Each partition's outcome.
        reply: Reply<Vec<PartitionOutcome>>,
    },
}

impl ControllerAsk {
    /// Answers NOT_CONTROLLER.
    fn refuse(self) {
        let e = ResponseError::NotController;
        match self {
            ControllerAsk::Shutdown(ask) => drop(ask.reply.send(Err(e))),
            ControllerAsk::Reassign { reply, .. } | ControllerAsk::Elect { reply, .. } => drop(reply.send(Err(e))),
            ControllerAsk::ListReassignments { reply, .. } => drop(reply.send(Err(e))),
        }
    }
}

/// Where controller requests go while this broker is the controller.
#[derive(Debug, Default)]
pub struct ControllerInbox {
    open: Mutex<Option<mpsc::UnboundedSender<ControllerAsk>>>,
}

impl ControllerInbox {
    /// Opens the inbox for the controller taking office here; asks go to
    /// the receiver until [`ControllerInbox::close`] or the receiver drops.
    pub fn open(&self) -> mpsc::UnboundedReceiver<ControllerAsk> {
        let (sender, receiver) = mpsc::unbounded_channel();
        *self.open.lock() = Some(sender);
        receiver
    }

    /// Closes the inbox: this broker is no longer the controller.
    pub fn close(&self) {
        *self.open.lock() = None;
    }

    /// Hands a controlled shutdown to the controller; its answer, or
    /// NOT_CONTROLLER at once when the controller is not here.
    pub fn controlled_shutdown(
        &self,
        broker_id: i32,
        broker_epoch: i64,
    ) -> oneshot::Receiver<Result<Vec<TopicPartition>, ResponseError>> {
        self.ask(|reply| {
            ControllerAsk::Shutdown(ShutdownAsk {
                broker_id,
                broker_epoch,
                reply,
            })
        })
    }

    /// Hands a reassignment to the controller.
    pub fn reassign(
        &self,
        partitions: Vec<(TopicPartition, Option<Vec<i32>>)>,
    ) -> oneshot::Receiver<Result<Vec<PartitionOutcome>, ResponseError>> {
        self.ask(|reply| ControllerAsk::Reassign { partitions, reply })
    }

    /// Asks the controller for the reassignments in progress.
    pub fn list_reassignments(
        &self,
        partitions: Option<Vec<TopicPartition>>,
    ) -> oneshot::Receiver<Result<Vec<ReassignmentListing>, ResponseError>> {
        self.ask(|reply| ControllerAsk::ListReassignments { partitions, reply })
    }

    /// Asks the controller for leader elections.
    pub fn elect(
        &self,
        kind: ElectionKind,
        partitions: Option<Vec<TopicPartition>>,
    ) -> oneshot::Receiver<Result<Vec<PartitionOutcome>, ResponseError>> {
        self.ask(|reply| ControllerAsk::Elect {
            kind,
            partitions,
            reply,
        })
    }

    /// Sends an ask built around a reply channel; refused at once with
    /// NOT_CONTROLLER when the controller is not here.
    fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> ControllerAsk) -> oneshot::Receiver<Result<T, ResponseError>> {
        let (reply, answer) = oneshot::channel();
        let ask = make(reply);
        let refused = match self.open.lock().as_ref() {
            Some(sender) => sender.send(ask).err().map(|e| e.0),
            None => Some(ask),
        };
        if let Some(ask) = refused {
            ask.refuse();
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_reach_the_open_inbox_and_are_refused_otherwise() {
        let inbox = ControllerInbox::default();
        let mut closed = inbox.controlled_shutdown(1, 5);
        assert_eq!(closed.try_recv().unwrap(), Err(ResponseError::NotController));
        let mut receiver = inbox.open();
        let _answer = inbox.controlled_shutdown(1, 5);
        let Ok(ControllerAsk::Shutdown(ask)) = receiver.try_recv() else {
            panic!("a controlled shutdown")
        };
        assert_eq!((ask.broker_id, ask.broker_epoch), (1, 5));
        drop(receiver);
        let mut dropped = inbox.controlled_shutdown(1, 5);
        assert_eq!(dropped.try_recv().unwrap(), Err(ResponseError::NotController));
        inbox.close();
    }
}
