//! Each figure of the table: the servers it needs, the load it puts on them, the ratio.

mod deployed;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};
use dockerflow::{Builder, Check, Dockerflow};

use crate::backends::{FreshDatabase, PgPool, PrivateRedis};
use crate::checks::{self, Gate};
use crate::server::{check_threads_cpu_time, Server, Setup};
use crate::table::{Row, Target};
use crate::wrk::{Load, Measured, Wrk};
use crate::BenchError;

/// Unlocks the heartbeat's details, for the one request that makes sure a server is healthy
/// before it is measured (the measured requests send no token and get the short body).
const DETAILS_TOKEN: &str = "dockerflow-bench";

/// How long each of the "N checks" takes.
const CHECK_DELAY: Duration = Duration::from_millis(100);

/// How hard and how long to measure.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) quick: bool,
    /// Workers of every server.
    pub(crate) workers: usize,
    /// wrk connections for throughput figures.
    pub(crate) connections: u32,
    /// Throughput runs of each endpoint, interleaved; the median of the ratios within a round
    /// counts.
    pub(crate) rounds: usize,
    /// Seconds of each throughput run.
    pub(crate) seconds: u64,
    /// Seconds of each one-client latency run.
    pub(crate) latency_seconds: u64,
    /// The check timeout of the hung-check figure.
    pub(crate) hang_timeout: Duration,
    /// Heartbeat requests before the first and the second memory reading.
    pub(crate) memory_requests: (u64, u64),
    /// Upper bound of the memory figure's runs.
    pub(crate) memory_seconds: u64,
}

impl Plan {
    pub(crate) fn full(workers: usize, connections: u32) -> Self {
        Plan {
            quick: false,
            workers,
            connections,
            rounds: 7,
            seconds: 2,
            latency_seconds: 2,
            hang_timeout: Duration::from_secs(1),
            memory_requests: (100_000, 1_000_000),
            memory_seconds: 300,
        }
    }

    pub(crate) fn quick(workers: usize, connections: u32) -> Self {
        Plan {
            quick: true,
            workers,
            connections,
            rounds: 1,
            seconds: 1,
            latency_seconds: 1,
            hang_timeout: Duration::from_millis(300),
            memory_requests: (2_000, 20_000),
            memory_seconds: 30,
        }
    }
}

/// Everything the figures share: wrk, the backends, the version file.
pub(crate) struct Bench {
    plan: Plan,
    wrk: Wrk,
    // Fields drop in this order: the pool lets go of its connections before the database goes.
    pool: web::Data<PgPool>,
    redis_client: web::Data<redis::Client>,
    redis: PrivateRedis,
    _database: FreshDatabase,
    version_file: TempFile,
}

impl Bench {
    pub(crate) fn new(plan: Plan) -> Result<Self, BenchError> {
        let wrk = Wrk::new()?;
        let redis = PrivateRedis::start()?;
        let database = FreshDatabase::create()?;
        let pool = web::Data::new(database.pool()?);
        let redis_client = web::Data::new(
            redis::Client::open(redis.url())
                .map_err(|e| BenchError::new(format!("redis client: {e}")))?,
        );
        let version_file = TempFile::write(
            "version.json",
            r#"{"source": "https://github.com/mozilla-services/dockerflow-rs", "version": "0.1.0", "commit": "0123456789abcdef0123456789abcdef01234567", "build": "https://ci.example.com/builds/1"}"#,
        )?;
        Ok(Bench {
            plan,
            wrk,
            pool,
            redis_client,
            redis,
            _database: database,
            version_file,
        })
    }

    /// A builder that ignores the process environment and runs exactly `checks`.
    fn dockerflow(&self, checks: Vec<Check>) -> Builder {
        let names: Vec<String> = checks.iter().map(|c| c.name().to_owned()).collect();
        checks.into_iter().fold(
            Dockerflow::builder()
                .environment(std::iter::empty::<(String, String)>())
                .version_file(&self.version_file.0)
                .details_token(DETAILS_TOKEN)
                .only_checks(names),
            Builder::check,
        )
    }

    /// A server with `dockerflow` mounted and the pool and Redis client in its app data.
    fn serve(&self, name: &str, dockerflow: Builder) -> Result<Server, BenchError> {
        let dockerflow = dockerflow
            .build()
            .map_err(|e| BenchError::new(format!("dockerflow for server {name}: {e}")))?;
        let pool = self.pool.clone();
        let client = self.redis_client.clone();
        let setup: Setup = Arc::new(move |cfg| {
            cfg.app_data(pool.clone()).app_data(client.clone());
            dockerflow.configure(cfg);
        });
        Server::start(name, self.plan.workers, setup)
    }

    /// The baseline: 200 with an empty body, nothing else, on the paths of the endpoints it is
    /// compared with. The same path matters: parsing and checking a request's path costs by
    /// its length (`/__lbheartbeat__` costs ~500 instructions more than `/`, callgrind says,
    /// about 3 % of the user-space work of an empty answer).
    fn serve_bare(&self) -> Result<Server, BenchError> {
        let setup: Setup = Arc::new(|cfg| {
            for path in ["/__lbheartbeat__", "/__version__"] {
                cfg.route(
                    path,
                    web::get().to(|| async { HttpResponse::Ok().finish() }),
                );
            }
        });
        Server::start("bare", self.plan.workers, setup)
    }

    /// Fails the bench when `path` does not answer `status`: a figure of a broken set-up would
    /// be meaningless.
    fn expect(&self, server: &Server, path: &str, status: u16) -> Result<(), BenchError> {
        let auth = format!("Bearer {DETAILS_TOKEN}");
        let answer = server.get(path, &[("Authorization", &auth)])?;
        if answer.status != status {
            return Err(BenchError::new(format!(
                "{} answered {} (expected {status}): {}",
                server.url(path),
                answer.status,
                answer.body
            )));
        }
        Ok(())
    }

    fn run(&self, load: &Load) -> Result<Measured, BenchError> {
        let measured = self.wrk.run(load)?;
        if measured.requests == 0 {
            return Err(BenchError::new(format!(
                "wrk got no answer from {}",
                load.url
            )));
        }
        Ok(measured)
    }

    /// Like [`Bench::run`], and every answer must have been 2xx.
    /// One throughput run of `url` on `server` (the plan's connections and seconds): what wrk
    /// measured, and the server's CPU time per request in µs (its workers and dockerflow's
    /// threads).
    fn measure(&self, server: &Server, url: &str) -> Result<(Measured, f64), BenchError> {
        let load = Load::new(url, self.plan.connections, self.plan.seconds);
        let cpu_before = server.cpu_time() + check_threads_cpu_time();
        let measured = self.run_ok(&load)?;
        let cpu_used = server.cpu_time() + check_threads_cpu_time() - cpu_before;
        let cpu = cpu_used.as_secs_f64() * 1e6 / measured.requests as f64;
        Ok((measured, cpu))
    }

    fn run_ok(&self, load: &Load) -> Result<Measured, BenchError> {
        let measured = self.run(load)?;
        if measured.non_2xx > 0 || measured.timeouts > 0 {
            return Err(BenchError::new(format!(
                "{}: {} answers were not 2xx and {} timed out",
                load.url, measured.non_2xx, measured.timeouts
            )));
        }
        Ok(measured)
    }

    /// `/__lbheartbeat__` and `/__version__` against the bare handler on the same path, and
    /// `/__heartbeat__` on the real backends (default cache time) against `/__lbheartbeat__`:
    /// interleaved runs, the median of the ratios within a round.
    pub(crate) fn throughput(&self) -> Result<Vec<Row>, BenchError> {
        let plan = &self.plan;
        let bare = self.serve_bare()?;
        let plain = self.serve("plain", self.dockerflow(Vec::new()))?;
        let backends = self.serve("backends", self.dockerflow(checks::backend_checks()))?;
        self.expect(&bare, "/__lbheartbeat__", 200)?;
        self.expect(&bare, "/__version__", 200)?;
        self.expect(&plain, "/__lbheartbeat__", 200)?;
        self.expect(&plain, "/__version__", 200)?;
        self.expect(&backends, "/__heartbeat__", 200)?;
        const BARE_LB: usize = 0;
        const LB: usize = 1;
        const BARE_VERSION: usize = 2;
        const VERSION: usize = 3;
        const HEARTBEAT: usize = 4;
        let targets = [
            (&bare, bare.url("/__lbheartbeat__")),
            (&plain, plain.url("/__lbheartbeat__")),
            (&bare, bare.url("/__version__")),
            (&plain, plain.url("/__version__")),
            (&backends, backends.url("/__heartbeat__")),
        ];
        if !plan.quick {
            for (_, url) in &targets {
                self.run_ok(&Load::new(url.as_str(), plan.connections, 1))?;
            }
        }
        // Short runs, interleaved (the order reversed every other round, against drift), and
        // each ratio taken within a round, where the machine's other load was about the same
        // for both sides; the median of those ratios is the figure. Beside it, the CPU time the
        // server (its worker and dockerflow's check threads) spent per request, which the
        // machine's other load disturbs much less than the rate.
        let mut rounds = Rounds::new(targets.len());
        for round in 0..plan.rounds {
            for i in Rounds::order(targets.len(), round) {
                let (server, url) = &targets[i];
                let (measured, cpu_per_request) = self.measure(server, url)?;
                rounds.push(i, &measured, cpu_per_request);
            }
        }
        let (lb_bare, version_bare, heartbeat_lb) = (
            rounds.compare(LB, BARE_LB),
            rounds.compare(VERSION, BARE_VERSION),
            rounds.compare(HEARTBEAT, LB),
        );
        Ok(vec![
            Row::new(
                "`/__lbheartbeat__` req/s ÷ bare handler (same path) req/s",
                lb_bare.1,
                Target::AtLeast(0.95),
                lb_bare.0,
            ),
            Row::new(
                "`/__version__` req/s ÷ bare handler (same path) req/s",
                version_bare.1,
                Target::AtLeast(0.90),
                version_bare.0,
            ),
            Row::new(
                "`/__heartbeat__` (PostgreSQL + migrations + Redis, cache 1 s) req/s ÷ `/__lbheartbeat__` req/s",
                heartbeat_lb.1,
                Target::AtLeast(0.80),
                heartbeat_lb.0,
            ),
        ])
    }

    /// Redis PINGs per heartbeat request with 64 clients and no reuse of finished runs: what
    /// sharing a run in flight saves the backends.
    pub(crate) fn probes(&self) -> Result<Row, BenchError> {
        let server = self.serve(
            "backends-ttl0",
            self.dockerflow(checks::backend_checks())
                .cache_ttl(Duration::ZERO),
        )?;
        self.expect(&server, "/__heartbeat__", 200)?;
        let before = self.redis.ping_calls()?;
        let measured = self.run_ok(&Load::new(
            server.url("/__heartbeat__"),
            64,
            self.plan.seconds.max(2),
        ))?;
        let pings = self.redis.ping_calls()?.saturating_sub(before);
        Ok(Row::new(
            "backend probes (Redis PINGs) per heartbeat request, 64 clients, cache 0",
            format!(
                "{} PINGs for {} requests",
                thousands(pings as f64),
                thousands(measured.requests as f64)
            ),
            Target::AtMost(0.05),
            pings as f64 / measured.requests as f64,
        ))
    }

    /// Resident memory after many heartbeat requests against after fewer, on the real
    /// backends with no reuse of finished runs (so runs keep happening).
    pub(crate) fn memory(&self) -> Result<Row, BenchError> {
        let (first, total) = self.plan.memory_requests;
        let server = self.serve(
            "memory",
            self.dockerflow(checks::backend_checks())
                .cache_ttl(Duration::ZERO),
        )?;
        self.expect(&server, "/__heartbeat__", 200)?;
        let url = server.url("/__heartbeat__");
        let deadline = Instant::now() + Duration::from_secs(self.plan.memory_seconds);
        let early = self.drive(&url, first, deadline)?;
        let rss_early = vm_rss()?;
        let done = early + self.drive(&url, total.saturating_sub(early), deadline)?;
        let rss_late = vm_rss()?;
        Ok(Row::new(
            format!(
                "resident memory after {} ÷ after {} heartbeat requests",
                thousands(total as f64),
                thousands(first as f64)
            ),
            format!(
                "{:.1} MiB after {} vs {:.1} MiB after {}",
                mib(rss_late),
                thousands(done as f64),
                mib(rss_early),
                thousands(early as f64)
            ),
            Target::AtMost(1.05),
            rss_late as f64 / rss_early as f64,
        ))
    }

    /// Resident memory after 1,000 `/__version__` requests against before them, with the
    /// version path pointing at `/dev/zero`, which an unbounded read fills memory from.
    pub(crate) fn hostile_version(&self) -> Result<Row, BenchError> {
        const REQUESTS: usize = 1_000;
        let server = self.serve(
            "hostile-version",
            self.dockerflow(Vec::new()).version_file("/dev/zero"),
        )?;
        self.expect(&server, "/__version__", 500)?;
        let before = vm_rss()?;
        for _ in 0..REQUESTS {
            let answer = server.get("/__version__", &[])?;
            if answer.status != 500 {
                return Err(BenchError::new(format!(
                    "/__version__ on /dev/zero answered {}",
                    answer.status
                )));
            }
        }
        let after = vm_rss()?;
        Ok(Row::new(
            format!(
                "resident memory after ÷ before {} `/__version__` requests on /dev/zero",
                thousands(REQUESTS as f64),
            ),
            format!("{:.1} MiB vs {:.1} MiB", mib(after), mib(before)),
            Target::AtMost(1.05),
            after as f64 / before as f64,
        ))
    }

    /// Sends about `requests` requests to `url` with 64 clients, stopping at `deadline`;
    /// returns how many were answered.
    ///
    /// wrk runs for its whole duration even when the budget script has stopped its threads, so
    /// the first run lasts a second and measures the rate, and the next ones last as long as
    /// the rest should take at that rate, each capped at what is left by the budget script.
    fn drive(&self, url: &str, requests: u64, deadline: Instant) -> Result<u64, BenchError> {
        let mut done = 0;
        let mut rate: Option<f64> = None;
        for _ in 0..20 {
            let left_time = deadline.saturating_duration_since(Instant::now()).as_secs();
            if done >= requests || left_time == 0 {
                break;
            }
            let left = requests - done;
            let seconds = match rate {
                None => 1,
                Some(rate) => ((left as f64 / rate).ceil() as u64).clamp(1, left_time),
            };
            let measured = self.run_ok(&Load::new(url, 64, seconds).budget(left))?;
            done += measured.requests;
            if measured.requests < left {
                rate = Some(measured.requests as f64 / seconds as f64);
            }
        }
        Ok(done)
    }

    /// Median heartbeat latency of one client with N checks of 100 ms each (async sleeps, then
    /// blocking ones), no reuse of finished runs.
    pub(crate) fn fan_out(&self) -> Result<Vec<Row>, BenchError> {
        let mut rows = Vec::new();
        type Make = fn(usize, Duration) -> Vec<Check>;
        let kinds: [(&str, Make); 2] = [
            ("async", checks::sleeping_async),
            ("blocking", checks::sleeping_blocking),
        ];
        for (kind, make) in kinds {
            for n in [1, 8, 64] {
                let server = self.serve(
                    &format!("{kind}-{n}"),
                    self.dockerflow(make(n, CHECK_DELAY))
                        .cache_ttl(Duration::ZERO),
                )?;
                self.expect(&server, "/__heartbeat__", 200)?;
                let measured = self.run_ok(&Load::new(
                    server.url("/__heartbeat__"),
                    1,
                    self.plan.latency_seconds,
                ))?;
                rows.push(Row::new(
                    format!(
                        "heartbeat p50 with {n} {kind} check{} of 100 ms ÷ 100 ms",
                        if n == 1 { "" } else { "s" }
                    ),
                    format!("{} ({} requests)", millis(measured.p50), measured.requests),
                    Target::AtMost(1.10),
                    measured.p50.as_secs_f64() / CHECK_DELAY.as_secs_f64(),
                ));
            }
        }
        Ok(rows)
    }

    /// Time to answer when one check hangs, against the check timeout.
    pub(crate) fn hung_check(&self) -> Result<Row, BenchError> {
        let timeout = self.plan.hang_timeout;
        let server = self.serve(
            "hung-one",
            self.dockerflow(vec![checks::hanging_async("hung".to_owned())])
                .cache_ttl(Duration::ZERO)
                .check_timeout(timeout),
        )?;
        let seconds = (timeout.as_secs_f64() * 6.0).ceil() as u64;
        let load = Load::new(server.url("/__heartbeat__"), 1, seconds).timeout(seconds + 5);
        let measured = self.run(&load)?;
        if measured.non_2xx != measured.requests {
            return Err(BenchError::new(format!(
                "with a hung check, {} of {} heartbeats did not fail",
                measured.requests - measured.non_2xx,
                measured.requests
            )));
        }
        Ok(Row::new(
            "time to answer with one hung check ÷ check timeout",
            format!(
                "p50 {}, max {}, timeout {} ({} requests)",
                millis(measured.p50),
                millis(measured.max),
                millis(timeout),
                measured.requests
            ),
            Target::AtMost(1.05),
            measured.p50.as_secs_f64() / timeout.as_secs_f64(),
        ))
    }

    /// `/__lbheartbeat__` p99 while 64 heartbeat clients wait on checks that all hang (four
    /// async, four blocking), against its p99 with no heartbeat traffic; interleaved, medians.
    pub(crate) fn lb_while_hanging(&self) -> Result<Row, BenchError> {
        let plan = &self.plan;
        let gate = Gate::closed(Duration::from_secs(180));
        let hanging: Vec<Check> = (0..4)
            .map(|i| checks::hanging_async(format!("hang_async_{i}")))
            .chain((0..4).map(|i| checks::hanging_blocking(format!("hang_blocking_{i}"), &gate)))
            .collect();
        let server = self.serve(
            "hung-all",
            self.dockerflow(hanging).cache_ttl(Duration::ZERO),
        )?;
        self.expect(&server, "/__lbheartbeat__", 200)?;
        let lb = Load::new(
            server.url("/__lbheartbeat__"),
            plan.connections,
            plan.seconds,
        );
        let heartbeats = Load::new(server.url("/__heartbeat__"), 64, plan.seconds + 2).timeout(10);
        let (mut idle, mut busy) = (Vec::new(), Vec::new());
        let measured = (|| {
            for _ in 0..plan.rounds.min(4) {
                idle.push(self.run_ok(&lb)?.p99.as_secs_f64());
                let background = self.wrk.start(&heartbeats)?;
                std::thread::sleep(Duration::from_millis(500));
                busy.push(self.run_ok(&lb)?.p99.as_secs_f64());
                background.finish()?;
            }
            Ok::<(), BenchError>(())
        })();
        gate.open();
        drop(server);
        measured?;
        let (idle, busy) = (median(&idle), median(&busy));
        Ok(Row::new(
            "`/__lbheartbeat__` p99 while every check hangs ÷ p99 idle",
            format!(
                "{} vs {}",
                millis(Duration::from_secs_f64(busy)),
                millis(Duration::from_secs_f64(idle))
            ),
            Target::AtMost(2.0),
            busy / idle,
        ))
    }
}

/// A file in the temp directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn write(name: &str, contents: &str) -> Result<Self, BenchError> {
        let path =
            std::env::temp_dir().join(format!("dockerflow-bench-{}-{name}", std::process::id()));
        std::fs::write(&path, contents)
            .map_err(|e| BenchError::new(format!("cannot write {}: {e}", path.display())))?;
        Ok(TempFile(path))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// This process's resident memory in bytes (`VmRSS` in /proc/self/status).
fn vm_rss() -> Result<u64, BenchError> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| BenchError::new(format!("cannot read /proc/self/status: {e}")))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| BenchError::new("no VmRSS line in /proc/self/status"))
}

/// The rates and the CPU times per request of interleaved rounds of throughput runs, a list
/// for each target.
struct Rounds {
    rates: Vec<Vec<f64>>,
    cpu: Vec<Vec<f64>>,
}

impl Rounds {
    fn new(targets: usize) -> Self {
        Rounds {
            rates: vec![Vec::new(); targets],
            cpu: vec![Vec::new(); targets],
        }
    }

    /// The round order: every target, reversed every other round (against drift).
    fn order(targets: usize, round: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..targets).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        order
    }

    fn push(&mut self, target: usize, measured: &Measured, cpu_per_request: f64) {
        self.rates[target].push(measured.requests_per_sec);
        self.cpu[target].push(cpu_per_request);
    }

    /// The median CPU time per request of `target`, in µs.
    fn cpu(&self, target: usize) -> f64 {
        median(&self.cpu[target])
    }

    /// `a`'s rate against `b`'s: the median of the ratios taken within a round (where the
    /// machine's other load was about the same for both), and what was measured, with the
    /// range of the rounds' ratios to show the noise.
    fn compare(&self, a: usize, b: usize) -> (f64, String) {
        let per_round: Vec<f64> = self.rates[a]
            .iter()
            .zip(&self.rates[b])
            .map(|(a, b)| a / b)
            .collect();
        let low = per_round.iter().copied().fold(f64::INFINITY, f64::min);
        let high = per_round.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let measured = format!(
            "{} vs {} req/s (rounds {low:.2}–{high:.2}); CPU {:.1} vs {:.1} µs/req",
            thousands(median(&self.rates[a])),
            thousands(median(&self.rates[b])),
            self.cpu(a),
            self.cpu(b)
        );
        (median(&per_round), measured)
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// `61234.5` → `61,235`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_numbers() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(thousands(61_234.4), "61,234");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_000_000.0), "1,000,000");
    }

    #[test]
    fn reads_own_resident_memory() {
        assert!(vm_rss().unwrap() > 0);
    }
}
