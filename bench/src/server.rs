//! In-process actix-web servers on free loopback ports, each on a thread of its own running
//! an actix system, stopped (not gracefully: in-flight requests are dropped) when dropped.

use std::net::SocketAddr;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpServer};

use crate::BenchError;

/// What a server's app mounts: routes and app data, the same for each worker.
pub(crate) type Setup = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// A running server.
pub(crate) struct Server {
    name: String,
    addr: SocketAddr,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts `setup` on `127.0.0.1:<free port>` with `workers` workers.
    pub(crate) fn start(name: &str, workers: usize, setup: Setup) -> Result<Self, BenchError> {
        let (tx, rx) = mpsc::channel();
        let thread_name = format!("bench-{name}");
        let thread = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let bound = HttpServer::new(move || {
                        let setup = Arc::clone(&setup);
                        App::new().configure(move |cfg| setup(cfg))
                    })
                    .workers(workers)
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
        })
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
