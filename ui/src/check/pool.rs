//! Worker processes: the parent re-executes its own binary as `pgsim check-worker` N times,
//! writes one job (a JSON line: scenario file and seed) to a worker's stdin whenever that worker
//! is idle, and reads one result line per finished run from its stdout. One reader thread per
//! pipe; the threads are outside any simulation, which runs inside the workers only.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};

use sim::summary::{AssertionResult, Status};

use super::results::Outcome;

/// What a worker's stdout lines that carry a result start with; any other line is passed on
/// (a stray `println!` in the simulator must not break the protocol).
pub const RESULT_PREFIX: &str = "pgsim-check-result ";

/// Lines of a dead worker's stderr kept for the error message.
const STDERR_TAIL_LINES: usize = 10;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Job {
    pub id: usize,
    pub file: String,
    pub seed: u64,
    #[serde(default)]
    pub mode: Mode,
}

/// What a worker does with a job's (file, seed).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Mode {
    /// Run the scenario as it is.
    #[default]
    Run,
    /// Run the seed's swarm scenario (see `crate::swarm`).
    Swarm,
    /// Shrink the seed's failing swarm schedule while `property` keeps failing, in at most
    /// `runs_max` runs.
    Shrink { property: String, runs_max: u32 },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reply {
    pub id: usize,
    pub outcome: Outcome,
    pub reason: Option<String>,
    pub failures: Vec<String>,
    pub trace_hash: Option<String>,
    pub wall_seconds: f64,
    #[serde(flatten)]
    pub asserted: Asserted,
    /// What a swarm or shrink job found besides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm: Option<crate::swarm::SwarmReply>,
}

impl Reply {
    pub fn error(id: usize, reason: String) -> Reply {
        Reply {
            id,
            outcome: Outcome::Error,
            reason: Some(reason),
            failures: Vec::new(),
            trace_hash: None,
            wall_seconds: 0.0,
            asserted: Asserted::default(),
            swarm: None,
        }
    }
}

/// What a run's assertions tell a sweep besides pass or fail: the worker reports it, the
/// parent records it (flattened into both, so `--json` keeps these keys at a run's top level).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Asserted {
    /// Each asserted metric's value (numbers only), so a sweep gives its spread over seeds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, f64>,
    /// The run's `share_of_seeds` assertions and whether each held.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shares: Vec<ShareRun>,
    /// How many assertions were skipped because their `if` did not hold.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped: usize,
}

impl Asserted {
    pub fn of(assertions: &[AssertionResult]) -> Asserted {
        Asserted {
            values: assertions.iter().filter_map(|a| Some((a.metric.clone(), a.value?))).collect(),
            shares: assertions
                .iter()
                .filter_map(|a| {
                    Some(ShareRun { name: a.name.clone(), share_of_seeds: a.share_of_seeds?, held: a.held() })
                })
                .collect(),
            skipped: assertions.iter().filter(|a| a.status == Status::Skipped).count(),
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One `share_of_seeds` assertion in one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShareRun {
    pub name: String,
    /// The share of the seeds it must hold in.
    pub share_of_seeds: f64,
    pub held: bool,
}

enum Event {
    Stdout(u64, String),
    Stderr(u64, String),
    /// The worker's stdout is closed: it has exited (or is about to).
    Closed(u64),
}

struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    in_flight: Option<usize>,
    stderr: Option<JoinHandle<VecDeque<String>>>,
    /// Set when the worker broke the protocol (and was killed for it).
    broken: Option<String>,
}

fn read_lines(r: impl io::Read, mut each: impl FnMut(String)) {
    let mut r = BufReader::new(r);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                each(line.trim_end_matches(['\n', '\r']).to_string());
            }
        }
    }
}

fn spawn(id: u64, worker_args: &[String], tx: &mpsc::Sender<Event>) -> io::Result<Worker> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .arg("check-worker")
        .args(worker_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let out_tx = tx.clone();
    std::thread::Builder::new().name(format!("check-worker-{id}-stdout")).spawn(move || {
        read_lines(stdout, |line| {
            let _ = out_tx.send(Event::Stdout(id, line));
        });
        let _ = out_tx.send(Event::Closed(id));
    })?;
    let err_tx = tx.clone();
    let stderr = std::thread::Builder::new().name(format!("check-worker-{id}-stderr")).spawn(move || {
        let mut tail = VecDeque::new();
        read_lines(stderr, |line| {
            if tail.len() == STDERR_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.clone());
            let _ = err_tx.send(Event::Stderr(id, line));
        });
        tail
    })?;
    let stdin = child.stdin.take();
    Ok(Worker { child, stdin, in_flight: None, stderr: Some(stderr), broken: None })
}

/// Runs `jobs` on `workers` processes, calling `done` once per job (in completion order) and
/// `log` for anything else a worker prints. A worker that dies costs only its in-flight job
/// (reported as an error) and is replaced while jobs remain.
pub fn run(
    jobs: &[Job],
    workers: usize,
    worker_args: &[String],
    mut done: impl FnMut(Reply),
    mut log: impl FnMut(String),
) {
    let (tx, rx) = mpsc::channel();
    let mut pool = Pool {
        jobs,
        workers,
        worker_args,
        tx,
        pending: (0..jobs.len()).collect(),
        live: BTreeMap::new(),
        next_id: 0,
        // Every replacement follows a death, which costs a job: this bounds restarts.
        spawns_left: workers + jobs.len(),
        spawn_error: None,
    };
    pool.start();
    loop {
        if pool.live.is_empty() {
            // Nothing left to run, or no worker could be started for what is left.
            let why = pool.spawn_error.clone().unwrap_or_else(|| "too many worker processes died".into());
            for job in pool.pending.drain(..) {
                done(Reply::error(job, format!("no worker process could be started: {why}")));
            }
            return;
        }
        match rx.recv().expect("the pool holds a sender") {
            Event::Stdout(id, line) => {
                let Some(w) = pool.live.get_mut(&id) else { continue };
                let Some(json) = line.strip_prefix(RESULT_PREFIX) else {
                    log(format!("worker {id}: {line}"));
                    continue;
                };
                match serde_json::from_str::<Reply>(json) {
                    Ok(reply) if Some(reply.id) == w.in_flight => {
                        w.in_flight = None;
                        done(reply);
                        pool.feed(id);
                    }
                    other => {
                        let what = match other {
                            Ok(r) => format!("a result for job {} while running job {:?}", r.id, w.in_flight),
                            Err(e) => format!("an unreadable result ({e})"),
                        };
                        w.broken = Some(format!("worker process sent {what}"));
                        let _ = w.child.kill();
                    }
                }
            }
            Event::Stderr(id, line) => log(format!("worker {id}: {line}")),
            Event::Closed(id) => {
                let Some(mut w) = pool.live.remove(&id) else { continue };
                w.stdin = None;
                let status = w.child.wait();
                let tail = w.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default();
                if let Some(job) = w.in_flight {
                    let status = match status {
                        Ok(s) => s.to_string(),
                        Err(e) => format!("status unknown: {e}"),
                    };
                    let mut reason = w.broken.take().unwrap_or_else(|| format!("worker process died ({status})"));
                    if let Some(last) = tail.iter().rev().find(|l| !l.trim().is_empty()) {
                        reason.push_str(&format!("; its last stderr line: {}", last.trim()));
                    }
                    done(Reply::error(job, reason));
                }
                pool.start();
            }
        }
    }
}

struct Pool<'a> {
    jobs: &'a [Job],
    workers: usize,
    worker_args: &'a [String],
    tx: mpsc::Sender<Event>,
    pending: VecDeque<usize>,
    live: BTreeMap<u64, Worker>,
    next_id: u64,
    spawns_left: usize,
    spawn_error: Option<String>,
}

impl Pool<'_> {
    /// Starts workers up to the wanted number while jobs wait; stops at the first failure.
    fn start(&mut self) {
        while self.spawns_left > 0 && self.live.len() < self.workers && !self.pending.is_empty() {
            self.spawns_left -= 1;
            self.next_id += 1;
            match spawn(self.next_id, self.worker_args, &self.tx) {
                Ok(w) => {
                    self.live.insert(self.next_id, w);
                    self.feed(self.next_id);
                }
                Err(e) => {
                    self.spawn_error = Some(e.to_string());
                    return;
                }
            }
        }
    }

    /// Hands worker `id` its next job, or closes its stdin (it then exits) when there is none.
    fn feed(&mut self, id: u64) {
        let w = self.live.get_mut(&id).expect("a live worker");
        let Some(job) = self.pending.pop_front() else {
            w.stdin = None;
            return;
        };
        let mut line = serde_json::to_string(&self.jobs[job]).expect("serialisable");
        line.push('\n');
        let sent = w.stdin.as_mut().map(|s| s.write_all(line.as_bytes()).and_then(|()| s.flush()));
        if matches!(sent, Some(Ok(()))) {
            w.in_flight = Some(job);
        } else {
            // The worker is gone: the job goes back to the queue; its death arrives as Closed.
            self.pending.push_front(job);
            w.stdin = None;
        }
    }
}
