//! Requests other brokers make of the controller (Kafka's
//! ControlledShutdown), handed from the request pipeline to the controller
//! that runs in this process while it holds the office. Brokers that are
//! not the controller answer NOT_CONTROLLER.

use gregor_log::TopicPartition;
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

/// Where controller requests go while this broker is the controller.
#[derive(Debug, Default)]
pub struct ControllerInbox {
    open: Mutex<Option<mpsc::UnboundedSender<ShutdownAsk>>>,
}

impl ControllerInbox {
    /// Opens the inbox for the controller taking office here; asks go to
    /// the receiver until [`ControllerInbox::close`] or the receiver drops.
    pub fn open(&self) -> mpsc::UnboundedReceiver<ShutdownAsk> {
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
        let (reply, answer) = oneshot::channel();
        let ask = ShutdownAsk {
            broker_id,
            broker_epoch,
            reply,
        };
        let refused = match self.open.lock().as_ref() {
            Some(sender) => sender.send(ask).err().map(|e| e.0),
            None => Some(ask),
        };
        if let Some(ask) = refused {
            let _ = ask.reply.send(Err(ResponseError::NotController));
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
        let ask = receiver.try_recv().unwrap();
        assert_eq!((ask.broker_id, ask.broker_epoch), (1, 5));
        drop(receiver);
        let mut dropped = inbox.controlled_shutdown(1, 5);
        assert_eq!(dropped.try_recv().unwrap(), Err(ResponseError::NotController));
        inbox.close();
    }
}
