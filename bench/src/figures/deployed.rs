//! The `deployed` group: the endpoints as a deployed service serves them, with the
//! `request.summary` middleware and the mozlog subscriber writing every line to a file, beside
//! a bare actix-web handler on the same paths, measured in the same run (issue 10).

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::sync::Arc;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, HttpResponse};
use dockerflow::logging::BatchWriter;
use dockerflow::Dockerflow;

use super::{median, thousands, Bench, Rounds};
use crate::checks;
use crate::server::{Server, Setup};
use crate::table::{Row, Target};
use crate::wrk::Load;
use crate::BenchError;

/// The paths measured, each against the bare handler on the same path.
const PATHS: [&str; 3] = ["/__lbheartbeat__", "/__version__", "/__heartbeat__"];

/// The request id the id-header baseline sends back: as long as a new id (a UUID v4).
const FIXED_ID: &str = "00000000-0000-4000-8000-000000000000";

/// The file the deployed server's lines go to: what stdout redirected to a file is for a
/// service. Emptied after each run, so a full run writes a few hundred MB at most at a time.
struct LogFile {
    path: std::path::PathBuf,
    file: Arc<File>,
    /// What `logging::init` writes stdout with: request lines in batches from a thread.
    writer: BatchWriter,
}

impl LogFile {
    fn create() -> Result<Self, BenchError> {
        let path = std::env::temp_dir().join(format!(
            "dockerflow-bench-{}-mozlog.log",
            std::process::id()
        ));
        // Appending, as stdout redirected with `>>` does: each write lands at the end, also
        // after the file is emptied.
        let _ = std::fs::remove_file(&path);
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| BenchError::new(format!("cannot create {}: {e}", path.display())))?;
        let writer = BatchWriter::new(
            file.try_clone()
                .map_err(|e| BenchError::new(format!("cannot share {}: {e}", path.display())))?,
        );
        Ok(LogFile {
            path,
            file: Arc::new(file),
            writer,
        })
    }

    /// The number of lines written since the last call, then the file emptied. Checks that
    /// they are whole lines, and that the first is a request summary when `summaries`.
    fn take_lines(&self, summaries: bool) -> Result<u64, BenchError> {
        let fail = |e: std::io::Error| {
            BenchError::new(format!("cannot read {}: {e}", self.path.display()))
        };
        // Lines waiting in memory count: they are written within 5 ms.
        self.writer.flush();
        let mut text = Vec::new();
        File::open(&self.path)
            .and_then(|mut f| f.read_to_end(&mut text))
            .map_err(fail)?;
        self.file.set_len(0).map_err(fail)?;
        if !text.is_empty() && !text.ends_with(b"\n") {
            return Err(BenchError::new("the log file ends with a partial line"));
        }
        let lines = bytecount(&text);
        let first = text
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .take(1);
        for line in first.filter(|_| summaries) {
            let text = String::from_utf8_lossy(line);
            if !text.starts_with("{\"Timestamp\":")
                || !text.contains("\"Type\":\"request.summary\"")
            {
                return Err(BenchError::new(format!("not a request summary: {text}")));
            }
        }
        Ok(lines)
    }
}

impl Drop for LogFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn bytecount(text: &[u8]) -> u64 {
    text.iter().filter(|b| **b == b'\n').count() as u64
}

/// Installs the process's global subscriber as `dockerflow::logging::init` does (filter
/// `info`, mozlog), with the lines going to `file` instead of stdout.
fn install_logging(file: &LogFile) -> Result<(), BenchError> {
    dockerflow::logging::Setup::new("dockerflow-demo")
        .environment(std::iter::empty::<(String, String)>())
        .writer(file.writer.clone())
        .init()
        .map_err(|e| BenchError::new(format!("cannot install the log subscriber: {e}")))
}

impl Bench {
    /// What [`Bench::serve`] mounts: `dockerflow` and the pool and Redis client in app data.
    fn setup(&self, dockerflow: Dockerflow) -> Setup {
        let pool = self.pool.clone();
        let client = self.redis_client.clone();
        Arc::new(move |cfg| {
            cfg.app_data(pool.clone()).app_data(client.clone());
            dockerflow.configure(cfg);
        })
    }

    /// `/__lbheartbeat__`, `/__version__` and `/__heartbeat__` (real backends, cache 1 s) of a
    /// deployed service against the bare handler on the same paths, the same with probes
    /// unlogged (no summary line: what the endpoint and the request id cost), the bare handler
    /// with a fixed request id header (what sending the id back costs), the deployed server
    /// against the one with probes unlogged (what the summary line alone costs), and the CPU
    /// time per request the logging adds (the same server without the middleware, on
    /// `/__lbheartbeat__`). Interleaved rounds, the median of the ratios within a round.
    pub(crate) fn deployed(&self) -> Result<Vec<Row>, BenchError> {
        let plan = &self.plan;
        let log = LogFile::create()?;
        install_logging(&log)?;

        let bare_setup: Setup = Arc::new(|cfg| {
            for path in PATHS {
                cfg.route(
                    path,
                    web::get().to(|| async { HttpResponse::Ok().finish() }),
                );
            }
        });
        let bare = Server::start("bare-deployed", plan.workers, bare_setup)?;
        // The bare handler sending a request id back, as the contract asks of every answer: a
        // fixed value, no middleware, nothing made or allocated a request.
        let id_header_setup: Setup = Arc::new(|cfg| {
            cfg.route(
                "/__lbheartbeat__",
                web::get().to(|| async {
                    HttpResponse::Ok()
                        .insert_header((
                            HeaderName::from_static("x-request-id"),
                            HeaderValue::from_static(FIXED_ID),
                        ))
                        .finish()
                }),
            );
        });
        let id_header = Server::start("bare-id-header", plan.workers, id_header_setup)?;
        let dockerflow = self
            .dockerflow(checks::backend_checks())
            .build()
            .map_err(|e| BenchError::new(format!("dockerflow for the deployed server: {e}")))?;
        let summary = dockerflow.request_summary();
        let setup = self.setup(dockerflow);
        let unlogged = Server::start("unlogged", plan.workers, Arc::clone(&setup))?;
        let deployed =
            Server::start_summarised("deployed", plan.workers, Arc::clone(&setup), summary)?;
        // The same service with DOCKERFLOW_LOG_PROBES=false: probes get no summary line.
        let quiet_summary = self
            .dockerflow(Vec::new())
            .log_probes(false)
            .build()
            .map_err(|e| BenchError::new(format!("dockerflow without probe lines: {e}")))?
            .request_summary();
        let quiet = Server::start_summarised("quiet-probes", plan.workers, setup, quiet_summary)?;
        for path in PATHS {
            self.expect(&bare, path, 200)?;
            self.expect(&deployed, path, 200)?;
            self.expect(&quiet, path, 200)?;
        }
        self.expect(&unlogged, "/__lbheartbeat__", 200)?;
        self.expect(&id_header, "/__lbheartbeat__", 200)?;
        log.take_lines(false)?;

        // The bare handler with an id header first, next to the bare handler on the same path
        // in every round (the order is reversed every other round); then bare and deployed for
        // each path, the unlogged `/__lbheartbeat__`, and the server with probes unlogged on
        // each path.
        const ID_HEADER: usize = 0;
        let bare_at = |k: usize| 1 + 2 * k;
        let deployed_at = |k: usize| 2 + 2 * k;
        let mut targets: Vec<(&Server, String, bool)> =
            vec![(&id_header, id_header.url("/__lbheartbeat__"), false)];
        for path in PATHS {
            targets.push((&bare, bare.url(path), false));
            targets.push((&deployed, deployed.url(path), true));
        }
        const UNLOGGED_LB: usize = 1 + 2 * PATHS.len();
        targets.push((&unlogged, unlogged.url("/__lbheartbeat__"), false));
        const QUIET: usize = UNLOGGED_LB + 1;
        for path in PATHS {
            targets.push((&quiet, quiet.url(path), false));
        }

        if !plan.quick {
            for (_, url, logged) in &targets {
                self.run_ok(&Load::new(url.as_str(), plan.connections, 1))?;
                if *logged {
                    log.take_lines(true)?;
                }
            }
        }
        let mut rounds = Rounds::new(targets.len());
        let mut lines_written = 0;
        let mut requests_logged = 0;
        for round in 0..plan.rounds {
            for i in Rounds::order(targets.len(), round) {
                let (server, url, logged) = &targets[i];
                let (measured, cpu_per_request) = self.measure(server, url)?;
                rounds.push(i, &measured, cpu_per_request);
                if *logged {
                    // Every answered request has its line, handed to the writer before the
                    // answer and written by the time the file is read (`take_lines`); a few
                    // more for requests in flight when wrk stopped (this run's, and the
                    // previous run's that ended after its lines were counted).
                    let lines = log.take_lines(true)?;
                    if lines < measured.requests
                        || lines > measured.requests + 2 * u64::from(plan.connections)
                    {
                        return Err(BenchError::new(format!(
                            "{url}: {lines} summary lines for {} answered requests",
                            measured.requests
                        )));
                    }
                    lines_written += lines;
                    requests_logged += measured.requests;
                }
            }
        }
        let mut rows = Vec::new();
        let names = [
            ("`/__lbheartbeat__`", 0.90),
            ("`/__version__`", 0.88),
            (
                "`/__heartbeat__` (PostgreSQL + migrations + Redis, cache 1 s)",
                0.85,
            ),
        ];
        for (k, (name, target)) in names.into_iter().enumerate() {
            let (ratio, measured) = rounds.compare(deployed_at(k), bare_at(k));
            rows.push(Row::new(
                format!(
                    "deployed {name} (summary line + mozlog to a file) req/s ÷ bare handler req/s"
                ),
                measured,
                Target::AtLeast(target),
                ratio,
            ));
        }
        let (ratio, measured) = rounds.compare(QUIET, bare_at(0));
        rows.push(Row::new(
            "deployed `/__lbheartbeat__` with `DOCKERFLOW_LOG_PROBES=false` (no summary line for probes) req/s ÷ bare handler req/s",
            measured,
            Target::AtLeast(0.90),
            ratio,
        ));
        // The same server on the other paths: what the endpoint, the request id and its
        // response header cost before any line is written, the floor under the deployed rows.
        for (k, name) in names.iter().map(|(name, _)| name).enumerate().skip(1) {
            let (ratio, measured) = rounds.compare(QUIET + k, bare_at(k));
            rows.push(Row::new(
                format!(
                    "deployed {name} with `DOCKERFLOW_LOG_PROBES=false` (no summary line: the endpoint and the request id) req/s ÷ bare handler req/s"
                ),
                measured,
                Target::None,
                ratio,
            ));
        }
        // The part of that floor the contract's response header sets, whoever makes the id.
        let (ratio, measured) = rounds.compare(ID_HEADER, bare_at(0));
        rows.push(Row::new(
            "bare handler with a fixed `X-Request-Id` response header (no middleware: what sending the id back costs) req/s ÷ bare handler req/s, `/__lbheartbeat__`",
            measured,
            Target::None,
            ratio,
        ));
        // What the summary line alone costs: the deployed server against the same server, the
        // same endpoints and middleware, writing no line for these requests. The floor above
        // (the endpoint, the request id and its header) moves with the machine; this is the
        // part of the deployed rows that logging decides.
        for (k, name) in names.iter().map(|(name, _)| name).enumerate() {
            let (ratio, measured) = rounds.compare(deployed_at(k), QUIET + k);
            rows.push(Row::new(
                format!(
                    "deployed {name} req/s ÷ the same server with `DOCKERFLOW_LOG_PROBES=false` req/s (what the summary line alone costs)"
                ),
                measured,
                Target::None,
                ratio,
            ));
        }
        let in_process = self.in_process(&log)?;
        let added = rounds.cpu(deployed_at(0)) - rounds.cpu(UNLOGGED_LB);
        rows.push(Row::new(
            "CPU µs per request that logging adds (deployed ÷ same server without the middleware, `/__lbheartbeat__`)",
            format!(
                "{:.1} vs {:.1} µs/req; {} lines for {} answered requests",
                rounds.cpu(deployed_at(0)),
                rounds.cpu(UNLOGGED_LB),
                thousands(lines_written as f64),
                thousands(requests_logged as f64)
            ),
            Target::None,
            added,
        ));
        rows.push(in_process);
        Ok(rows)
    }

    /// The CPU time per request that logging adds, without the network: `/__lbheartbeat__`
    /// called in-process (`actix_web::test::call_service`) on the deployed app and on the same
    /// app without the middleware, interleaved batches on this thread, its CPU time from
    /// /proc/thread-self/schedstat (ns). The kernel's TCP work, which the bare handler shares
    /// and which the machine's other load disturbs most, is left out.
    fn in_process(&self, log: &LogFile) -> Result<Row, BenchError> {
        use actix_web::{test, App};

        let batch: u32 = if self.plan.quick { 20_000 } else { 200_000 };
        let rounds = self.plan.rounds;
        let dockerflow = self
            .dockerflow(Vec::new())
            .build()
            .map_err(|e| BenchError::new(format!("dockerflow for the in-process figure: {e}")))?;
        let (logged, unlogged) = actix_web::rt::System::new().block_on(async move {
            let summary = dockerflow.request_summary();
            let plain = dockerflow.clone();
            let deployed = test::init_service(
                App::new()
                    .configure(move |cfg| dockerflow.configure(cfg))
                    .wrap(summary),
            )
            .await;
            let unlogged =
                test::init_service(App::new().configure(move |cfg| plain.configure(cfg))).await;
            macro_rules! batch {
                ($app:expr, $n:expr) => {{
                    let before = thread_cpu_ns();
                    for _ in 0..$n {
                        let req = test::TestRequest::get()
                            .uri("/__lbheartbeat__")
                            .to_request();
                        let res = test::call_service(&$app, req).await;
                        assert!(res.status().is_success());
                    }
                    (thread_cpu_ns() - before) as f64 / f64::from($n) / 1000.0
                }};
            }
            let _ = batch!(deployed, 10_000);
            let _ = batch!(unlogged, 10_000);
            let (mut logged, mut bare) = (Vec::new(), Vec::new());
            for round in 0..rounds {
                if round % 2 == 0 {
                    logged.push(batch!(deployed, batch));
                    bare.push(batch!(unlogged, batch));
                } else {
                    bare.push(batch!(unlogged, batch));
                    logged.push(batch!(deployed, batch));
                }
            }
            (median(&logged), median(&bare))
        });
        // One line per request, and a few more: the lines of requests that were in flight when
        // the last wrk run stopped, which ended after that run's lines were counted.
        let lines = log.take_lines(true)?;
        let expected = u64::from(batch) * rounds as u64 + 10_000;
        if lines < expected || lines > expected + 2 * u64::from(self.plan.connections) {
            return Err(BenchError::new(format!(
                "in-process: {lines} summary lines for {expected} requests"
            )));
        }
        Ok(Row::new(
            "CPU µs per request that logging adds, in-process (no network; deployed app ÷ the same app without the middleware, `/__lbheartbeat__`)",
            format!(
                "{logged:.2} vs {unlogged:.2} µs/req ({} requests each, one line per request)",
                thousands(f64::from(batch) * rounds as f64)
            ),
            Target::None,
            logged - unlogged,
        ))
    }
}

/// CPU time this thread has used, in ns (the first field of /proc/thread-self/schedstat).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|stat| stat.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
