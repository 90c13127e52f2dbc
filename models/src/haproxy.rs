//! HAProxy's server health checks and load balancing (doc/configuration.txt), as pure state:
//! the stack wires them to the network (issue [stack]).
//!
//! Modelled on HAProxy 2.6 (src/check.c), checked against the real 2.6.12 in
//! calibration/fixtures/haproxy-*.json.
//!
//! A server goes DOWN after `fall` consecutive failed checks and UP after `rise` consecutive
//! successful ones. The next check starts `inter` after the previous one *completed* (HAProxy
//! re-arms the check task at completion time plus `srv_getinter()`): `inter` while the server
//! is steadily UP, `fastinter` while it is in transition (UP going down, DOWN going up) and
//! `downinter` while it is DOWN; `fastinter` and `downinter` default to `inter`. The checks
//! are layer-4 (a TCP connect is the whole check), so a check not answered within `inter` fails,
//! or within min(`inter`, `timeout connect`) when `timeout check` is set (HAProxy allows the
//! connect that long only when `timeout check` is set). A silent server thus costs `inter` per
//! check plus `inter` between checks: DOWN about 10-12 s after a host vanishes with the
//! defaults, as the real one measured (haproxy-path-drop).

use std::time::Duration;

/// pgsim's `timeout connect` when a scenario sets none (HAProxy itself warns and waits forever).
pub const DEFAULT_TIMEOUT_CONNECT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, PartialEq)]
pub struct CheckConfig {
    pub inter: Duration,
    pub fastinter: Option<Duration>,
    pub downinter: Option<Duration>,
    pub rise: u32,
    pub fall: u32,
    /// `timeout check`: only whether it is set matters to a layer-4 check (see `timeout`).
    pub timeout_check: Option<Duration>,
    /// `timeout connect`, which bounds a check's connect when `timeout check` is set.
    pub timeout_connect: Duration,
}

impl Default for CheckConfig {
    /// HAProxy's defaults: inter 2000 ms, rise 2, fall 3.
    fn default() -> Self {
        CheckConfig {
            inter: Duration::from_millis(2000),
            fastinter: None,
            downinter: None,
            rise: 2,
            fall: 3,
            timeout_check: None,
            timeout_connect: DEFAULT_TIMEOUT_CONNECT,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Up,
    Down,
}

/// A state change the check caused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    MarkedDown,
    MarkedUp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServerCheck {
    cfg: CheckConfig,
    pub health: Health,
    /// Consecutive results against the current state (failures while UP, successes while DOWN).
    streak: u32,
}

impl ServerCheck {
    /// Servers start UP, as HAProxy assumes at startup.
    pub fn new(cfg: CheckConfig) -> ServerCheck {
        assert!(cfg.rise >= 1 && cfg.fall >= 1, "rise and fall are at least 1");
        ServerCheck { cfg, health: Health::Up, streak: 0 }
    }

    pub fn on_result(&mut self, ok: bool) -> Option<Transition> {
        match (self.health, ok) {
            (Health::Up, true) | (Health::Down, false) => {
                self.streak = 0;
                None
            }
            (Health::Up, false) => {
                self.streak += 1;
                (self.streak >= self.cfg.fall).then(|| {
                    self.health = Health::Down;
                    self.streak = 0;
                    Transition::MarkedDown
                })
            }
            (Health::Down, true) => {
                self.streak += 1;
                (self.streak >= self.cfg.rise).then(|| {
                    self.health = Health::Up;
                    self.streak = 0;
                    Transition::MarkedUp
                })
            }
        }
    }

    /// Time until the next check.
    pub fn interval(&self) -> Duration {
        let inter = self.cfg.inter;
        match (self.health, self.streak) {
            (Health::Up, 0) => inter,
            (Health::Down, 0) => self.cfg.downinter.unwrap_or(inter),
            _ => self.cfg.fastinter.unwrap_or(inter),
        }
    }

    /// How long a check may wait for its connection: `inter`, or min(`inter`, `timeout
    /// connect`) when `timeout check` is set (src/check.c, where a check starts).
    pub fn timeout(&self) -> Duration {
        match self.cfg.timeout_check {
            Some(_) => self.cfg.inter.min(self.cfg.timeout_connect),
            None => self.cfg.inter,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Balance {
    /// HAProxy's default.
    #[default]
    RoundRobin,
    LeastConn,
    /// The first server (in declaration order) with a free slot.
    First,
}

impl Balance {
    pub const ALL: [Balance; 3] = [Balance::RoundRobin, Balance::LeastConn, Balance::First];
    /// haproxy.cfg's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Balance::RoundRobin => "roundrobin",
            Balance::LeastConn => "leastconn",
            Balance::First => "first",
        }
    }
}

/// What the balancer knows of one server when it splits a cohort of new sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub up: bool,
    /// Sessions open on it now.
    pub in_flight: u64,
    /// Sessions it may still take (`maxconn` minus open ones); `None`: no `maxconn`.
    pub room: Option<u64>,
}

impl Slot {
    fn room_left(&self, given: u64) -> u64 {
        if !self.up {
            return 0;
        }
        self.room.map_or(u64::MAX, |r| r.saturating_sub(given))
    }
}

/// Splits `n` new sessions across servers as `balance` would place them one by one, in bulk:
/// `roundrobin` whole to the next server (after the rotating cursor `rr`) with room for all of
/// them, or evenly when none has, the remainder going to the servers after the cursor;
/// `leastconn` filling the least loaded servers up to the level of the next (water-filling,
/// ties to the lower index); `first` filling servers in order up to `maxconn`. Servers DOWN or
/// without room get nothing. Returns the count per server; the sum is below `n` when the
/// servers run out of room (the rest queues).
pub fn split(balance: Balance, slots: &[Slot], n: u64, rr: &mut usize) -> Vec<u64> {
    let len = slots.len();
    let mut parts = vec![0u64; len];
    let mut left = n;
    match balance {
        Balance::RoundRobin => {
            // A cohort stands for many sessions arriving within one tick; rotating whole
            // cohorts balances as well over a second and keeps one message per cohort. Only a
            // cohort no single server has room for is spread.
            if len > 0 {
                let start = *rr % len;
                if let Some(i) = (0..len).map(|k| (start + k) % len).find(|&i| slots[i].room_left(0) >= n) {
                    parts[i] = n;
                    *rr = (i + 1) % len;
                    return parts;
                }
            }
            while left > 0 {
                let start = if len == 0 { 0 } else { *rr % len };
                let cands: Vec<usize> =
                    (0..len).map(|k| (start + k) % len).filter(|&i| slots[i].room_left(parts[i]) > 0).collect();
                if cands.is_empty() {
                    break;
                }
                let k = cands.len() as u64;
                let (base, rem) = (left / k, left % k);
                for (j, &i) in cands.iter().enumerate() {
                    let want = base + u64::from((j as u64) < rem);
                    let give = want.min(slots[i].room_left(parts[i]));
                    parts[i] += give;
                    left -= give;
                }
                if rem > 0 {
                    *rr = (cands[rem as usize - 1] + 1) % len;
                }
            }
        }
        Balance::LeastConn => {
            while left > 0 {
                let cands: Vec<usize> = (0..len).filter(|&i| slots[i].room_left(parts[i]) > 0).collect();
                let level = |i: usize| slots[i].in_flight + parts[i];
                let Some(low) = cands.iter().map(|&i| level(i)).min() else { break };
                let lowest: Vec<usize> = cands.iter().copied().filter(|&i| level(i) == low).collect();
                let next = cands.iter().map(|&i| level(i)).filter(|&l| l > low).min();
                let mut step = lowest.iter().map(|&i| slots[i].room_left(parts[i])).min().expect("non-empty");
                if let Some(next) = next {
                    step = step.min(next - low);
                }
                let k = lowest.len() as u64;
                if step.saturating_mul(k) <= left {
                    for &i in &lowest {
                        parts[i] += step;
                    }
                    left -= step * k;
                } else {
                    let (base, rem) = (left / k, left % k);
                    for (j, &i) in lowest.iter().enumerate() {
                        parts[i] += base + u64::from((j as u64) < rem);
                    }
                    left = 0;
                }
            }
        }
        Balance::First => {
            for i in 0..len {
                let give = left.min(slots[i].room_left(0));
                parts[i] = give;
                left -= give;
            }
        }
    }
    debug_assert!(parts.iter().zip(slots).all(|(p, s)| *p <= s.room_left(0)));
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check() -> ServerCheck {
        ServerCheck::new(CheckConfig {
            fastinter: Some(Duration::from_millis(500)),
            downinter: Some(Duration::from_secs(5)),
            ..CheckConfig::default()
        })
    }

    #[test]
    fn fall_and_rise_count_consecutive_results() {
        let mut c = check();
        assert_eq!(c.on_result(false), None);
        assert_eq!(c.on_result(false), None);
        assert_eq!(c.on_result(true), None, "a success resets the failure streak");
        assert_eq!(
            (c.on_result(false), c.on_result(false), c.on_result(false)),
            (None, None, Some(Transition::MarkedDown))
        );
        assert_eq!(c.health, Health::Down);
        assert_eq!(c.on_result(true), None);
        assert_eq!(c.on_result(true), Some(Transition::MarkedUp), "rise 2");
    }

    #[test]
    fn intervals_follow_the_state() {
        let mut c = check();
        assert_eq!(c.interval(), Duration::from_secs(2), "steadily up: inter");
        c.on_result(false);
        assert_eq!(c.interval(), Duration::from_millis(500), "going down: fastinter");
        c.on_result(false);
        c.on_result(false);
        assert_eq!(c.interval(), Duration::from_secs(5), "down: downinter");
        c.on_result(true);
        assert_eq!(c.interval(), Duration::from_millis(500), "going up: fastinter");
        assert_eq!(c.timeout(), Duration::from_secs(2), "timeout check defaults to inter");
        assert_eq!(ServerCheck::new(CheckConfig::default()).interval(), CheckConfig::default().inter);
    }

    fn slot(up: bool, in_flight: u64, room: Option<u64>) -> Slot {
        Slot { up, in_flight, room }
    }

    #[test]
    fn roundrobin_rotates_whole_cohorts_and_spreads_only_what_no_server_fits() {
        // Each cohort goes whole to the next server in rotation.
        let s = [slot(true, 0, None), slot(true, 0, None), slot(true, 0, None)];
        let mut rr = 0;
        assert_eq!(split(Balance::RoundRobin, &s, 10, &mut rr), vec![10, 0, 0]);
        assert_eq!(split(Balance::RoundRobin, &s, 10, &mut rr), vec![0, 10, 0], "the next cohort, the next server");
        assert_eq!(split(Balance::RoundRobin, &s, 1, &mut rr), vec![0, 0, 1]);
        assert_eq!(split(Balance::RoundRobin, &s, 1, &mut rr), vec![1, 0, 0], "the rotation wraps");
        assert_eq!(rr, 1);
        // A DOWN server, or one without room for the whole cohort, is passed over; the rotation
        // goes on after the server that took it.
        let s = [slot(true, 0, Some(2)), slot(false, 0, None), slot(true, 0, None)];
        let mut rr = 1;
        assert_eq!(split(Balance::RoundRobin, &s, 2, &mut rr), vec![0, 0, 2], "server 1 is DOWN");
        assert_eq!(split(Balance::RoundRobin, &s, 3, &mut rr), vec![0, 0, 3], "server 0 has room for 2 only");
        assert_eq!(split(Balance::RoundRobin, &s, 2, &mut rr), vec![2, 0, 0], "server 0 has room for 2");
        assert_eq!(rr, 1);
        // A cohort no single server has room for is spread evenly, the remainder rotating on.
        let s = [slot(true, 0, Some(4)), slot(true, 0, Some(4)), slot(true, 0, Some(4))];
        let mut rr = 0;
        assert_eq!(split(Balance::RoundRobin, &s, 10, &mut rr), vec![4, 3, 3]);
        assert_eq!(split(Balance::RoundRobin, &s, 10, &mut rr), vec![3, 4, 3], "the remainder moved on");
        // Spread: a DOWN server gets nothing; a full one spills onto the others.
        let s = [slot(true, 0, Some(2)), slot(false, 0, None), slot(true, 0, Some(9))];
        assert_eq!(split(Balance::RoundRobin, &s, 10, &mut 0), vec![2, 0, 8]);
        let s = [slot(true, 5, Some(1)), slot(true, 0, Some(2))];
        assert_eq!(split(Balance::RoundRobin, &s, 10, &mut 0), vec![1, 2], "out of room: the rest queues");
        let s = [slot(false, 0, None), slot(false, 0, None)];
        assert_eq!(split(Balance::RoundRobin, &s, 3, &mut 0), vec![0, 0], "all DOWN: everything queues");
    }

    #[test]
    fn leastconn_fills_the_least_loaded_first() {
        let s = [slot(true, 10, None), slot(true, 2, None), slot(true, 6, None)];
        assert_eq!(split(Balance::LeastConn, &s, 4, &mut 0), vec![0, 4, 0]);
        assert_eq!(split(Balance::LeastConn, &s, 12, &mut 0), vec![0, 8, 4], "levels meet at 10");
        assert_eq!(split(Balance::LeastConn, &s, 13, &mut 0), vec![1, 8, 4]);
        let s = [slot(true, 0, Some(3)), slot(true, 0, None), slot(false, 0, None)];
        assert_eq!(split(Balance::LeastConn, &s, 10, &mut 0), vec![3, 7, 0]);
    }

    #[test]
    fn first_fills_in_declaration_order() {
        let s = [slot(true, 1, Some(3)), slot(false, 0, None), slot(true, 0, Some(5)), slot(true, 0, Some(5))];
        assert_eq!(split(Balance::First, &s, 9, &mut 0), vec![3, 0, 5, 1]);
        assert_eq!(split(Balance::First, &[slot(true, 0, None)], 1_000_000, &mut 0), vec![1_000_000]);
        assert_eq!(split(Balance::First, &[slot(false, 0, None)], 5, &mut 0), vec![0]);
    }
}
