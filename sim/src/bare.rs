//! A plain binary-heap event loop over the same `World`: one event at a time, no madsim. It is
//! the yardstick the engine's speed is measured against, and a cross-check of the engine's
//! windowed scheduling (both must produce the same deliveries and measurements).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use models::{Model, NodeId, SimTime};

use crate::runner::{Inbound, Runner};
use crate::world::{NodeControl, Status, World};

struct BareControl<'f, M: Model> {
    runners: Vec<Option<Runner<M>>>,
    held: Vec<Vec<Inbound<M::Msg>>>,
    factory: &'f dyn Fn(NodeId, M::Durable) -> M,
    seed: u64,
    /// Nodes to (re)start at the current time.
    to_start: Vec<NodeId>,
}

impl<M: Model> NodeControl<M> for BareControl<'_, M> {
    fn crash(&mut self, node: NodeId) {
        self.runners[node as usize] = None;
        self.held[node as usize].clear();
    }
    fn restart(&mut self, node: NodeId, incarnation: u32, durable: &M::Durable) {
        let model = (self.factory)(node, durable.clone());
        self.runners[node as usize] = Some(Runner::new(node, model, self.seed, incarnation));
        self.to_start.push(node);
    }
    fn pause(&mut self, _node: NodeId) {}
    fn resume(&mut self, node: NodeId) {
        self.to_start.push(node);
    }
}

/// Runs `world` to its end; returns the number of handler invocations.
pub fn run<M: Model>(world: &mut World<M>, factory: &dyn Fn(NodeId, M::Durable) -> M) -> u64 {
    let n = world.nodes.len();
    let mut ctl = BareControl {
        runners: (0..n)
            .map(|i| Some(Runner::new(i as NodeId, factory(i as NodeId, M::Durable::default()), world.seed, 0)))
            .collect(),
        held: (0..n).map(|_| Vec::new()).collect(),
        factory,
        seed: world.seed,
        to_start: (0..n as NodeId).collect(),
    };
    let mut timers: BinaryHeap<Reverse<(SimTime, NodeId)>> = BinaryHeap::new();
    let mut steps = 0u64;
    let never = SimTime::MAX;

    // After a node ran: hand its effects to the world and remember its next timer.
    let settle = |world: &mut World<M>, ctl: &mut BareControl<'_, M>, timers: &mut BinaryHeap<_>, id: NodeId| {
        let r = ctl.runners[id as usize].as_mut().expect("settle a live node");
        world.collect(id, &mut r.effects, &mut r.snapshots);
        if let Some(t) = r.next_timer() {
            timers.push(Reverse((t, id)));
        }
        world.flush_events();
    };

    loop {
        for id in std::mem::take(&mut ctl.to_start) {
            if world.nodes[id as usize].status != Status::Up {
                continue;
            }
            let now = world.now;
            let held = std::mem::take(&mut ctl.held[id as usize]);
            let r = ctl.runners[id as usize].as_mut().expect("up node has a runner");
            // Like the engine: inputs that waited during a pause are handled now, in order.
            r.run_window(held, now, SimTime(now.0 + 1));
            steps += 1;
            settle(world, &mut ctl, &mut timers, id);
        }
        // Drop timer entries that no longer match their node's next deadline.
        while let Some(&Reverse((t, id))) = timers.peek() {
            let live = world.nodes[id as usize].status == Status::Up
                && ctl.runners[id as usize].as_mut().and_then(|r| r.next_timer()) == Some(t);
            if live {
                break;
            }
            timers.pop();
        }
        let t_timer = timers.peek().map_or(never, |Reverse((t, _))| *t);
        let t_msg = world.next_delivery().unwrap_or(never);
        let t_action = world.next_action().unwrap_or(never);
        let t = t_timer.min(t_msg).min(t_action);
        if t >= world.end {
            break;
        }
        world.now = world.now.max(t);
        if t_action <= t {
            world.run_actions(t, &mut ctl);
            continue;
        }
        if t_msg <= t_timer {
            let Some((to, input)) = world.pop_due(SimTime(t.0 + 1)) else { continue };
            if world.nodes[to as usize].status == Status::Paused {
                ctl.held[to as usize].push(input);
                continue;
            }
            ctl.runners[to as usize].as_mut().expect("up node has a runner").deliver(input, world.now);
            steps += 1;
            settle(world, &mut ctl, &mut timers, to);
        } else {
            let Reverse((t, id)) = timers.pop().expect("peeked");
            if world.nodes[id as usize].status == Status::Paused {
                // Fires on resume (run_window handles overdue timers).
                continue;
            }
            ctl.runners[id as usize].as_mut().expect("up node has a runner").fire_one(SimTime(t.0 + 1), world.now);
            steps += 1;
            settle(world, &mut ctl, &mut timers, id);
        }
    }
    world.now = world.end;
    world.run_actions(world.end, &mut ctl);
    world.finish();
    steps
}
