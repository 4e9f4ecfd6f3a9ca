//! [`Dockerflow`]: settings, checks, hooks and the version file, assembled once and shared by
//! every worker of the server.

use std::sync::{Arc, OnceLock};

use crate::builder::Builder;
use crate::config::Config;
use crate::drain::Draining;
use crate::error::StartupError;
use crate::heartbeat::Runner;
use crate::hooks::Hooks;
use crate::liveness::LivenessCondition;
use crate::version::{CompiledVersion, VersionFile};
use crate::Check;

/// The Dockerflow endpoints of one service, ready to mount.
///
/// Build it once in `main`, before the server starts, so that a bad setting stops start-up
/// there; clone it into the app factory (clones share checks, cache and version file):
///
/// ```no_run
/// use actix_web::{App, HttpServer};
/// use dockerflow::Dockerflow;
///
/// #[actix_web::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let dockerflow = Dockerflow::from_env()?;
///     HttpServer::new(move || {
///         let dockerflow = dockerflow.clone();
///         App::new().configure(move |cfg| dockerflow.configure(cfg))
///     })
///     .bind(("127.0.0.1", 8000))?
///     .run()
///     .await?;
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct Dockerflow {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) runner: Arc<Runner>,
    pub(crate) hooks: Hooks,
    pub(crate) version: Arc<VersionFile>,
    pub(crate) draining: Draining,
    pub(crate) liveness: Vec<LivenessCondition>,
}

impl Dockerflow {
    /// Settings in code, built-in checks, secrets: see [`Builder`].
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Every setting from the environment (or its default).
    pub fn from_env() -> Result<Self, StartupError> {
        Builder::default().build()
    }

    pub(crate) fn new(
        config: Config,
        checks: Vec<Check>,
        liveness: Vec<LivenessCondition>,
        compiled_version: Option<CompiledVersion>,
    ) -> Self {
        let runner = Runner::new(checks, config.clone());
        Dockerflow {
            inner: Arc::new(Inner {
                version: VersionFile::new(config.version_file.clone(), compiled_version.as_ref()),
                hooks: Hooks::collect(),
                draining: Draining::default(),
                liveness,
                runner,
                config,
            }),
        }
    }

    /// The one instance [`configure`](crate::configure) uses, built from the environment the
    /// first time it is asked for.
    ///
    /// When a setting is invalid or two checks share a name, it prints why to stderr (and logs
    /// it) and exits the process with status 78 (`EX_CONFIG`): it is called from the app
    /// factory, where a panic would only take down one worker thread and leave a server that
    /// never answers. Call [`Dockerflow::from_env`] in `main` to handle the error yourself.
    pub fn global() -> &'static Dockerflow {
        static GLOBAL: OnceLock<Dockerflow> = OnceLock::new();
        GLOBAL.get_or_init(|| match Dockerflow::from_env() {
            Ok(dockerflow) => dockerflow,
            Err(err) => {
                tracing::error!(target: "dockerflow", error = %err, "dockerflow cannot start");
                eprintln!("dockerflow cannot start: {err}");
                std::process::exit(78);
            }
        })
    }

    /// The resolved settings.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The checks the heartbeat runs, ordered by name.
    pub fn checks(&self) -> &[Check] {
        self.inner.runner.checks()
    }
}

impl std::fmt::Debug for Dockerflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dockerflow")
            .field("config", &self.inner.config)
            .field("checks", &self.checks())
            .finish_non_exhaustive()
    }
}
