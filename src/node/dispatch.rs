//! From engine outputs to I/O and back: the one loop every input goes through.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::protocol::engine::{Done, Engine, Input, Output, Ticket};

use super::{Inner, lock};

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl Inner {
    pub(super) fn engine(&self) -> std::sync::MutexGuard<'_, Engine> {
        lock(&self.engine)
    }

    /// Feeds `input` to the engine and carries out what it returns. Store reads and writes
    /// are awaited here (so whoever feeds an inbound message waits for its store work: the
    /// inbound limit is backpressure); sends, requests and timers run beside.
    pub(super) fn feed(self: &Arc<Self>, input: Input) -> Boxed<()> {
        let this = self.clone();
        Box::pin(async move {
            let outputs = this.handle(input);
            this.carry_out(outputs).await;
        })
    }

    /// The engine's outputs for `input`; received saves are numbered in the engine's
    /// order while its lock is held (see [`super::pending_keys`]).
    fn handle(&self, input: Input) -> Vec<Output> {
        let mut engine = self.engine();
        let outputs = engine.handle(input, self.clock.now());
        if let Some(keys) = &self.keys {
            keys.1.register(&outputs);
        }
        outputs
    }

    /// Feeds `input` to the engine now, in the caller's order, and returns the rest (its
    /// I/O) to run beside: inbound messages reach the engine in the order they were read,
    /// so one peer's pushes are judged in seq order even when their saves overlap.
    pub(super) fn feed_in_order(self: &Arc<Self>, input: Input) -> Boxed<()> {
        let outputs = self.handle(input);
        let this = self.clone();
        Box::pin(async move { this.carry_out(outputs).await })
    }

    async fn carry_out(self: &Arc<Self>, outputs: Vec<Output>) {
        let mut store_io: Vec<Boxed<Input>> = Vec::new();
        for out in outputs {
            match out {
                Output::Send { to, message } => self.send(to, message),
                Output::Request {
                    to,
                    exchange,
                    message,
                    timeout,
                } => self.request(to, exchange, message, timeout),
                Output::Respond { request, message } => self.respond(request, message),
                Output::Fetch {
                    fetch,
                    wants,
                    limit,
                } => store_io.push(Box::pin(self.clone().fetch(fetch, wants, limit))),
                Output::Save {
                    save,
                    events,
                    own,
                    from,
                } => store_io.push(Box::pin(self.clone().save(save, events, own, from))),
                Output::Reserve { up_to } => {
                    store_io.push(Box::pin(self.clone().reserve(up_to)));
                }
                Output::CheckEphemeral { from, ephemeral } => {
                    store_io.push(Box::pin(self.clone().check_ephemeral(from, ephemeral)));
                }
                Output::ScheduleTimer { at, timer } => self.schedule(at, timer),
                Output::Emit(e) => self.streams.emit(e),
                Output::Done { ticket, done } => self.answer(ticket, done),
            }
        }
        if store_io.is_empty() {
            return;
        }
        let answers = futures::future::join_all(store_io).await;
        futures::future::join_all(answers.into_iter().map(|a| self.feed(a))).await;
    }

    /// A fresh id for tickets and requests.
    pub(super) fn next_id(&self) -> u64 {
        self.next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Feeds a command and waits for its answer (`None` if the engine dropped it).
    pub(super) async fn command(
        self: &Arc<Self>,
        make: impl FnOnce(Ticket) -> Input,
    ) -> Option<Done> {
        let ticket = self.next_id();
        let (tx, rx) = tokio::sync::oneshot::channel();
        lock(&self.waiting).insert(ticket, tx);
        self.feed(make(ticket)).await;
        let done = rx.await.ok();
        lock(&self.waiting).remove(&ticket);
        done
    }

    /// Feeds a command to the engine now, under its lock, so commands queued one after
    /// the other reach it in that order; the returned future carries out what it asked
    /// for and waits for the answer (`None` if the engine dropped it). Lets a caller have
    /// many own events in flight, in order, for the engine to group.
    pub(super) fn command_queued(
        self: &Arc<Self>,
        make: impl FnOnce(Ticket) -> Input,
    ) -> Boxed<Option<Done>> {
        let ticket = self.next_id();
        let (tx, rx) = tokio::sync::oneshot::channel();
        lock(&self.waiting).insert(ticket, tx);
        let outputs = self.engine().handle(make(ticket), self.clock.now());
        let this = self.clone();
        Box::pin(async move {
            this.carry_out(outputs).await;
            let done = rx.await.ok();
            lock(&this.waiting).remove(&ticket);
            done
        })
    }

    fn answer(&self, ticket: Ticket, done: Done) {
        if let Some(tx) = lock(&self.waiting).remove(&ticket) {
            let _ = tx.send(done);
        }
    }
}
