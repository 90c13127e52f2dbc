//! The client through its sans-IO interface: the test plays every PgBouncer entry, answering
//! (or not) each cohort the client sends.

use super::*;
use crate::flow::testkit::*;
use crate::node::{Effect, TimerCmd};
use crate::rng::{Stream, stream_rng};

const C: NodeId = 1;
const B1: NodeId = 5;
const B2: NodeId = 6;
const W1: NodeId = 7;

type H = Harness<ClientTimer>;
type Effects = Vec<Effect<FlowMsg>>;

fn tenant(read_rps: f64, write_rps: f64) -> TenantLoad {
    TenantLoad { name: "t0".into(), read_rps, write_rps, ..TenantLoad::default() }
}

fn client(t: TenantLoad) -> (H, Client) {
    let mut h = Harness::new(C, 1);
    let mut c = Client::new(ClientConfig::new(vec![t], vec![B1, B2], vec![W1]));
    c.on_start(&mut h.ctx());
    h.drain();
    (h, c)
}

/// Ticks every 100 ms until `until_ms`; every cohort sent is answered at once with what
/// `answer` says (`None`: never). Returns all effects, answers' included.
fn run(
    c: &mut Client,
    h: &mut H,
    until_ms: u64,
    answer: &mut dyn FnMut(NodeId, &Cohort) -> Option<Outcome>,
) -> Effects {
    let mut all = vec![];
    while h.now < ms_(until_ms) {
        h.advance(Duration::from_millis(100));
        c.on_timer(&mut h.ctx(), ClientTimer::Tick);
        let mut pending = h.drain();
        // Outcomes send nothing themselves (retries wait for the next tick); whatever they
        // did send would be answered in turn.
        while !pending.is_empty() {
            let sent = requests(&pending);
            all.append(&mut pending);
            for (to, cohort, route) in sent {
                if let Some(outcome) = answer(to, &cohort) {
                    c.on_message(&mut h.ctx(), to, FlowMsg::Outcome { cohort, outcome, route });
                }
            }
            pending = h.drain();
        }
        c.check_invariants();
    }
    all
}

fn all_ok(_: NodeId, c: &Cohort) -> Option<Outcome> {
    Some(Outcome::ok(c.count))
}

/// Requests sent, by (entry, kind).
fn sent_by(e: &Effects, to: NodeId, kind: ReqKind) -> u64 {
    requests(e).iter().filter(|r| r.0 == to && r.1.kind == kind).map(|r| r.1.count).sum()
}

fn routes(e: &Effects) -> Vec<(String, NodeId, String)> {
    traces(e)
        .into_iter()
        .filter_map(|t| match t {
            TraceKind::ClientRoute { request, to, reason } => Some((request, to.0, reason)),
            _ => None,
        })
        .collect()
}

const T0: Label = Label::Tenant(0);

#[test]
fn read_after_write_share_follows_the_poisson_formula() {
    let s = read_after_write_share(10.0, 100, Duration::from_secs(1));
    assert!((s - (1.0 - (-0.1f64).exp())).abs() < 1e-12, "{s}");
    assert_eq!(read_after_write_share(0.0, 100, Duration::from_secs(1)), 0.0, "nobody writes");
    assert_eq!(read_after_write_share(10.0, 100, Duration::ZERO), 0.0, "no window");
    assert_eq!(read_after_write_share(10.0, 0, Duration::from_secs(1)), 1.0);
    assert!(read_after_write_share(1e6, 10, Duration::from_secs(10)) > 0.999_999);
    let longer = read_after_write_share(10.0, 100, Duration::from_secs(5));
    assert!(longer > s && longer < 1.0, "grows with the window");
}

#[test]
fn reads_after_writes_go_to_the_write_entry_as_read_primary() {
    let t = TenantLoad { users: 100, read_after_write_window: Duration::from_secs(1), ..tenant(1000.0, 100.0) };
    let (mut h, mut c) = client(t);
    let e = run(&mut c, &mut h, 10_000, &mut all_ok);
    // Share 1 - e^-1 of 10 000 reads; the carry keeps each total within one request.
    let share = 1.0 - (-1.0f64).exp();
    let primary = sent_by(&e, W1, ReqKind::ReadPrimary) as f64;
    let local = sent_by(&e, B1, ReqKind::Read) as f64;
    assert!((primary - 10_000.0 * share).abs() <= 1.0, "{primary}");
    assert!((local - 10_000.0 * (1.0 - share)).abs() <= 1.0, "{local}");
    assert_eq!(sent_by(&e, W1, ReqKind::Write), 1000);
    assert_eq!(
        sent_by(&e, B1, ReqKind::Write) + sent_by(&e, B1, ReqKind::ReadPrimary) + sent_by(&e, W1, ReqKind::Read),
        0
    );
    let issued = counted(&e, CLIENT_REQUESTS, T0);
    assert_eq!(issued as f64, primary + local + 1000.0);
    assert_eq!(counted(&e, CLIENT_OK, T0), issued);
    assert!(requests(&e).iter().all(|r| r.2 == Route::new(C) && r.1.client == C));
    // Answered at once: zero latency for every request.
    assert_eq!(observed(&e, CLIENT_LATENCY_MS, T0).iter().map(|o| o.1).sum::<u64>(), issued);
}

#[test]
fn the_curve_follows_the_day_spikes_and_the_load_factor() {
    let hour = |h: f64| SimTime::from_duration(Duration::from_secs_f64(h * 3600.0));
    let t = TenantLoad {
        diurnal_amplitude: 0.5,
        peak_hour: 12.0,
        spikes: vec![Spike { from: hour(12.0), until: hour(13.0), factor: 3.0 }],
        ..tenant(100.0, 0.0)
    };
    assert!((t.curve(hour(0.0)) - 0.5).abs() < 1e-9);
    assert!((t.curve(hour(6.0)) - 1.0).abs() < 1e-9);
    assert!((t.curve(hour(11.999)) - 1.5).abs() < 1e-4, "peak, spike not yet");
    assert!((t.curve(hour(12.0)) - 4.5).abs() < 1e-9, "peak times the spike");
    assert!((t.curve(hour(36.0)) - 1.5).abs() < 1e-9, "the day repeats");
    let (mut h, mut c) = client(tenant(100.0, 0.0));
    c.set_load_factor(0.25);
    let e = run(&mut c, &mut h, 10_000, &mut all_ok);
    assert_eq!(counted(&e, CLIENT_REQUESTS, T0), 250, "a quarter of 1000");
}

#[test]
fn backoff_delays_double_up_to_the_cap_and_jitter_is_deterministic_per_seed() {
    let policy = |jitter| RetryPolicy::Backoff {
        base: Duration::from_millis(100),
        cap: Duration::from_secs(1),
        max_retries: 6,
        jitter,
    };
    let mut rng = stream_rng(1, Stream::Named(1));
    let plain: Vec<u64> = (0..6).map(|a| policy(false).delay(a, &mut rng).as_millis() as u64).collect();
    assert_eq!(plain, vec![100, 200, 400, 800, 1000, 1000]);
    let jittered = |seed| -> Vec<Duration> {
        let mut rng = stream_rng(seed, Stream::Named(1));
        (0..6).map(|a| policy(true).delay(a, &mut rng)).collect()
    };
    let a = jittered(1);
    assert!(a.iter().zip(&plain).all(|(d, max)| *d <= Duration::from_millis(*max)), "{a:?}");
    assert_eq!(a, jittered(1), "same seed, same delays");
    assert_ne!(a, jittered(2), "another seed, other delays");
    assert_eq!(RetryPolicy::Immediate { max_retries: 3 }.delay(2, &mut rng), Duration::ZERO);
}

#[test]
fn failed_attempts_are_retried_with_backoff_and_keep_their_creation_time() {
    let retry = RetryPolicy::Backoff {
        base: Duration::from_millis(200),
        cap: Duration::from_secs(1),
        max_retries: 2,
        jitter: false,
    };
    let (mut h, mut c) = client(TenantLoad { retry, ..tenant(0.0, 0.0) });
    let now = h.now;
    c.issue(&mut h.ctx(), 0, ReqKind::Write, 5, now, 0);
    let e = h.drain();
    let [(W1, first, _)] = requests(&e)[..] else { panic!("{e:?}") };
    assert_eq!(counted(&e, CLIENT_REQUESTS, T0), 5);
    let mut refusals = 0;
    let mut refuse = |_: NodeId, c: &Cohort| {
        refusals += 1;
        Some(failed(ErrorKind::Refused, c.count))
    };
    h.set_ms(50);
    c.on_message(
        &mut h.ctx(),
        W1,
        FlowMsg::Outcome { cohort: first, outcome: failed(ErrorKind::Refused, 5), route: Route::new(C) },
    );
    let e = h.drain();
    assert_eq!((counted(&e, CLIENT_ERRORS_REFUSED, T0), counted(&e, CLIENT_RETRIES, T0)), (5, 5));
    assert_eq!(c.retrying(), 5);
    h.set_ms(100);
    // The first retry is due 200 ms after the failure (at 250 ms): issued on the 300 ms tick.
    let e = run(&mut c, &mut h, 200, &mut refuse);
    assert!(requests(&e).is_empty());
    let e = run(&mut c, &mut h, 300, &mut refuse);
    let [(W1, retry1, _)] = requests(&e)[..] else { panic!("{e:?}") };
    assert_eq!((retry1.count, retry1.created), (5, ms_(0)), "a new cohort with the first creation time");
    assert_ne!(retry1.seq, first.seq);
    assert_eq!(counted(&e, CLIENT_REQUESTS, T0), 0, "retries are not new requests");
    // Refused again at 300 ms: the second retry waits 400 ms.
    let e = run(&mut c, &mut h, 600, &mut |_, _| None);
    assert!(requests(&e).is_empty());
    let e = run(&mut c, &mut h, 700, &mut |_, c| {
        let mut o = Outcome::ok(3);
        o.add(&failed(ErrorKind::ReadOnly, c.count - 3));
        Some(o)
    });
    assert_eq!(requested(&e), 5);
    assert_eq!(refusals, 1);
    // The last allowed attempt: 3 succeed 700 ms after creation, 2 fail for good.
    assert_eq!(counted(&e, CLIENT_OK, T0), 3);
    assert_eq!(observed(&e, CLIENT_LATENCY_MS, T0), vec![(700.0, 3)]);
    assert_eq!(counted(&e, CLIENT_ERRORS_READ_ONLY, T0), 2);
    assert_eq!((counted(&e, CLIENT_FAILED, T0), counted(&e, CLIENT_RETRIES, T0)), (2, 0));
    assert_eq!((c.outstanding(), c.retrying()), (0, 0));
}

#[test]
fn immediate_retries_go_out_at_the_next_tick_merged_per_kind_and_attempt() {
    let (mut h, mut c) = client(TenantLoad { retry: RetryPolicy::Immediate { max_retries: 2 }, ..tenant(0.0, 0.0) });
    // Two first attempts of reads (3 created at 0 ms, 1 at 40 ms), a write, and reads already
    // retried once.
    c.issue(&mut h.ctx(), 0, ReqKind::Read, 3, ms_(0), 0);
    h.set_ms(40);
    c.issue(&mut h.ctx(), 0, ReqKind::Read, 1, ms_(40), 0);
    c.issue(&mut h.ctx(), 0, ReqKind::Write, 2, ms_(40), 0);
    c.issue(&mut h.ctx(), 0, ReqKind::Read, 5, ms_(0), 1);
    let sent = requests(&h.drain());
    assert_eq!(sent.len(), 4);
    // All fail at 50 ms: nothing goes out from the outcome handler.
    h.set_ms(50);
    for &(to, cohort, route) in &sent {
        let outcome = failed(ErrorKind::PoolExhausted, cohort.count);
        c.on_message(&mut h.ctx(), to, FlowMsg::Outcome { cohort, outcome, route });
    }
    let e = h.drain();
    assert!(requests(&e).is_empty(), "{e:?}");
    assert_eq!((counted(&e, CLIENT_RETRIES, T0), c.retrying(), c.outstanding()), (11, 11, 0));
    // The next tick sends one cohort per (tenant, kind, attempt); a merged cohort's creation
    // time is the count-weighted mean of its parts': (3 * 0 + 1 * 40) / 4 = 10 ms.
    h.set_ms(100);
    c.on_timer(&mut h.ctx(), ClientTimer::Tick);
    let e = h.drain();
    let got: Vec<(NodeId, ReqKind, u64, SimTime)> =
        requests(&e).iter().map(|r| (r.0, r.1.kind, r.1.count, r.1.created)).collect();
    assert_eq!(
        got,
        vec![(B1, ReqKind::Read, 4, ms_(10)), (B1, ReqKind::Read, 5, ms_(0)), (W1, ReqKind::Write, 2, ms_(40))]
    );
    assert!(requests(&e).iter().all(|r| r.1.deadline == ms_(100) + Duration::from_secs(5)), "sent + timeout");
    assert_eq!(counted(&e, CLIENT_REQUESTS, T0), 0, "retries are not new requests");
    assert_eq!((c.retrying(), c.outstanding()), (0, 11));
    // They fail again: the merged reads (attempt 1) are retried once more, the reads already
    // at their second retry fail for good; the write succeeds, 110 ms after it was created.
    h.set_ms(150);
    let [(_, merged, route), (_, second, _), (_, write, _)] = requests(&e)[..] else { panic!("{e:?}") };
    for cohort in [merged, second] {
        let outcome = failed(ErrorKind::PoolExhausted, cohort.count);
        c.on_message(&mut h.ctx(), B1, FlowMsg::Outcome { cohort, outcome, route });
    }
    c.on_message(&mut h.ctx(), W1, FlowMsg::Outcome { cohort: write, outcome: Outcome::ok(2), route });
    let e = h.drain();
    assert!(requests(&e).is_empty());
    assert_eq!((counted(&e, CLIENT_RETRIES, T0), counted(&e, CLIENT_FAILED, T0)), (4, 5));
    assert_eq!(observed(&e, CLIENT_LATENCY_MS, T0), vec![(110.0, 2)]);
    h.set_ms(200);
    c.on_timer(&mut h.ctx(), ClientTimer::Tick);
    let e = h.drain();
    let [(B1, last, route)] = requests(&e)[..] else { panic!("{e:?}") };
    assert_eq!((last.count, last.created), (4, ms_(10)), "the merged creation time is kept");
    c.on_message(
        &mut h.ctx(),
        B1,
        FlowMsg::Outcome { cohort: last, outcome: failed(ErrorKind::PoolExhausted, 4), route },
    );
    let e = h.drain();
    assert!(requests(&e).is_empty());
    assert_eq!((counted(&e, CLIENT_FAILED, T0), counted(&e, CLIENT_RETRIES, T0)), (4, 0));
    assert_eq!((c.retrying(), c.outstanding()), (0, 0));
    c.check_invariants();
}

#[test]
fn unanswered_attempts_time_out_and_late_outcomes_are_ignored() {
    let (mut h, mut c) = client(TenantLoad { timeout: Duration::from_secs(1), ..tenant(0.0, 0.0) });
    let now = h.now;
    c.issue(&mut h.ctx(), 0, ReqKind::Read, 5, now, 0);
    let (_, first, route) = requests(&h.drain())[0];
    let e = run(&mut c, &mut h, 900, &mut |_, _| None);
    assert_eq!(counted(&e, CLIENT_ERRORS_TIMED_OUT, T0), 0);
    let e = run(&mut c, &mut h, 1000, &mut |_, _| None);
    assert_eq!((counted(&e, CLIENT_ERRORS_TIMED_OUT, T0), counted(&e, CLIENT_FAILED, T0)), (5, 5));
    h.set_ms(1100);
    c.on_message(&mut h.ctx(), B1, FlowMsg::Outcome { cohort: first, outcome: Outcome::ok(5), route });
    assert!(h.drain().is_empty(), "a late answer counts for nothing");
    // A partial answer leaves the rest outstanding.
    let now = h.now;
    c.issue(&mut h.ctx(), 0, ReqKind::Read, 5, now, 0);
    let (_, second, route) = requests(&h.drain())[0];
    let part = FlowMsg::Outcome { cohort: second, outcome: Outcome::ok(2), route };
    c.on_message(&mut h.ctx(), B1, part.clone());
    assert_eq!(c.outstanding(), 3);
    c.on_message(&mut h.ctx(), B1, part.clone());
    c.on_message(&mut h.ctx(), B1, part);
    assert_eq!((counted(&h.drain(), CLIENT_OK, T0), c.outstanding()), (5, 0), "credited only up to what was sent");
}

#[test]
fn anycast_withdraws_a_refusing_entry_and_reprobes_it() {
    let (mut h, mut c) = client(tenant(100.0, 10.0));
    let mut answer = |to: NodeId, c: &Cohort| match to {
        B1 => Some(failed(ErrorKind::Refused, c.count)),
        _ => Some(Outcome::ok(c.count)),
    };
    // The first window ends one window after the first tick (at 100 ms).
    let e = run(&mut c, &mut h, 1_000, &mut answer);
    assert!(routes(&e).is_empty(), "{:?}", routes(&e));
    let e = run(&mut c, &mut h, 1_100, &mut answer);
    let r = routes(&e);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!((r[0].0.as_str(), r[0].1), ("read", B2));
    assert!(r[0].2.contains("refused or timed out"), "{}", r[0].2);
    assert_eq!((c.read_entry(), c.write_entry()), (B2, W1), "writes are unaffected");
    let e = run(&mut c, &mut h, 11_000, &mut answer);
    assert!(routes(&e).is_empty());
    assert_eq!(sent_by(&e, B1, ReqKind::Read), 0, "nothing for the withdrawn entry");
    // Ten seconds later it is tried again; it still refuses, so it is withdrawn again.
    let e = run(&mut c, &mut h, 11_100, &mut answer);
    assert_eq!(routes(&e), vec![("read".to_string(), B1, "re-probe: a nearer entry is back".to_string())]);
    let e = run(&mut c, &mut h, 12_100, &mut answer);
    assert_eq!(routes(&e).iter().map(|r| r.1).collect::<Vec<_>>(), vec![B2]);
    // Once it serves again, the region stays on it.
    let e = run(&mut c, &mut h, 30_000, &mut all_ok);
    assert_eq!(routes(&e).iter().map(|r| r.1).collect::<Vec<_>>(), vec![B1]);
    assert_eq!(c.read_entry(), B1);
}

#[test]
fn anycast_withdraws_a_silent_entry() {
    let (mut h, mut c) = client(tenant(100.0, 0.0));
    let mut answer = |to: NodeId, c: &Cohort| (to != B1).then(|| Outcome::ok(c.count));
    // The first window (ending at 1.1 s) saw requests but no answers yet; the second sees no
    // answer at all.
    let e = run(&mut c, &mut h, 2_000, &mut answer);
    assert!(routes(&e).is_empty());
    let e = run(&mut c, &mut h, 2_100, &mut answer);
    let r = routes(&e);
    assert_eq!(r.len(), 1);
    assert!(r[0].1 == B2 && r[0].2.contains("no answer"), "{r:?}");
    c.check_invariants();
}

#[test]
fn start_after_delays_the_first_tick_and_the_first_window() {
    // Below one tick, the first tick is at `tick` as without `start_after`.
    for (start_ms, first_ms) in [(0, 100), (30, 100), (500, 500)] {
        let mut cfg = ClientConfig::new(vec![tenant(100.0, 0.0)], vec![B1, B2], vec![W1]);
        cfg.start_after = Duration::from_millis(start_ms);
        let mut h = H::new(C, 1);
        let mut c = Client::new(cfg);
        c.on_start(&mut h.ctx());
        assert_eq!(h.timers, vec![TimerCmd::Set { timer: ClientTimer::Tick, at: ms_(first_ms) }], "{start_ms}");
        assert!(h.drain().is_empty(), "nothing is sent at start");
    }
    // Following the client's own timers, B1 refusing everything: no request before 500 ms, and
    // the first window is judged one window after the first tick, at 1.5 s.
    let mut cfg = ClientConfig::new(vec![tenant(100.0, 0.0)], vec![B1, B2], vec![W1]);
    cfg.start_after = Duration::from_millis(500);
    let mut h = H::new(C, 1);
    let mut c = Client::new(cfg);
    c.on_start(&mut h.ctx());
    let mut next = ms_(500);
    h.drain();
    let (mut first_sent, mut withdrawn_at) = (None, None);
    while next <= ms_(2_000) {
        h.now = next;
        c.on_timer(&mut h.ctx(), ClientTimer::Tick);
        let [TimerCmd::Set { timer: ClientTimer::Tick, at }] = h.timers[..] else { panic!("{:?}", h.timers) };
        next = at;
        let e = h.drain();
        for (to, cohort, route) in requests(&e) {
            first_sent.get_or_insert((h.now, to, cohort.count, cohort.created, cohort.deadline));
            let outcome = failed(ErrorKind::Refused, cohort.count);
            c.on_message(&mut h.ctx(), to, FlowMsg::Outcome { cohort, outcome, route });
        }
        if !routes(&e).is_empty() {
            withdrawn_at.get_or_insert((h.now, routes(&e)));
        }
        h.drain();
    }
    assert_eq!(first_sent, Some((ms_(500), B1, 10, ms_(500), ms_(5_500))), "10 reads a tick from the first");
    let (at, r) = withdrawn_at.expect("B1 withdrawn");
    assert_eq!((at, r.len(), r[0].1), (ms_(1_500), 1, B2), "{r:?}");
}

#[test]
fn a_slow_but_answering_entry_stays() {
    let (mut h, mut c) = client(tenant(100.0, 0.0));
    // Answers errors from further down (not the entry's fault) and some timeouts.
    let mut n = 0;
    let mut answer = |_: NodeId, c: &Cohort| {
        n += 1;
        Some(if n % 3 == 0 { failed(ErrorKind::TimedOut, c.count) } else { failed(ErrorKind::ReadOnly, c.count) })
    };
    let e = run(&mut c, &mut h, 5_000, &mut answer);
    assert!(routes(&e).is_empty(), "{:?}", routes(&e));
    assert_eq!(c.read_entry(), B1);
}

#[test]
fn the_operator_moves_reads_and_writes() {
    let (mut h, mut c) = client(tenant(10.0, 10.0));
    c.set_read_entries(&mut h.ctx(), vec![B2, B1]);
    c.set_write_entries(&mut h.ctx(), vec![B1]);
    let e = h.drain();
    assert_eq!(
        routes(&e),
        vec![("read".to_string(), B2, "operator".to_string()), ("write".to_string(), B1, "operator".to_string())]
    );
    let e = run(&mut c, &mut h, 1_000, &mut all_ok);
    assert_eq!((sent_by(&e, B2, ReqKind::Read), sent_by(&e, B1, ReqKind::Write)), (10, 10));
    c.check_invariants();
}
