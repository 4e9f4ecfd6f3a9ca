//! In-process actix-web servers on free loopback ports, each on a thread of its own running
//! an actix system, stopped (not gracefully: in-flight requests are dropped) when dropped.

use std::net::SocketAddr;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpServer};
use dockerflow::logging::RequestSummary;

use crate::BenchError;

/// What a server's app mounts: routes and app data, the same for each worker.
pub(crate) type Setup = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// A running server.
pub(crate) struct Server {
    name: String,
    addr: SocketAddr,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
    /// Thread ids of the threads that built an app: the workers.
    workers: Arc<Mutex<Vec<u32>>>,
}

/// Starts on `127.0.0.1:<free port>` the app that `$make_app` builds on each worker: a macro,
/// as the app's type depends on its middleware.
macro_rules! spawn {
    ($name:expr, $worker_count:expr, $make_app:expr) => {{
        let name: &str = $name;
        let worker_count: usize = $worker_count;
        let (tx, rx) = mpsc::channel();
        let workers = Arc::new(Mutex::new(Vec::new()));
        let worker_ids = Arc::clone(&workers);
        let thread_name = format!("bench-{name}");
        let thread = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let bound = HttpServer::new(move || {
                        // Each worker builds its app on its own thread.
                        if let Some(tid) = thread_id() {
                            worker_ids
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push(tid);
                        }
                        $make_app
                    })
                    .workers(worker_count)
                    .disable_signals()
                    .shutdown_timeout(1)
                    .bind(("127.0.0.1", 0));
                    let server = match bound {
                        Ok(server) => server,
                        Err(err) => {
                            let _ = tx.send(Err(err.to_string()));
                            return;
                        }
                    };
                    let addr = server.addrs()[0];
                    let running = server.run();
                    let _ = tx.send(Ok((addr, running.handle())));
                    if let Err(err) = running.await {
                        eprintln!("dockerflow-bench: server stopped with an error: {err}");
                    }
                });
            })
            .map_err(|e| {
                BenchError::new(format!("cannot start a thread for server {name}: {e}"))
            })?;
        let (addr, handle) = rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| BenchError::new(format!("server {name} did not start")))?
            .map_err(|e| BenchError::new(format!("server {name} cannot bind to loopback: {e}")))?;
        Ok(Server {
            name: name.to_owned(),
            addr,
            handle,
            thread: Some(thread),
            workers,
        })
    }};
}

impl Server {
    /// Starts `setup` on `127.0.0.1:<free port>` with `worker_count` workers.
    pub(crate) fn start(name: &str, worker_count: usize, setup: Setup) -> Result<Self, BenchError> {
        spawn!(name, worker_count, {
            let setup = Arc::clone(&setup);
            App::new().configure(move |cfg| setup(cfg))
        })
    }

    /// Like [`Server::start`], with the `request.summary` middleware around the app, as a
    /// deployed service has it (`.wrap(dockerflow.request_summary())`, the outermost).
    pub(crate) fn start_summarised(
        name: &str,
        worker_count: usize,
        setup: Setup,
        summary: RequestSummary,
    ) -> Result<Self, BenchError> {
        spawn!(name, worker_count, {
            let setup = Arc::clone(&setup);
            App::new()
                .configure(move |cfg| setup(cfg))
                .wrap(summary.clone())
        })
    }

    /// CPU time (user and system) used so far by this server's workers.
    pub(crate) fn cpu_time(&self) -> Duration {
        let workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        workers
            .iter()
            .filter_map(|tid| thread_cpu_time(*tid).map(|(_, cpu)| cpu))
            .sum()
    }

    /// `http://127.0.0.1:<port><path>`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The stop command is sent before the returned future is first polled; the server's
        // own future then ends and its thread returns.
        drop(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                eprintln!(
                    "dockerflow-bench: the thread of server {} panicked",
                    self.name
                );
            }
        }
    }
}

/// CPU time used so far by dockerflow's threads (the heartbeat coordinator and its blocking
/// pool, and one thread per async check), which run the heartbeat's checks for every server of
/// this process.
pub(crate) fn check_threads_cpu_time() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    tasks
        .filter_map(|task| task.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(thread_cpu_time)
        // Thread names are cut to 15 bytes in /proc.
        .filter(|(name, _)| {
            name.starts_with("dockerflow-chec")
                || name.starts_with("dockerflow-hear")
                || name == "dockerflow-log"
        })
        .map(|(_, cpu)| cpu)
        .sum()
}

/// The id of the calling thread (the first field of /proc/thread-self/stat).
fn thread_id() -> Option<u32> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// A thread's name and CPU time (user and system), from /proc/self/task/<tid>/stat.
fn thread_cpu_time(tid: u32) -> Option<(String, Duration)> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    parse_stat(&stat)
}

/// `tid (name) state ppid … utime stime …`: the name may hold spaces and parentheses, so the
/// fields are counted from the last `)`. utime and stime are the 14th and 15th fields, in
/// clock ticks of 1/100 s (USER_HZ, 100 on Linux).
fn parse_stat(stat: &str) -> Option<(String, Duration)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, Duration::from_millis((utime + stime) * 10)))
}

/// What one plain request got back.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: String,
}

impl Server {
    /// `GET path` over a new connection (`Connection: close`), to see that an endpoint answers
    /// as expected before it is measured.
    pub(crate) fn get(&self, path: &str, headers: &[(&str, &str)]) -> Result<Answer, BenchError> {
        use std::io::{Read, Write};

        let fail = |e: std::io::Error| BenchError::new(format!("GET {}: {e}", self.url(path)));
        let mut stream = std::net::TcpStream::connect(self.addr).map_err(fail)?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(fail)?;
        let mut request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).map_err(fail)?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).map_err(fail)?;
        let response = String::from_utf8_lossy(&response);
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| {
                BenchError::new(format!(
                    "GET {}: not an HTTP response: {response:?}",
                    self.url(path)
                ))
            })?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        Ok(Answer { status, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_thread_stat_line() {
        let stat = "4242 (actix (w) 0) S 1 1 0 0 -1 4194368 10 0 0 0 150 25 0 0 20 0 4 0 100 0 0";
        let (name, cpu) = parse_stat(stat).unwrap();
        assert_eq!(name, "actix (w) 0");
        assert_eq!(cpu, Duration::from_millis(1750));
        assert!(thread_id().is_some());
    }
}
