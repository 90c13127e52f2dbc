//! The madsim engine. Each simulated node is a madsim node running one task that hosts its
//! model; crash, restart and pause are madsim's `kill`, `restart` and `pause`.
//!
//! Scheduling is conservative and windowed: no message sent at `t` arrives before
//! `t + lookahead` (the smallest one-way latency), so every node can handle all of its inputs
//! and timers in `[t, t + lookahead)` without hearing from another node in between. The driver
//! opens a window, hands each node its inputs, wakes only the nodes with work, waits for them,
//! then routes what they sent. One madsim wake-up per busy node per window, not per message.

use std::collections::BTreeSet;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use models::{Effect, Model, NodeId, SimTime};

use crate::runner::{Inbound, Runner};
use crate::world::{NodeControl, Status, World};

/// Builds a node's model for an incarnation from its durable state.
pub type Factory<M> = Arc<dyn Fn(NodeId, <M as Model>::Durable) -> M + Send + Sync>;

struct Slot<M: Model> {
    rung: bool,
    waker: Option<Waker>,
    start_pending: bool,
    incarnation: u32,
    durable: M::Durable,
    inbox: Vec<Inbound<M::Msg>>,
    effects: Vec<Effect<M::Msg>>,
    snapshots: Vec<(u64, M::Durable)>,
    next_timer: Option<SimTime>,
}

struct Shared<M: Model> {
    window: (SimTime, SimTime),
    slots: Vec<Slot<M>>,
    /// Every node's next timer as (time, node), so the driver finds the next busy node
    /// without scanning all of them each window.
    timers: BTreeSet<(SimTime, usize)>,
    /// Set when a restart or resume may have left a node with work outside `timers` (a start
    /// pending, an inbox filled while paused): the next window scans every node once.
    rescan: bool,
    /// Nodes woken for this window that have not finished it.
    pending: usize,
    driver: Option<Waker>,
}

type SharedRef<M> = Arc<Mutex<Shared<M>>>;

impl<M: Model> Shared<M> {
    /// Every node not yet started, none woken.
    fn new(n: usize) -> Shared<M> {
        Shared {
            window: (SimTime::ZERO, SimTime::ZERO),
            slots: (0..n)
                .map(|_| Slot {
                    rung: false,
                    waker: None,
                    start_pending: true,
                    incarnation: 0,
                    durable: M::Durable::default(),
                    inbox: Vec::new(),
                    effects: Vec::new(),
                    snapshots: Vec::new(),
                    next_timer: None,
                })
                .collect(),
            timers: BTreeSet::new(),
            rescan: true,
            pending: 0,
            driver: None,
        }
    }

    /// When a running node next has work: now, if a restart or resume may have left one with
    /// work outside `timers`; otherwise its earliest timer.
    fn next_busy(&self, world: &World<M>) -> Option<SimTime> {
        let up = |i: usize| world.nodes[i].status == Status::Up;
        let forced = self.rescan
            && (0..self.slots.len()).any(|i| up(i) && (self.slots[i].start_pending || !self.slots[i].inbox.is_empty()));
        if forced { Some(world.now) } else { self.timers.iter().find(|&&(_, i)| up(i)).map(|&(at, _)| at) }
    }

    /// Opens `window`: hands each node the inputs due before its end, and rings the bell of
    /// every running node with work in it; `woken` gets those nodes, in id order.
    fn open_window(
        &mut self,
        world: &mut World<M>,
        window: (SimTime, SimTime),
        woken: &mut Vec<usize>,
        stats: &mut EngineStats,
    ) {
        self.window = window;
        woken.clear();
        while let Some((to, input)) = world.pop_due(window.1) {
            self.slots[to as usize].inbox.push(input);
            woken.push(to as usize);
            stats.events += 1;
        }
        woken.extend(self.timers.range(..(window.1, 0)).map(|&(_, i)| i));
        if mem::take(&mut self.rescan) {
            let n = self.slots.len();
            woken.extend((0..n).filter(|&i| self.slots[i].start_pending || !self.slots[i].inbox.is_empty()));
        }
        woken.sort_unstable();
        woken.dedup();
        // Paused nodes keep their inbox and timers for when they resume.
        woken.retain(|&i| world.nodes[i].status == Status::Up);
        for &i in woken.iter() {
            let slot = &mut self.slots[i];
            slot.start_pending = false;
            slot.rung = true;
            if let Some(w) = slot.waker.take() {
                w.wake();
            }
        }
        self.pending += woken.len();
        stats.node_wakeups += woken.len() as u64;
        stats.events += woken.len() as u64;
    }

    /// Hands the world what the woken nodes produced in the window, in id order.
    fn collect(&mut self, world: &mut World<M>, woken: &[usize]) {
        for &i in woken {
            let slot = &mut self.slots[i];
            if !slot.effects.is_empty() {
                world.collect(i as NodeId, &mut slot.effects, &mut slot.snapshots);
            }
        }
    }

    fn set_next_timer(&mut self, i: usize, next: Option<SimTime>) {
        let slot = &mut self.slots[i];
        if slot.next_timer == next {
            return;
        }
        if let Some(old) = slot.next_timer {
            self.timers.remove(&(old, i));
        }
        if let Some(new) = next {
            self.timers.insert((new, i));
        }
        slot.next_timer = next;
    }
}

fn lock<M: Model>(s: &SharedRef<M>) -> std::sync::MutexGuard<'_, Shared<M>> {
    // A poisoned lock means a node panicked; madsim re-raises that panic from block_on.
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// Resolves when the driver rings this node's bell.
struct Doorbell<'a, M: Model> {
    shared: &'a SharedRef<M>,
    id: usize,
}

impl<M: Model> Future for Doorbell<'_, M> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = lock(self.shared);
        let slot = &mut s.slots[self.id];
        if mem::take(&mut slot.rung) {
            Poll::Ready(())
        } else {
            slot.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// Resolves when every woken node has finished the window.
struct AllDone<'a, M: Model>(&'a SharedRef<M>);

impl<M: Model> Future for AllDone<'_, M> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = lock(self.0);
        if s.pending == 0 {
            Poll::Ready(())
        } else {
            s.driver = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// The task of one node incarnation.
async fn node_main<M: Model>(shared: SharedRef<M>, id: NodeId, seed: u64, factory: Factory<M>) {
    let i = id as usize;
    let (incarnation, durable) = {
        let s = lock(&shared);
        (s.slots[i].incarnation, s.slots[i].durable.clone())
    };
    let mut runner = Runner::new(id, factory(id, durable), seed, incarnation);
    let mut inbox = Vec::new();
    loop {
        Doorbell { shared: &shared, id: i }.await;
        let (start, end) = {
            let mut s = lock(&shared);
            mem::swap(&mut inbox, &mut s.slots[i].inbox);
            s.window
        };
        runner.run_window(inbox.drain(..), start, end);
        let mut s = lock(&shared);
        let next_timer = runner.next_timer();
        let slot = &mut s.slots[i];
        debug_assert!(slot.effects.is_empty() && slot.snapshots.is_empty());
        mem::swap(&mut slot.effects, &mut runner.effects);
        mem::swap(&mut slot.snapshots, &mut runner.snapshots);
        s.set_next_timer(i, next_timer);
        s.pending -= 1;
        if s.pending == 0
            && let Some(w) = s.driver.take()
        {
            w.wake();
        }
    }
}

/// One madsim node per simulated node, each running `node_main`; their madsim ids.
fn spawn_nodes<M>(
    handle: &madsim::runtime::Handle,
    world: &World<M>,
    shared: &SharedRef<M>,
    factory: &Factory<M>,
) -> Vec<madsim::task::NodeId>
where
    M: Model + 'static,
    M::Msg: Send + 'static,
    M::Durable: Send + 'static,
{
    let seed = world.seed;
    (0..world.nodes.len())
        .map(|id| {
            let (sh, f) = (shared.clone(), factory.clone());
            let node = handle
                .create_node()
                .name(world.names[id].clone())
                .init(move || node_main(sh.clone(), id as NodeId, seed, f.clone()))
                .build();
            node.id()
        })
        .collect()
}

struct MadsimControl<M: Model> {
    handle: madsim::runtime::Handle,
    ids: Vec<madsim::task::NodeId>,
    shared: SharedRef<M>,
}

impl<M: Model> NodeControl<M> for MadsimControl<M> {
    fn crash(&mut self, node: NodeId) {
        self.handle.kill(self.ids[node as usize]);
        let mut s = lock(&self.shared);
        s.set_next_timer(node as usize, None);
        let slot = &mut s.slots[node as usize];
        slot.inbox.clear();
        slot.waker = None;
        slot.rung = false;
        slot.start_pending = false;
    }

    fn restart(&mut self, node: NodeId, incarnation: u32, durable: &M::Durable) {
        {
            let mut s = lock(&self.shared);
            let slot = &mut s.slots[node as usize];
            slot.incarnation = incarnation;
            slot.durable = durable.clone();
            slot.start_pending = true;
            slot.waker = None;
            s.rescan = true;
        }
        // Re-runs the node's init closure: a fresh task with a fresh model.
        self.handle.restart(self.ids[node as usize]);
    }

    fn pause(&mut self, node: NodeId) {
        self.handle.pause(self.ids[node as usize]);
    }

    fn resume(&mut self, node: NodeId) {
        lock(&self.shared).rescan = true;
        self.handle.resume(self.ids[node as usize]);
    }
}

/// Counters about the engine itself, for benchmarks and the run guard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub windows: u64,
    pub node_wakeups: u64,
    /// Inputs delivered (messages, disk completions) plus node wake-ups: the work of a run,
    /// what `--max-events` bounds.
    pub events: u64,
    /// Why the run ended before its scenario's duration, if the guard stopped it.
    pub stopped: Option<Stop>,
}

/// Why the run guard ended a run early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// More than this many events (inputs delivered plus node wake-ups).
    Events { max: u64, at: SimTime },
    /// The wall-clock limit passed (seen at this simulated time).
    Wall { at: SimTime },
}

/// Limits on one run's work. The event limit is counted in the driver, deterministically; the
/// wall-clock limit is a flag that a thread outside the simulation raises (the simulation never
/// reads a clock), looked at once per window. Neither changes the trace of a run it does not stop.
#[derive(Clone, Debug, Default)]
pub struct Guard {
    pub max_events: Option<u64>,
    pub wall_expired: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl Guard {
    fn check(&self, stats: &EngineStats, at: SimTime) -> Option<Stop> {
        if let Some(max) = self.max_events
            && stats.events > max
        {
            return Some(Stop::Events { max, at });
        }
        let expired = self.wall_expired.as_ref().is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed));
        expired.then_some(Stop::Wall { at })
    }
}

/// Runs `world` to its end on the current madsim runtime.
pub async fn drive<M>(world: &mut World<M>, factory: Factory<M>) -> EngineStats
where
    M: Model + 'static,
    M::Msg: Send + 'static,
    M::Durable: Send + 'static,
{
    drive_guarded(world, factory, &Guard::default()).await
}

/// Runs `world` to its end, or until `guard` stops it (`EngineStats::stopped`).
pub async fn drive_guarded<M>(world: &mut World<M>, factory: Factory<M>, guard: &Guard) -> EngineStats
where
    M: Model + 'static,
    M::Msg: Send + 'static,
    M::Durable: Send + 'static,
{
    let handle = madsim::runtime::Handle::current();
    let shared: SharedRef<M> = Arc::new(Mutex::new(Shared::new(world.nodes.len())));
    let ids = spawn_nodes(&handle, world, &shared, &factory);
    let mut ctl = MadsimControl { handle, ids, shared: shared.clone() };
    let lookahead = world.lookahead();
    let origin = madsim::time::Instant::now();
    // The next simulated time at which madsim's clock is brought forward (at most once per ms:
    // its timers have a 1 ms floor, and reading its clock costs a system call).
    let mut next_clock_sync = SimTime::ZERO;
    let mut stats = EngineStats::default();
    let never = SimTime::MAX;

    // Nodes woken in the current window, in id order (the order effects are collected in).
    let mut woken: Vec<usize> = Vec::new();
    loop {
        let t_nodes = lock(&shared).next_busy(world).unwrap_or(never);
        let t_action = world.next_action().unwrap_or(never);
        let t = t_nodes.min(world.next_delivery().unwrap_or(never)).min(t_action).max(world.now);
        if t >= world.end {
            break;
        }
        stats.stopped = guard.check(&stats, t);
        if stats.stopped.is_some() {
            break;
        }
        if t_action <= t {
            world.run_actions(t, &mut ctl);
            continue;
        }
        let window_end = (t + lookahead).min(t_action).min(world.end);
        world.now = t;
        // Keep madsim's clock with ours (to within its 1 ms timer floor), so madsim's own
        // time limit and logs agree with simulated time.
        if t >= next_clock_sync {
            madsim::time::sleep_until(origin + Duration::from_nanos(t.0)).await;
            next_clock_sync = t + Duration::from_millis(1);
        }
        lock(&shared).open_window(world, (t, window_end), &mut woken, &mut stats);
        AllDone(&shared).await;
        stats.windows += 1;
        lock(&shared).collect(world, &woken);
        world.flush_events();
    }
    if stats.stopped.is_none() {
        world.now = world.end;
        world.run_actions(world.end, &mut ctl);
    }
    world.finish();
    // Kill every node so that madsim drops their tasks, and with them the models: a dropped
    // runtime does not free tasks still waiting, so a worker that runs seed after seed grew
    // by every run's models (~45 MB per 2020 run).
    for &id in &ctl.ids {
        ctl.handle.kill(id);
    }
    stats
}
