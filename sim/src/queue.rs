//! The delivery queue: a binary heap of small (key, slot) pairs over a slab of deliveries.
//! A heap of whole deliveries (a message is ~120 bytes) moved them at every sift; this one
//! moves 40-byte keys and leaves each delivery where it was stored until it is popped.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use models::{Model, NodeId, SimTime};

use crate::world::{Delivery, Payload};

/// (time, receiver, class, sender, sequence on that link): unique, so the order of pops does
/// not depend on the heap's shape or on the order of pushes.
pub type Key = (SimTime, NodeId, u8, NodeId, u64);

pub struct DeliveryQueue<M: Model> {
    heap: BinaryHeap<Reverse<(Key, u32)>>,
    slots: Vec<Option<Delivery<M>>>,
    free: Vec<u32>,
}

impl<M: Model> Default for DeliveryQueue<M> {
    fn default() -> Self {
        DeliveryQueue { heap: BinaryHeap::new(), slots: Vec::new(), free: Vec::new() }
    }
}

impl<M: Model> DeliveryQueue<M> {
    pub fn push(&mut self, d: Delivery<M>) {
        let key = d.key();
        let slot = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(d);
                i
            }
            None => {
                self.slots.push(Some(d));
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 deliveries in flight")
            }
        };
        self.heap.push(Reverse((key, slot)));
    }

    /// When the earliest delivery is due.
    pub fn next_at(&self) -> Option<SimTime> {
        self.heap.peek().map(|Reverse((k, _))| k.0)
    }

    /// The earliest delivery, if it is due before `before`.
    pub fn pop_before(&mut self, before: SimTime) -> Option<Delivery<M>> {
        if self.next_at()? >= before {
            return None;
        }
        let Reverse((_, slot)) = self.heap.pop().expect("peeked");
        self.free.push(slot);
        Some(self.slots[slot as usize].take().expect("a queued slot holds its delivery"))
    }

    /// Messages (not disk completions) queued.
    pub fn messages(&self) -> usize {
        self.slots.iter().flatten().filter(|d| matches!(d.payload, Payload::Msg(_))).count()
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::Delivery;
    use models::probe::Probe;

    fn d(at: u64, to: NodeId, from: NodeId, seq: u64) -> Delivery<Probe> {
        let msg = models::probe::ProbeMsg::Ping { seq, sent_at: SimTime::ZERO, bytes: 64 };
        Delivery { at: SimTime(at), to, from, seq, payload: Payload::Msg(msg) }
    }

    #[test]
    fn pops_in_key_order_whatever_the_push_order_and_reuses_slots() {
        let mut q = DeliveryQueue::default();
        for (at, to, from, seq) in [(5, 1, 0, 0), (3, 2, 0, 0), (5, 0, 1, 0), (3, 2, 0, 1), (9, 0, 0, 0)] {
            q.push(d(at, to, from, seq));
        }
        assert_eq!(q.next_at(), Some(SimTime(3)));
        let mut got = Vec::new();
        while let Some(x) = q.pop_before(SimTime(6)) {
            got.push((x.at.0, x.to, x.from, x.seq));
        }
        assert_eq!(got, [(3, 2, 0, 0), (3, 2, 0, 1), (5, 0, 1, 0), (5, 1, 0, 0)]);
        assert_eq!((q.len(), q.messages()), (1, 1), "the one at 9 is not due before 6");
        q.push(d(7, 0, 0, 1));
        assert_eq!(q.slots.len(), 5, "freed slots are reused");
        assert_eq!(q.pop_before(SimTime(100)).map(|x| x.at.0), Some(7));
        assert_eq!(q.pop_before(SimTime(100)).map(|x| x.at.0), Some(9));
        assert!(q.is_empty() && q.pop_before(SimTime(100)).is_none());
    }
}
