//! Everything outside the nodes: the network, the disks, the delivery queue, the fault
//! timeline, metrics and the trace. Both the madsim engine and the bare reference loop drive
//! the models through this, so they differ only in how node handlers are scheduled.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::Duration;

use models::trace::{DropReason, NodeRef, TraceKind};
use models::{Effect, Label, Message, Model, NodeId, ProcessDown, SimTime};
use scenarios::{Fault, FaultKind, Scope};

use crate::disk::Disk;
use crate::metrics::Metrics;
use crate::net::{Network, Verdict};
use crate::runner::Inbound;
use crate::trace::{Detail, Trace};

pub const METRIC_DELIVERED: &str = "net_delivered";
pub const METRIC_DROPPED: &str = "net_dropped";
pub const METRIC_DELIVERY_MS: &str = "net_delivery_ms";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Up,
    Paused,
    Down,
}

pub enum Payload<M: Model> {
    Msg(M::Msg),
    Disk {
        op: models::DiskOp,
        token: u64,
        result: Result<(), models::DiskError>,
        incarnation: u32,
        durable: Option<M::Durable>,
    },
}

/// An entry of the delivery queue. Ordered by (time, receiver, class, sender, sequence on that
/// link), a key that does not depend on the order in which senders were scheduled.
pub struct Delivery<M: Model> {
    pub at: SimTime,
    pub to: NodeId,
    pub from: NodeId,
    pub seq: u64,
    pub payload: Payload<M>,
}

impl<M: Model> Delivery<M> {
    pub fn key(&self) -> crate::queue::Key {
        let class = matches!(self.payload, Payload::Disk { .. }) as u8;
        (self.at, self.to, class, self.from, self.seq)
    }
}
impl<M: Model> PartialEq for Delivery<M> {
    fn eq(&self, o: &Self) -> bool {
        self.key() == o.key()
    }
}
impl<M: Model> Eq for Delivery<M> {}
impl<M: Model> PartialOrd for Delivery<M> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<M: Model> Ord for Delivery<M> {
    fn cmp(&self, o: &Self) -> Ordering {
        self.key().cmp(&o.key())
    }
}

/// A disk operation in flight: its kind and, for an fsync, the durable snapshot it will save.
type DiskInFlight<M> = (models::DiskOp, Option<<M as Model>::Durable>);

/// Makes the messages that start (`true`) or end a fault acting inside a model.
pub type ModelFaults<M> = fn(&FaultKind, bool) -> Vec<(NodeId, <M as Model>::Msg)>;

/// Driver actions on the timeline. At one instant they run in this order: the second that
/// ends is rolled up first, then faults that end, then faults that start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Roll up metrics of the second that ends here.
    MetricsTick(u64),
    FaultEnd(u32),
    FaultStart(u32),
    Flap {
        fault: u32,
        down: bool,
    },
    /// Test hook for the tool's own crash handling (`pgsim run --debug-panic-at`).
    DebugPanic,
    /// An operator action of the scenario (index into `World::operator`).
    Operator(u32),
}

/// An operator action, already turned into the messages it injects (each delivered to a
/// node as if from itself).
pub struct OperatorAction<M: Model> {
    pub at: SimTime,
    pub description: String,
    pub inject: Vec<(NodeId, M::Msg)>,
}

/// What a fault does to nodes; the engine implements it with madsim's kill/restart/pause.
pub trait NodeControl<M: Model> {
    fn crash(&mut self, node: NodeId);
    /// Start a new incarnation from what the node had fsynced.
    fn restart(&mut self, node: NodeId, incarnation: u32, durable: &M::Durable);
    fn pause(&mut self, node: NodeId);
    fn resume(&mut self, node: NodeId);
}

pub struct NodeMeta<M: Model> {
    pub status: Status,
    /// Set while only the process is down (`process-crash`, `process-pause`): the host's
    /// kernel still answers for it (`Message::kernel_answer`).
    pub process_down: Option<ProcessDown>,
    pub incarnation: u32,
    /// What the node has fsynced; a restart starts from this.
    pub durable: M::Durable,
}

pub struct World<M: Model> {
    pub seed: u64,
    pub end: SimTime,
    pub names: Vec<String>,
    pub faults: Vec<Fault>,
    pub net: Network,
    pub disks: Vec<Disk>,
    pub metrics: Metrics,
    pub trace: Trace,
    pub nodes: Vec<NodeMeta<M>>,
    pub now: SimTime,
    pub faults_injected: u32,
    queue: crate::queue::DeliveryQueue<M>,
    link_seq: Vec<u64>,
    disk_seq: u64,
    link_seq_operator: u64,
    operator: Vec<OperatorAction<M>>,
    /// Turns faults that act inside a model (apply-slow, walreceiver-pause) into the messages
    /// that start (`true`) or end them.
    pub model_faults: Option<ModelFaults<M>>,
    /// Disk operations in flight: their kind and, for fsyncs, the durable snapshot.
    disk_ops: std::collections::BTreeMap<(NodeId, u64), DiskInFlight<M>>,
    actions: BinaryHeap<Reverse<(SimTime, Action)>>,
    fault_active: Vec<bool>,
    /// Trace events of the current window, sorted by time before they are recorded.
    pending_events: Vec<(SimTime, Option<NodeId>, TraceKind)>,
}

impl<M: Model> World<M> {
    /// A world at time zero (`crate::build` makes its parts from a scenario), its timeline
    /// holding the end of every second; faults and operator actions are scheduled next.
    pub fn new(seed: u64, end: SimTime, names: Vec<String>, net: Network, disks: Vec<Disk>, trace: Trace) -> World<M> {
        let n = names.len();
        let mut actions = BinaryHeap::new();
        for s in 1..=end.0 / 1_000_000_000 {
            actions.push(Reverse((SimTime(s * 1_000_000_000), Action::MetricsTick(s - 1))));
        }
        World {
            seed,
            end,
            faults: Vec::new(),
            disks,
            net,
            metrics: Metrics::default(),
            trace,
            nodes: (0..n)
                .map(|_| NodeMeta {
                    status: Status::Up,
                    process_down: None,
                    incarnation: 0,
                    durable: M::Durable::default(),
                })
                .collect(),
            now: SimTime::ZERO,
            faults_injected: 0,
            queue: Default::default(),
            link_seq: vec![0; n * n],
            disk_seq: 0,
            link_seq_operator: 0,
            operator: Vec::new(),
            model_faults: None,
            disk_ops: Default::default(),
            actions,
            fault_active: Vec::new(),
            pending_events: Vec::new(),
            names,
        }
    }

    /// Puts a fault on the timeline: its start, and its end if it heals. Faults come in the
    /// order of their indices.
    pub fn schedule_fault(&mut self, f: Fault) {
        assert_eq!(f.index as usize, self.faults.len(), "faults are scheduled in index order");
        self.actions.push(Reverse((SimTime::from_duration(f.at), Action::FaultStart(f.index))));
        if let Some(u) = f.until {
            self.actions.push(Reverse((SimTime::from_duration(u), Action::FaultEnd(f.index))));
        }
        self.faults.push(f);
        self.fault_active.push(false);
    }

    pub fn schedule_operator(&mut self, action: OperatorAction<M>) {
        self.actions.push(Reverse((action.at, Action::Operator(self.operator.len() as u32))));
        self.operator.push(action);
    }

    /// Schedules a deliberate panic (to test how the tool reports internal errors).
    pub fn schedule_debug_panic(&mut self, at: SimTime) {
        self.actions.push(Reverse((at, Action::DebugPanic)));
    }

    pub fn lookahead(&self) -> Duration {
        self.net.lookahead()
    }

    pub fn next_delivery(&self) -> Option<SimTime> {
        self.queue.next_at()
    }

    /// Messages routed but not yet delivered (at the end of a run: still on the wire).
    pub fn messages_in_flight(&self) -> usize {
        self.queue.messages()
    }

    pub fn next_action(&self) -> Option<SimTime> {
        self.actions.peek().map(|Reverse((t, _))| *t)
    }

    fn event(&mut self, at: SimTime, node: Option<NodeId>, kind: TraceKind) {
        self.pending_events.push((at, node, kind));
    }

    /// Records the buffered events in time order (stable, so equal times keep their order).
    pub fn flush_events(&mut self) {
        self.pending_events.sort_by_key(|(t, _, _)| *t);
        for (t, node, kind) in self.pending_events.drain(..) {
            self.trace.push(t, node, kind);
        }
    }

    fn dropped(&mut self, at: SimTime, from: NodeId, to: NodeId, msg: &M::Msg, reason: DropReason, via: Option<u16>) {
        self.metrics.count(METRIC_DROPPED, Label::Tag(reason.as_str()), 1);
        let via = via.map(|s| self.net.switch_name(s).to_string());
        let kind =
            TraceKind::MessageDropped { from: NodeRef(from), to: NodeRef(to), msg: msg.label().into(), reason, via };
        self.event(at, Some(from), kind);
    }

    /// Applies one effect a node produced. `snapshot` is the durable state for an fsync.
    pub fn apply(&mut self, node: NodeId, effect: Effect<M::Msg>, snapshot: Option<M::Durable>) {
        match effect {
            Effect::Send { at, to, msg } => self.transmit(at, node, to, msg),
            Effect::Disk { at, op, token } => {
                let incarnation = self.nodes[node as usize].incarnation;
                self.disk_ops.insert((node, token), (op, snapshot));
                if let Some(c) = self.disks[node as usize].submit(at, op, token) {
                    self.push_disk(node, token, c, incarnation);
                }
            }
            Effect::Trace { at, kind } => self.event(at, Some(node), kind),
            Effect::Count { metric, label, delta, .. } => self.metrics.count(metric, label, delta),
            Effect::Observe { metric, label, value, count, .. } => self.metrics.observe_n(metric, label, value, count),
        }
    }
}

impl<M: Model> World<M> {
    /// Puts a message on the network from `from` to `to`: queued for delivery, or dropped.
    fn transmit(&mut self, at: SimTime, from: NodeId, to: NodeId, msg: M::Msg) {
        assert!((to as usize) < self.nodes.len(), "send to unknown node {to}");
        match self.net.route(at, from, to, msg.size_bytes()) {
            Verdict::Deliver(when) => {
                assert!(when >= at + self.lookahead(), "delivery inside the lookahead window");
                if self.trace.detail == Detail::Messages {
                    let kind = TraceKind::MessageSent {
                        to: NodeRef(to),
                        msg: msg.label().into(),
                        bytes: msg.size_bytes(),
                        deliver_at_ns: when.0,
                    };
                    self.event(at, Some(from), kind);
                }
                let i = from as usize * self.nodes.len() + to as usize;
                if let Some(again) = self.net.duplicate(from, to, when) {
                    self.link_seq[i] += 1;
                    let seq = self.link_seq[i];
                    self.queue.push(Delivery { at: again, to, from, seq, payload: Payload::Msg(msg.clone()) });
                }
                self.link_seq[i] += 1;
                let seq = self.link_seq[i];
                self.queue.push(Delivery { at: when, to, from, seq, payload: Payload::Msg(msg) });
            }
            Verdict::Drop(reason, via) => self.dropped(at, from, to, &msg, reason, via),
        }
    }

    fn push_disk(&mut self, node: NodeId, token: u64, c: crate::disk::Completion, incarnation: u32) {
        let (op, durable) = self.disk_ops.remove(&(node, token)).expect("disk op registered");
        self.disk_seq += 1;
        let durable = if c.result.is_ok() { durable } else { None };
        let payload = Payload::Disk { op, token, result: c.result, incarnation, durable };
        self.queue.push(Delivery { at: c.at, to: node, from: node, seq: self.disk_seq, payload });
    }

    /// Pops the next delivery due before `before` that a node will receive. Messages to a
    /// crashed node are dropped (and traced); completions of a previous incarnation's disk
    /// requests vanish. Returns the receiver and the input.
    pub fn pop_due(&mut self, before: SimTime) -> Option<(NodeId, Inbound<M::Msg>)> {
        while let Some(d) = self.queue.pop_before(before) {
            let meta = &mut self.nodes[d.to as usize];
            match d.payload {
                Payload::Msg(msg) => {
                    let process_down = if meta.status == Status::Up { None } else { meta.process_down };
                    if meta.status == Status::Down && process_down.is_none() {
                        self.dropped(d.at, d.from, d.to, &msg, DropReason::NodeDown, None);
                        continue;
                    }
                    // Cut while in flight (operator injections travel no path).
                    if d.from != d.to
                        && let Some((_, via)) = self.net.cut(d.from, d.to)
                    {
                        self.dropped(d.at, d.from, d.to, &msg, DropReason::CutInFlight, via);
                        continue;
                    }
                    if let Some(process) = process_down
                        && self.kernel_answers(d.at, d.from, d.to, &msg, process)
                    {
                        continue;
                    }
                    self.metrics.count(METRIC_DELIVERED, Label::None, 1);
                    return Some((d.to, Inbound::Msg { at: d.at, from: d.from, msg }));
                }
                Payload::Disk { op, token, result, incarnation, durable } => {
                    if meta.status == Status::Down || meta.incarnation != incarnation {
                        continue;
                    }
                    if let Err(error) = result {
                        self.event(d.at, Some(d.to), TraceKind::DiskFailed { op, error });
                    }
                    let meta = &mut self.nodes[d.to as usize];
                    if let Some(durable) = durable {
                        meta.durable = durable;
                    }
                    return Some((d.to, Inbound::Disk { at: d.at, token, result }));
                }
            }
        }
        None
    }

    /// A message reached a host whose process is down: the kernel answers for it where TCP
    /// would (the answer travels back over the network), and a dead process's messages go no
    /// further. Returns whether the message was consumed; a stopped process's others wait in
    /// its inbox.
    fn kernel_answers(&mut self, at: SimTime, from: NodeId, to: NodeId, msg: &M::Msg, process: ProcessDown) -> bool {
        let answer = msg.kernel_answer(process);
        if process == ProcessDown::Dead {
            self.dropped(at, from, to, msg, DropReason::Refused, None);
        }
        let consumed = answer.is_some() || process == ProcessDown::Dead;
        if let Some(answer) = answer {
            self.transmit(at, to, from, answer);
        }
        consumed
    }

    /// Runs every timeline action due at or before `t`.
    pub fn run_actions(&mut self, t: SimTime, ctl: &mut dyn NodeControl<M>) {
        while let Some(&Reverse((at, action))) = self.actions.peek() {
            if at > t {
                break;
            }
            self.actions.pop();
            self.now = self.now.max(at);
            self.run_action(at, action, ctl);
        }
        self.flush_events();
    }

    fn run_action(&mut self, at: SimTime, action: Action, ctl: &mut dyn NodeControl<M>) {
        match action {
            Action::MetricsTick(second) => {
                let rows = self.metrics.flush_second(&self.names);
                if !rows.is_empty() {
                    self.event(at, None, TraceKind::Metrics { second, rows });
                }
            }
            Action::FaultStart(i) => self.fault_start(at, i, ctl),
            Action::DebugPanic => panic!("debug panic requested at {at}"),
            Action::Operator(i) => {
                let action = &mut self.operator[i as usize];
                let inject = std::mem::take(&mut action.inject);
                let description = action.description.clone();
                for (to, msg) in inject {
                    self.link_seq_operator += 1;
                    let seq = self.link_seq_operator;
                    self.queue.push(Delivery { at, to, from: to, seq, payload: Payload::Msg(msg) });
                }
                self.event(at, None, TraceKind::OperatorAction { action: description });
            }
            Action::FaultEnd(i) => self.fault_end(at, i, ctl),
            Action::Flap { fault, down } => {
                if !self.fault_active[fault as usize] {
                    return;
                }
                let f = self.faults[fault as usize].clone();
                let (period, down_for) = match f.kind {
                    FaultKind::LinkFlapping { period, down_for, .. }
                    | FaultKind::SwitchFlapping { period, down_for, .. } => (period, down_for),
                    _ => unreachable!("only flapping faults flap"),
                };
                if down {
                    self.net.activate(fault, &f.kind);
                    self.actions.push(Reverse((at + down_for, Action::Flap { fault, down: false })));
                } else {
                    self.net.deactivate(fault);
                    self.actions.push(Reverse((at + (period - down_for), Action::Flap { fault, down: true })));
                }
                self.event(at, None, TraceKind::Flapped { fault, down });
            }
        }
    }

    fn fault_start(&mut self, at: SimTime, i: u32, ctl: &mut dyn NodeControl<M>) {
        let f = self.faults[i as usize].clone();
        self.fault_active[i as usize] = true;
        self.faults_injected += 1;
        let detail = crate::describe::fault(&f, &self.names, &self.net);
        self.event(at, None, TraceKind::FaultStarted { fault: i, fault_kind: f.kind.name().into(), detail });
        match f.kind {
            FaultKind::Partition { .. }
            | FaultKind::LinkDown { .. }
            | FaultKind::LinkDegraded { .. }
            | FaultKind::SwitchDown { .. }
            | FaultKind::SwitchDegraded { .. } => self.net.activate(i, &f.kind),
            FaultKind::LinkFlapping { .. } | FaultKind::SwitchFlapping { .. } => {
                self.actions.push(Reverse((at, Action::Flap { fault: i, down: true })));
            }
            FaultKind::NodeCrash { node, scope } => {
                if self.nodes[node as usize].status != Status::Down {
                    self.nodes[node as usize].process_down = (scope == Scope::Process).then_some(ProcessDown::Dead);
                }
                self.crash(at, node, ctl)
            }
            FaultKind::NodePause { node, scope } => {
                if self.nodes[node as usize].status == Status::Up {
                    self.nodes[node as usize].status = Status::Paused;
                    self.nodes[node as usize].process_down = (scope == Scope::Process).then_some(ProcessDown::Stopped);
                    ctl.pause(node);
                    self.event(at, Some(node), TraceKind::NodePaused);
                }
            }
            FaultKind::DiskStall { node } => self.disks[node as usize].stall_start(i),
            FaultKind::DiskErrors { node, error_ratio } => self.disks[node as usize].errors_start(i, error_ratio),
            FaultKind::DiskFull { node } => self.disks[node as usize].full_start(i),
            FaultKind::DiskSlow { node, factor } => self.disks[node as usize].slow_start(i, factor),
            FaultKind::ApplySlow { .. } | FaultKind::WalReceiverPause { .. } => {
                self.inject_model_fault(at, &f.kind, true)
            }
        }
    }

    fn fault_end(&mut self, at: SimTime, i: u32, ctl: &mut dyn NodeControl<M>) {
        if !self.fault_active[i as usize] {
            return;
        }
        self.fault_active[i as usize] = false;
        let f = self.faults[i as usize].clone();
        self.event(at, None, TraceKind::FaultHealed { fault: i, fault_kind: f.kind.name().into() });
        match f.kind {
            FaultKind::NodeCrash { node, .. } => self.restart(at, node, ctl),
            FaultKind::NodePause { node, .. } => {
                if self.nodes[node as usize].status == Status::Paused {
                    self.nodes[node as usize].status = Status::Up;
                    self.nodes[node as usize].process_down = None;
                    ctl.resume(node);
                    self.event(at, Some(node), TraceKind::NodeResumed);
                }
            }
            FaultKind::DiskStall { node } => {
                let incarnation = self.nodes[node as usize].incarnation;
                for (token, c) in self.disks[node as usize].stall_end(i, at) {
                    self.push_disk(node, token, c, incarnation);
                }
            }
            FaultKind::DiskErrors { node, .. } | FaultKind::DiskFull { node } | FaultKind::DiskSlow { node, .. } => {
                self.disks[node as usize].heal(i)
            }
            FaultKind::ApplySlow { .. } | FaultKind::WalReceiverPause { .. } => {
                self.inject_model_fault(at, &f.kind, false)
            }
            _ => self.net.deactivate(i),
        }
    }

    fn inject_model_fault(&mut self, at: SimTime, kind: &FaultKind, start: bool) {
        let make = self.model_faults.expect("model faults need an injector");
        for (to, msg) in make(kind, start) {
            self.link_seq_operator += 1;
            let seq = self.link_seq_operator;
            self.queue.push(Delivery { at, to, from: to, seq, payload: Payload::Msg(msg) });
        }
    }

    fn crash(&mut self, at: SimTime, node: NodeId, ctl: &mut dyn NodeControl<M>) {
        if self.nodes[node as usize].status == Status::Down {
            return;
        }
        self.nodes[node as usize].status = Status::Down;
        self.disks[node as usize].crash();
        self.disk_ops.retain(|(n, _), _| *n != node);
        ctl.crash(node);
        self.event(at, Some(node), TraceKind::NodeCrashed);
    }

    fn restart(&mut self, at: SimTime, node: NodeId, ctl: &mut dyn NodeControl<M>) {
        let meta = &mut self.nodes[node as usize];
        if meta.status != Status::Down {
            return;
        }
        meta.status = Status::Up;
        meta.process_down = None;
        meta.incarnation += 1;
        let incarnation = meta.incarnation;
        ctl.restart(node, incarnation, &meta.durable);
        self.event(at, Some(node), TraceKind::NodeRestarted { incarnation });
    }

    /// Collects what a node produced during a window, in the order it produced it.
    pub fn collect(&mut self, node: NodeId, effects: &mut Vec<Effect<M::Msg>>, snapshots: &mut Vec<(u64, M::Durable)>) {
        let mut snaps = snapshots.drain(..);
        for e in effects.drain(..) {
            let snapshot = match &e {
                Effect::Disk { op: models::DiskOp::Fsync, token, .. } => {
                    let (t, s) = snaps.next().expect("one snapshot per fsync");
                    assert_eq!(t, *token);
                    Some(s)
                }
                _ => None,
            };
            self.apply(node, e, snapshot);
        }
    }

    /// Ends the run: the last partial second of metrics and the closing event.
    pub fn finish(&mut self) {
        let rows = self.metrics.flush_second(&self.names);
        let end = self.end;
        if !rows.is_empty() {
            self.event(end, None, TraceKind::Metrics { second: end.0 / 1_000_000_000, rows });
        }
        self.flush_events();
        self.trace.finish(end);
        self.trace.push(end, None, TraceKind::RunFinished { sim_ns: end.0 });
    }
}
