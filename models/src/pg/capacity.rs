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
    /// Requests per second the server completes when `offered_rps` arrive and its backlog
    /// holds `reads` and `writes` (their mix sets the cost of one request): the full rate
    /// its cores allow up to saturation, falling as 1 / (1 + collapse x excess) beyond.
    pub fn throughput(&self, offered_rps: f64, reads: u64, writes: u64, warmth: f64) -> f64 {
        let n = (reads + writes) as f64;
        if n == 0.0 {
            return 0.0;
        }
        let cost_s =
            (reads as f64 * self.read_service.as_secs_f64() + writes as f64 * self.write_service.as_secs_f64()) / n;
        let supply = self.core_seconds(warmth);
        let max_rps = supply / cost_s.max(1e-12);
        let utilisation = offered_rps * cost_s / supply.max(1e-12);
        if utilisation <= 1.0 { max_rps } else { max_rps / (1.0 + self.overload_collapse * (utilisation - 1.0)) }
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
    fn throughput_is_full_until_saturation_then_collapses() {
        let c = Capacity { cores: 2, read_service: Duration::from_millis(1), ..Capacity::default() };
        assert_eq!(c.throughput(1500.0, 10, 0, 1.0), 2000.0, "below saturation: what the cores allow");
        let at_3x = c.throughput(6000.0, 10, 0, 1.0);
        assert!((at_3x - 1000.0).abs() < 1e-6, "3x offered, collapse 0.5: half of 2000, got {at_3x}");
        assert!(c.throughput(1500.0, 10, 0, 0.3) < 700.0, "a cold cache serves less");
        assert_eq!(c.throughput(1500.0, 0, 0, 1.0), 0.0);
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
