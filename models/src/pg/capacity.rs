//! How much a PostgreSQL server can serve: cores and per-statement service times, a buffer
//! cache that starts cold after a restart or promotion, and overload in which throughput falls
//! (lock and buffer contention, context switching) rather than only latency rising.

use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub struct Capacity {
    pub cores: u32,
    pub read_service: Duration,
    pub write_service: Duration,
    pub max_connections: u32,
    /// Throughput with a cold cache, as a fraction of warm.
    pub cold_cache_ratio: f64,
    /// Time constant of cache warm-up.
    pub cache_warmup: Duration,
    /// Beyond full utilisation, each unit of excess load costs this fraction of throughput.
    pub overload_collapse: f64,
}

impl Default for Capacity {
    fn default() -> Self {
        Capacity {
            cores: 32,
            read_service: Duration::from_micros(500),
            write_service: Duration::from_millis(2),
            max_connections: 100,
            cold_cache_ratio: 0.3,
            cache_warmup: Duration::from_secs(300),
            overload_collapse: 0.5,
        }
    }
}

impl Capacity {
    /// Cache warmth in [cold_cache_ratio, 1] after `since_start` of serving.
    pub fn warmth(&self, since_start: Duration) -> f64 {
        let x = since_start.as_secs_f64() / self.cache_warmup.as_secs_f64().max(1e-9);
        self.cold_cache_ratio + (1.0 - self.cold_cache_ratio) * (1.0 - (-x).exp())
    }

    /// Work per second the server can do, in core-seconds per second, at this warmth.
    fn core_seconds(&self, warmth: f64) -> f64 {
        self.cores as f64 * warmth
    }

    /// Of the offered reads and writes per second, how many complete. Up to full utilisation
    /// all do; beyond it, goodput falls as 1 / (1 + collapse x excess).
    pub fn served(&self, reads_per_s: f64, writes_per_s: f64, warmth: f64) -> (f64, f64) {
        let demand = reads_per_s * self.read_service.as_secs_f64() + writes_per_s * self.write_service.as_secs_f64();
        let supply = self.core_seconds(warmth);
        if demand <= supply || demand == 0.0 {
            return (reads_per_s, writes_per_s);
        }
        let utilisation = demand / supply;
        let goodput = (1.0 / utilisation) / (1.0 + self.overload_collapse * (utilisation - 1.0));
        (reads_per_s * goodput, writes_per_s * goodput)
    }
}

impl Capacity {
    /// CPU time of one request of this kind.
    pub fn service(&self, write: bool) -> Duration {
        if write { self.write_service } else { self.read_service }
    }

    /// Core-seconds of useful work per second when `offered` core-seconds of work arrive per
    /// second: all the cores' time up to saturation; beyond it the excess costs throughput,
    /// as 1 / (1 + collapse x excess) (contention, context switches, cache thrash).
    pub fn useful_core_seconds(&self, offered: f64, warmth: f64) -> f64 {
        let supply = self.core_seconds(warmth);
        let utilisation = offered / supply.max(1e-12);
        if utilisation <= 1.0 { supply } else { supply / (1.0 + self.overload_collapse * (utilisation - 1.0)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_falls_past_saturation() {
        let c = Capacity { cores: 4, write_service: Duration::from_millis(1), ..Capacity::default() };
        // 4 cores x 1000 writes/s each.
        assert_eq!(c.served(0.0, 3000.0, 1.0), (0.0, 3000.0));
        let (_, at_2x) = c.served(0.0, 8000.0, 1.0);
        let (_, at_4x) = c.served(0.0, 16000.0, 1.0);
        assert!(at_2x < 4000.0 && at_4x < at_2x, "goodput falls: {at_2x} then {at_4x}");
    }

    #[test]
    fn useful_work_is_full_until_saturation_then_collapses() {
        let c = Capacity { cores: 2, ..Capacity::default() };
        assert_eq!(c.useful_core_seconds(1.5, 1.0), 2.0, "below saturation: every core's time");
        let at_3x = c.useful_core_seconds(6.0, 1.0);
        assert!((at_3x - 1.0).abs() < 1e-9, "3x offered, collapse 0.5: half of 2 core-s, got {at_3x}");
        assert!((c.useful_core_seconds(0.5, 0.3) - 0.6).abs() < 1e-9, "a cold cache: 30 % of the cores' work");
    }

    #[test]
    fn a_cold_cache_lowers_capacity_and_warms_up() {
        let c = Capacity::default();
        assert!((c.warmth(Duration::ZERO) - 0.3).abs() < 1e-9);
        assert!(c.warmth(Duration::from_secs(900)) > 0.95);
        let (_, cold) = c.served(0.0, 14000.0, c.warmth(Duration::ZERO));
        let (_, warm) = c.served(0.0, 14000.0, 1.0);
        assert!(cold < 0.5 * warm, "cold {cold} vs warm {warm}");
    }
}
