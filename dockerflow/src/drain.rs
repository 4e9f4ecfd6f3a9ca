//! Draining: on SIGTERM, the heartbeats answer `503` for `DOCKERFLOW_DRAIN_MS` while every
//! other route keeps serving, so load balancers take the instance out of rotation before it
//! stops accepting; then in-flight requests finish and the server stops.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::dev::Server;

use crate::Dockerflow;

/// Whether the instance is draining; shared by every worker.
#[derive(Debug, Default)]
pub(crate) struct Draining(AtomicBool);

impl Draining {
    pub(crate) fn is_draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl Dockerflow {
    /// Runs `server` until SIGTERM, SIGINT or its own stop, draining on SIGTERM; returns when it
    /// has stopped.
    ///
    /// On SIGTERM (what Kubernetes and container runtimes send), `/__lbheartbeat__` and
    /// `/__heartbeat__` answer `503` for the drain time (`DOCKERFLOW_DRAIN_MS`,
    /// [`Builder::drain`](crate::Builder::drain); none by default) while every other route
    /// keeps serving; then the server stops accepting, finishes the requests in flight (up to
    /// its `shutdown_timeout`, 30 s by default) and this returns `Ok`, so `main` can exit 0.
    /// SIGINT (Ctrl-C), or a second signal while draining, skips the rest of the drain.
    ///
    /// Build the server with [`HttpServer::disable_signals`](actix_web::HttpServer::disable_signals):
    /// actix-web's own handling would stop it at the first signal, before any draining.
    ///
    /// ```no_run
    /// use actix_web::{App, HttpServer};
    /// use dockerflow::Dockerflow;
    ///
    /// #[actix_web::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let dockerflow = Dockerflow::from_env()?;
    ///     let app_dockerflow = dockerflow.clone();
    ///     let server = HttpServer::new(move || {
    ///         let dockerflow = app_dockerflow.clone();
    ///         App::new().configure(move |cfg| dockerflow.configure(cfg))
    ///     })
    ///     .disable_signals()
    ///     .bind(("127.0.0.1", 8000))?
    ///     .run();
    ///     dockerflow.serve(server).await?;
    ///     Ok(())
    /// }
    /// ```
    pub async fn serve(&self, server: Server) -> std::io::Result<()> {
        let handle = server.handle();
        let mut running = actix_web::rt::spawn(server);
        let signal = tokio::select! {
            stopped = &mut running => {
                crate::logging::flush();
                return stopped.map_err(std::io::Error::other)?;
            }
            signal = shutdown_signal() => signal?,
        };
        let drain = self.inner.config.drain;
        if signal == Signal::Terminate && !drain.is_zero() {
            self.start_draining();
            tracing::info!(
                target: "dockerflow::drain",
                drain_ms = u64::try_from(drain.as_millis()).unwrap_or(u64::MAX),
                "SIGTERM: draining; the heartbeats answer 503 until the server stops accepting"
            );
            tokio::select! {
                () = tokio::time::sleep(drain) => {}
                _ = shutdown_signal() => {
                    tracing::info!(target: "dockerflow::drain", "second signal: stopping now");
                }
            }
        }
        tracing::info!(
            target: "dockerflow::drain",
            "stopping: no new connections; finishing the requests in flight"
        );
        handle.stop(true).await;
        let stopped = running.await;
        crate::logging::flush();
        stopped.map_err(std::io::Error::other)?
    }

    /// Makes the heartbeats answer `503` from now on, for apps that handle signals themselves.
    pub fn start_draining(&self) {
        self.inner.draining.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`start_draining`](Self::start_draining) was called (or SIGTERM came in
    /// [`serve`](Self::serve)).
    pub fn is_draining(&self) -> bool {
        self.inner.draining.is_draining()
    }

    /// How long the heartbeats answer `503` after SIGTERM.
    pub fn drain_time(&self) -> Duration {
        self.inner.config.drain
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    Terminate,
    Interrupt,
}

#[cfg(unix)]
async fn shutdown_signal() -> std::io::Result<Signal> {
    use tokio::signal::unix::{signal, SignalKind};

    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = terminate.recv() => Signal::Terminate,
        _ = interrupt.recv() => Signal::Interrupt,
    })
}

#[cfg(not(unix))]
async fn shutdown_signal() -> std::io::Result<Signal> {
    tokio::signal::ctrl_c().await?;
    Ok(Signal::Interrupt)
}
