//! A node's disk: fsync latency, sequential throughput, and the disk faults (stall, I/O
//! errors, full, slow). Operations are served one at a time, in order, like a single queue.

use std::time::Duration;

use models::rng::SimRng;
use models::{DiskError, DiskOp, SimTime};
use rand::Rng;
use scenarios::DiskSpec;

/// When an operation completes and how.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Completion {
    pub at: SimTime,
    pub result: Result<(), DiskError>,
}

pub struct Disk {
    spec: DiskSpec,
    rng: SimRng,
    busy_until: SimTime,
    /// Active faults, by fault index, so overlapping faults heal independently.
    stalls: Vec<u32>,
    errors: Vec<(u32, f64)>,
    full: Vec<u32>,
    slow: Vec<(u32, f64)>,
    /// Operations issued while stalled: (op, token, issue time), served when the stall ends.
    held: Vec<(DiskOp, u64)>,
}

impl Disk {
    pub fn new(spec: DiskSpec, rng: SimRng) -> Disk {
        Disk {
            spec,
            rng,
            busy_until: SimTime::ZERO,
            stalls: vec![],
            errors: vec![],
            full: vec![],
            slow: vec![],
            held: vec![],
        }
    }

    fn slow_factor(&self) -> f64 {
        self.slow.iter().map(|(_, f)| *f).product()
    }

    fn service_time(&mut self, op: DiskOp) -> Duration {
        let base = match op {
            DiskOp::Fsync => {
                let jitter_ns = self.spec.fsync_jitter.as_nanos() as u64;
                let j = if jitter_ns > 0 { self.rng.gen_range(0..=jitter_ns) } else { 0 };
                self.spec.fsync_latency + Duration::from_nanos(j)
            }
            DiskOp::Write { bytes } => Duration::from_secs_f64(bytes as f64 / self.spec.write_bytes_per_s as f64),
            DiskOp::Read { bytes } => Duration::from_secs_f64(bytes as f64 / self.spec.read_bytes_per_s as f64),
        };
        base.mul_f64(self.slow_factor())
    }

    /// Submits an operation. `None` while the disk is stalled: the operation is held and
    /// returned by `stall_end`.
    pub fn submit(&mut self, now: SimTime, op: DiskOp, token: u64) -> Option<Completion> {
        if !self.stalls.is_empty() {
            self.held.push((op, token));
            return None;
        }
        Some(self.serve(now, op))
    }

    fn serve(&mut self, now: SimTime, op: DiskOp) -> Completion {
        let start = now.max(self.busy_until);
        let at = start + self.service_time(op);
        self.busy_until = at;
        let writes = !matches!(op, DiskOp::Read { .. });
        let result = if writes && !self.full.is_empty() {
            Err(DiskError::NoSpace)
        } else {
            let p_ok: f64 = self.errors.iter().map(|(_, r)| 1.0 - r).product();
            if p_ok < 1.0 && self.rng.r#gen::<f64>() >= p_ok { Err(DiskError::Io) } else { Ok(()) }
        };
        Completion { at, result }
    }

    pub fn stall_start(&mut self, fault: u32) {
        self.stalls.push(fault);
    }

    /// Ends a stall; when no stall remains, the held operations are served from `now`, in order.
    pub fn stall_end(&mut self, fault: u32, now: SimTime) -> Vec<(u64, Completion)> {
        self.stalls.retain(|f| *f != fault);
        if !self.stalls.is_empty() {
            return vec![];
        }
        let held = std::mem::take(&mut self.held);
        held.into_iter().map(|(op, token)| (token, self.serve(now, op))).collect()
    }

    pub fn errors_start(&mut self, fault: u32, ratio: f64) {
        self.errors.push((fault, ratio));
    }
    pub fn full_start(&mut self, fault: u32) {
        self.full.push(fault);
    }
    pub fn slow_start(&mut self, fault: u32, factor: f64) {
        self.slow.push((fault, factor));
    }
    /// Ends an errors, full or slow fault.
    pub fn heal(&mut self, fault: u32) {
        self.errors.retain(|(f, _)| *f != fault);
        self.full.retain(|f| *f != fault);
        self.slow.retain(|(f, _)| *f != fault);
    }

    /// The node crashed: requests in its queue die with it (the stall itself persists).
    pub fn crash(&mut self) {
        self.held.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::rng::{Stream, stream_rng};

    fn disk() -> Disk {
        let spec = DiskSpec {
            fsync_latency: Duration::from_millis(2),
            fsync_jitter: Duration::ZERO,
            read_bytes_per_s: 100_000_000,
            write_bytes_per_s: 50_000_000,
        };
        Disk::new(spec, stream_rng(1, Stream::Disk { node: 0 }))
    }
    const MS: u64 = 1_000_000;

    #[test]
    fn operations_queue_in_order() {
        let mut d = disk();
        let a = d.submit(SimTime(0), DiskOp::Fsync, 1).unwrap();
        let b = d.submit(SimTime(0), DiskOp::Write { bytes: 50_000_000 }, 2).unwrap();
        assert_eq!(a.at, SimTime(2 * MS));
        assert_eq!(b.at, SimTime(2 * MS + 1000 * MS), "1 s of writing after the fsync");
        let c = d.submit(SimTime(5000 * MS), DiskOp::Read { bytes: 1_000_000 }, 3).unwrap();
        assert_eq!(c.at, SimTime(5010 * MS));
    }

    #[test]
    fn stall_holds_until_healed() {
        let mut d = disk();
        d.stall_start(7);
        assert_eq!(d.submit(SimTime(0), DiskOp::Fsync, 1), None);
        assert_eq!(d.submit(SimTime(MS), DiskOp::Fsync, 2), None);
        let done = d.stall_end(7, SimTime(3000 * MS));
        assert_eq!(
            done.iter().map(|(t, c)| (*t, c.at)).collect::<Vec<_>>(),
            vec![(1, SimTime(3002 * MS)), (2, SimTime(3004 * MS))]
        );
    }

    #[test]
    fn full_fails_writes_not_reads_and_slow_scales() {
        let mut d = disk();
        d.full_start(1);
        assert_eq!(d.submit(SimTime(0), DiskOp::Fsync, 1).unwrap().result, Err(DiskError::NoSpace));
        assert_eq!(d.submit(SimTime(0), DiskOp::Read { bytes: 10 }, 2).unwrap().result, Ok(()));
        d.heal(1);
        d.slow_start(2, 10.0);
        let c = d.submit(SimTime(1000 * MS), DiskOp::Fsync, 3).unwrap();
        assert_eq!((c.at, c.result), (SimTime(1020 * MS), Ok(())));
    }

    #[test]
    fn error_ratio_is_honoured() {
        let mut d = disk();
        d.errors_start(1, 0.3);
        let failed = (0..10_000).filter(|i| d.submit(SimTime(0), DiskOp::Fsync, *i).unwrap().result.is_err()).count();
        assert!((2_700..3_300).contains(&failed), "{failed} of 10000 failed");
    }
}
