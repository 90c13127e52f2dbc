//! HAProxy's server health checks and load balancing (doc/configuration.txt), as pure state:
//! the stack wires them to the network (issue [stack]).
//!
//! A server goes DOWN after `fall` consecutive failed checks and UP after `rise` consecutive
//! successful ones. Checks run every `inter` while the server is steadily UP, every `fastinter`
//! while it is in transition (UP going down, DOWN going up) and every `downinter` while it is
//! DOWN; `fastinter` and `downinter` default to `inter`. A check not answered within
//! `timeout check` (default: `inter`) fails.

use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub struct CheckConfig {
    pub inter: Duration,
    pub fastinter: Option<Duration>,
    pub downinter: Option<Duration>,
    pub rise: u32,
    pub fall: u32,
    pub timeout_check: Option<Duration>,
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

    pub fn timeout(&self) -> Duration {
        self.cfg.timeout_check.unwrap_or(self.cfg.inter)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Balance {
    RoundRobin,
    LeastConn,
    /// The first server (in declaration order) with a free slot.
    First,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Server {
    pub check: ServerCheck,
    /// `maxconn` (0: unlimited).
    pub maxconn: u32,
    pub sessions: u32,
}

/// A backend picking servers for new sessions.
#[derive(Clone, Debug, PartialEq)]
pub struct Backend {
    pub balance: Balance,
    pub servers: Vec<Server>,
    next_rr: usize,
}

impl Backend {
    pub fn new(balance: Balance, servers: Vec<Server>) -> Backend {
        Backend { balance, servers, next_rr: 0 }
    }

    fn available(&self, i: usize) -> bool {
        let s = &self.servers[i];
        s.check.health == Health::Up && (s.maxconn == 0 || s.sessions < s.maxconn)
    }

    /// The server for a new session, or `None` when none is UP with a free slot (HAProxy then
    /// queues the session, up to `maxqueue` and `timeout queue`).
    pub fn pick(&mut self) -> Option<usize> {
        let n = self.servers.len();
        let chosen = match self.balance {
            Balance::RoundRobin => {
                let found = (0..n).map(|k| (self.next_rr + k) % n).find(|&i| self.available(i));
                if let Some(i) = found {
                    self.next_rr = (i + 1) % n;
                }
                found
            }
            Balance::LeastConn => (0..n).filter(|&i| self.available(i)).min_by_key(|&i| (self.servers[i].sessions, i)),
            Balance::First => (0..n).find(|&i| self.available(i)),
        }?;
        self.servers[chosen].sessions += 1;
        Some(chosen)
    }

    pub fn release(&mut self, i: usize) {
        assert!(self.servers[i].sessions > 0, "release without a session");
        self.servers[i].sessions -= 1;
    }

    /// Applies a check result; with `on-marked-down shutdown-sessions`, a server marked down
    /// loses its sessions (returned, so the caller can cut its clients).
    pub fn on_check(&mut self, i: usize, ok: bool, shutdown_sessions: bool) -> (Option<Transition>, u32) {
        let t = self.servers[i].check.on_result(ok);
        let cut = if t == Some(Transition::MarkedDown) && shutdown_sessions {
            std::mem::take(&mut self.servers[i].sessions)
        } else {
            0
        };
        (t, cut)
    }
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

    fn backend(balance: Balance, maxconn: u32) -> Backend {
        Backend::new(balance, (0..3).map(|_| Server { check: check(), maxconn, sessions: 0 }).collect())
    }

    #[test]
    fn balancing_skips_down_and_full_servers() {
        let mut b = backend(Balance::RoundRobin, 0);
        assert_eq!((b.pick(), b.pick(), b.pick(), b.pick()), (Some(0), Some(1), Some(2), Some(0)));
        for _ in 0..3 {
            b.on_check(1, false, false);
        }
        assert_eq!((b.pick(), b.pick()), (Some(2), Some(0)), "server 1 is down");
        let mut l = backend(Balance::LeastConn, 0);
        l.pick();
        l.pick();
        l.release(0);
        assert_eq!(l.pick(), Some(0), "fewest sessions first");
        let mut f = backend(Balance::First, 1);
        assert_eq!((f.pick(), f.pick(), f.pick(), f.pick()), (Some(0), Some(1), Some(2), None), "maxconn 1 each");
    }

    #[test]
    fn marked_down_can_shut_down_sessions() {
        let mut b = backend(Balance::First, 0);
        b.pick();
        b.pick();
        b.on_check(0, false, true);
        b.on_check(0, false, true);
        assert_eq!(b.on_check(0, false, true), (Some(Transition::MarkedDown), 2));
        assert_eq!(b.servers[0].sessions, 0);
        let mut keep = backend(Balance::First, 0);
        keep.pick();
        for _ in 0..2 {
            keep.on_check(0, false, false);
        }
        assert_eq!(keep.on_check(0, false, false), (Some(Transition::MarkedDown), 0), "off by default: sessions stay");
        assert_eq!(keep.servers[0].sessions, 1);
    }
}
