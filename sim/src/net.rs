//! pgsim's own network layer: per directed path latency (base + jitter), loss, bandwidth, and
//! the network faults (partitions, cut/degraded/flapping links, dead/degraded/flapping switches).
//! Pure: the driver asks `route` what happens to a message and gets a verdict.

use std::time::Duration;

use models::rng::{SimRng, Stream, stream_rng};
use models::trace::DropReason;
use models::{NodeId, SimTime};
use rand::Rng;
use scenarios::FaultKind;

/// One switch crossed by a path, with the ports the packet enters and leaves by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hop {
    pub switch: u16,
    pub port_in: u16,
    pub port_out: u16,
}

#[derive(Clone, Debug)]
pub(crate) struct PathSpec {
    pub base_latency_ns: u64,
    pub jitter_ns: u64,
    pub loss_ratio: f64,
    /// Bandwidth resource shared by this path (index into `busy_until`) and its rate.
    pub bandwidth: Option<(usize, u64)>,
    pub hops: Vec<Hop>,
}

/// The network's fixed shape, made from the scenario by `crate::build::network`.
pub(crate) struct Topology {
    pub nodes: usize,
    pub switch_names: Vec<String>,
    /// Port names per switch, to resolve the ports of degraded-switch faults.
    pub switch_ports: Vec<Vec<String>>,
    /// One per ordered pair of nodes: `paths[from * n + to]`.
    pub paths: Vec<PathSpec>,
    /// How many shared bandwidth resources the paths' `bandwidth` indices name.
    pub bandwidth_resources: usize,
}

/// What active faults do to one directed path; recomputed whenever a fault changes.
#[derive(Clone, Debug, Default)]
struct PathState {
    blocked: Option<(DropReason, Option<u16>)>,
    extra_loss_ratio: f64,
    extra_latency_ns: u64,
    /// Degraded links: a further uniform delay up to this per message (reordering them), and
    /// the share of messages delivered twice. Drawn only when set, so that paths without them
    /// draw the same random numbers as before these existed.
    extra_jitter_ns: u64,
    duplicate_ratio: f64,
    /// Loss from degraded switches on the path, and the first such switch (for the trace).
    switch_loss_ratio: f64,
    switch_loss_via: Option<u16>,
}

/// A network fault in force now (flapping ones only while in their down phase).
#[derive(Clone, Debug)]
struct Active {
    fault: u32,
    kind: FaultKind,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    Deliver(SimTime),
    Drop(DropReason, Option<u16>),
}

pub struct Network {
    n: usize,
    seed: u64,
    switch_names: Vec<String>,
    /// Port names per switch, to resolve the ports of degraded-switch faults.
    switch_ports: Vec<Vec<String>>,
    paths: Vec<PathSpec>,
    state: Vec<PathState>,
    rngs: Vec<Option<SimRng>>,
    busy_until: Vec<SimTime>,
    active: Vec<Active>,
    lookahead_ns: u64,
}

impl Network {
    pub(crate) fn new(topology: Topology, seed: u64) -> Network {
        let Topology { nodes: n, switch_names, switch_ports, paths, bandwidth_resources } = topology;
        assert_eq!(n * n, paths.len(), "one path per ordered pair of nodes");
        let lookahead_ns = (0..n)
            .flat_map(|f| (0..n).filter(move |&t| t != f).map(move |t| f * n + t))
            .map(|i| paths[i].base_latency_ns)
            .min()
            .unwrap_or(1_000_000);
        assert!(lookahead_ns > 0, "validation guarantees positive latencies");
        Network {
            n,
            seed,
            switch_names,
            switch_ports,
            state: vec![PathState::default(); n * n],
            rngs: (0..n * n).map(|_| None).collect(),
            busy_until: vec![SimTime::ZERO; bandwidth_resources],
            paths,
            active: Vec::new(),
            lookahead_ns,
        }
    }

    /// The smallest one-way latency of any path: no message sent at `t` arrives before
    /// `t + lookahead`, which is what lets the engine run nodes in parallel windows.
    pub fn lookahead(&self) -> Duration {
        Duration::from_nanos(self.lookahead_ns)
    }

    /// The bandwidth limit of the path from `from` to `to`, if any.
    pub fn path_bandwidth(&self, from: NodeId, to: NodeId) -> Option<u64> {
        self.paths[from as usize * self.n + to as usize].bandwidth.map(|(_, bps)| bps)
    }

    pub fn switch_name(&self, sw: u16) -> &str {
        &self.switch_names[sw as usize]
    }

    /// What happens to `bytes` sent from `from` to `to` at `at`.
    pub fn route(&mut self, at: SimTime, from: NodeId, to: NodeId, bytes: u64) -> Verdict {
        let (from, to) = (from as usize, to as usize);
        assert!(from < self.n && to < self.n && from != to, "route {from}->{to} out of range");
        let i = from * self.n + to;
        let seed = self.seed;
        let rng =
            self.rngs[i].get_or_insert_with(|| stream_rng(seed, Stream::Link { from: from as u32, to: to as u32 }));
        let (spec, state) = (&self.paths[i], &self.state[i]);
        if let Some((reason, via)) = state.blocked {
            return Verdict::Drop(reason, via);
        }
        let loss = 1.0 - (1.0 - spec.loss_ratio) * (1.0 - state.extra_loss_ratio);
        if loss > 0.0 && rng.r#gen::<f64>() < loss {
            return Verdict::Drop(DropReason::Loss, None);
        }
        if state.switch_loss_ratio > 0.0 && rng.r#gen::<f64>() < state.switch_loss_ratio {
            return Verdict::Drop(DropReason::SwitchDegraded, state.switch_loss_via);
        }
        let jitter_ns = if spec.jitter_ns > 0 { rng.gen_range(0..=spec.jitter_ns) } else { 0 };
        let jitter_ns =
            jitter_ns + if state.extra_jitter_ns > 0 { rng.gen_range(0..=state.extra_jitter_ns) } else { 0 };
        let mut depart = at;
        if let Some((res, bytes_per_s)) = spec.bandwidth {
            // Serialisation on a shared link: wait for the link, then occupy it for bytes/rate.
            let start = depart.max(self.busy_until[res]);
            let transmit_ns = (bytes as u128 * 1_000_000_000 / bytes_per_s as u128) as u64;
            self.busy_until[res] = SimTime(start.0 + transmit_ns);
            depart = self.busy_until[res];
        }
        Verdict::Deliver(SimTime(depart.0 + spec.base_latency_ns + state.extra_latency_ns + jitter_ns))
    }

    /// Whether a message that `route` delivers at `first` is delivered a second time, and when:
    /// a degraded link's `duplicate_ratio`, the copy up to its jitter (or the path's latency,
    /// if larger) after the original.
    pub fn duplicate(&mut self, from: NodeId, to: NodeId, first: SimTime) -> Option<SimTime> {
        let i = from as usize * self.n + to as usize;
        let state = &self.state[i];
        if state.duplicate_ratio <= 0.0 {
            return None;
        }
        let spread_ns = state.extra_jitter_ns.max(self.paths[i].base_latency_ns);
        let ratio = state.duplicate_ratio;
        let rng = self.rngs[i].as_mut().expect("route drew on this path first");
        rng.gen_bool(ratio).then(|| SimTime(first.0 + rng.gen_range(0..=spread_ns)))
    }

    /// Whether the path is cut now (partition, link or switch down): a message still in flight
    /// on it (on the wire, or queued behind a slow link) is lost.
    pub fn cut(&self, from: NodeId, to: NodeId) -> Option<(DropReason, Option<u16>)> {
        self.state[from as usize * self.n + to as usize].blocked
    }

    /// A network fault starts (or a flapping one enters its down phase).
    pub fn activate(&mut self, fault: u32, kind: &FaultKind) {
        self.active.push(Active { fault, kind: kind.clone() });
        self.recompute();
    }

    pub fn deactivate(&mut self, fault: u32) {
        self.active.retain(|a| a.fault != fault);
        self.recompute();
    }

    fn recompute(&mut self) {
        let n = self.n;
        for s in &mut self.state {
            *s = PathState::default();
        }
        for a in &self.active {
            let block = |state: &mut Vec<PathState>, f: usize, t: usize, reason, via| {
                let s = &mut state[f * n + t];
                if s.blocked.is_none() {
                    s.blocked = Some((reason, via));
                }
            };
            match &a.kind {
                FaultKind::Partition { from, to, one_way } => {
                    for &f in from {
                        for &t in to {
                            if f != t {
                                block(&mut self.state, f as usize, t as usize, DropReason::Partition, None);
                                if !one_way {
                                    block(&mut self.state, t as usize, f as usize, DropReason::Partition, None);
                                }
                            }
                        }
                    }
                }
                FaultKind::LinkDown { a, b, one_way } | FaultKind::LinkFlapping { a, b, one_way, .. } => {
                    block(&mut self.state, *a as usize, *b as usize, DropReason::LinkDown, None);
                    if !one_way {
                        block(&mut self.state, *b as usize, *a as usize, DropReason::LinkDown, None);
                    }
                }
                FaultKind::LinkDegraded { a, b, one_way, loss_ratio, extra_latency, extra_jitter, duplicate_ratio } => {
                    let mut dirs = vec![(*a as usize, *b as usize)];
                    if !one_way {
                        dirs.push((*b as usize, *a as usize));
                    }
                    for (f, t) in dirs {
                        let s = &mut self.state[f * n + t];
                        s.extra_loss_ratio = 1.0 - (1.0 - s.extra_loss_ratio) * (1.0 - loss_ratio);
                        s.extra_latency_ns += extra_latency.as_nanos() as u64;
                        s.extra_jitter_ns += extra_jitter.as_nanos() as u64;
                        s.duplicate_ratio = 1.0 - (1.0 - s.duplicate_ratio) * (1.0 - duplicate_ratio);
                    }
                }
                FaultKind::SwitchDown { switch } | FaultKind::SwitchFlapping { switch, .. } => {
                    for i in 0..n * n {
                        if self.paths[i].hops.iter().any(|h| h.switch as usize == *switch) {
                            block(&mut self.state, i / n, i % n, DropReason::SwitchDown, Some(*switch as u16));
                        }
                    }
                }
                FaultKind::SwitchDegraded { switch, loss_ratio, ports } => {
                    let names = &self.switch_ports[*switch];
                    let idx = |p: &str| names.iter().position(|x| x == p).expect("validated port") as u16;
                    let pairs: Vec<(u16, u16)> = ports.iter().map(|(p, q)| (idx(p), idx(q))).collect();
                    for i in 0..n * n {
                        let crosses = self.paths[i].hops.iter().any(|h| {
                            h.switch as usize == *switch
                                && (pairs.is_empty()
                                    || pairs.iter().any(|&(p, q)| {
                                        (h.port_in, h.port_out) == (p, q) || (h.port_in, h.port_out) == (q, p)
                                    }))
                        });
                        if crosses {
                            let s = &mut self.state[i];
                            s.switch_loss_ratio = 1.0 - (1.0 - s.switch_loss_ratio) * (1.0 - loss_ratio);
                            s.switch_loss_via.get_or_insert(*switch as u16);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
#[path = "net_tests.rs"]
mod tests;
