//! `dockerflow-demo`: a small actix-web service built with dockerflow, the way to try it.
//!
//! `dockerflow-demo [serve [--no-migrate]]` applies pending migrations and listens on
//! `HOST:PORT`; `dockerflow-demo migrate` applies them and exits; `dockerflow-demo healthcheck`
//! probes a running one. See [`cli::USAGE`].

mod checks;
mod cli;
mod db;
mod healthcheck;
mod hooks;
mod routes;
mod sentry;

use std::process::ExitCode;

use actix_web::{web, App, HttpServer};
use dockerflow::Dockerflow;

use crate::cli::{Command, Settings};
use crate::db::Database;

/// Exit status for a setting that cannot be used (`EX_CONFIG`).
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let command = match Command::parse(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(err) => return fail(EXIT_CONFIG, &err),
    };
    if let Command::Healthcheck { path } = &command {
        return healthcheck::run(path.as_deref(), |name| std::env::var(name).ok());
    }
    // Kept to the end of `main`, so that queued reports are sent before the process exits.
    let reporting = match sentry::Reporting::from_env(|name| std::env::var(name).ok()) {
        Ok(reporting) => reporting,
        Err(err) => return fail(EXIT_CONFIG, &err),
    };
    // RUST_LOG (default info) and DOCKERFLOW_LOG_FORMAT; a bad value is a bad setting.
    if let Err(err) = dockerflow::logging::init_with("dockerflow-demo", reporting.layer()) {
        let code = match err {
            dockerflow::logging::InitError::InvalidSetting(_) => EXIT_CONFIG,
            _ => 1,
        };
        return fail(code, &err);
    }
    if command == Command::Help {
        println!("{}", cli::USAGE);
        return ExitCode::SUCCESS;
    }
    let settings = match cli::settings(|name| std::env::var(name).ok()) {
        Ok(settings) => settings,
        Err(err) => return fail(EXIT_CONFIG, &err),
    };
    // Before any connection: a bad setting stops here, and the passwords are masked from the
    // first log line on.
    let dockerflow = match dockerflow(&settings) {
        Ok(dockerflow) => dockerflow,
        Err(err) => return fail(EXIT_CONFIG, &err),
    };
    if let Some(addr) = settings.statsd {
        if let Err(err) = hooks::send_to_statsd(addr) {
            return fail(
                EXIT_CONFIG,
                &format!("cannot send to STATSD_ADDR={addr}: {err}"),
            );
        }
    }
    let migrate = match command {
        Command::Migrate => true,
        Command::Serve { migrate } => migrate,
        Command::Help | Command::Healthcheck { .. } => false,
    };
    let database = Database::new(&settings.database);
    if migrate {
        match database.migrate() {
            Ok(applied) => {
                for name in applied {
                    tracing::info!(migration = %name, "applied migration");
                }
            }
            Err(err) => {
                let err = dockerflow::redact::redact(&err.to_string());
                return fail(1, &format!("cannot apply migrations: {err}"));
            }
        }
    }
    if command == Command::Migrate {
        return ExitCode::SUCCESS;
    }
    match serve(settings, database, dockerflow, &reporting) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(1, &err),
    }
}

/// Settings from the environment (`DOCKERFLOW_*`), the built-in checks for the backends in
/// use, and the passwords to keep out of every body and log line.
fn dockerflow(settings: &Settings) -> Result<Dockerflow, dockerflow::StartupError> {
    let mut builder = Dockerflow::builder();
    for check in settings.database.checks() {
        builder = builder.check(check);
    }
    builder = builder.redact_url_password(settings.database.url());
    if let Some(redis) = &settings.redis {
        builder = builder.check(dockerflow::checks::redis_connected());
        if let Some(password) = redis.get_connection_info().redis_settings().password() {
            builder = builder.redact(password);
        }
    }
    builder.build()
}

#[actix_web::main]
async fn serve(
    settings: Settings,
    database: Database,
    dockerflow: Dockerflow,
    reporting: &sentry::Reporting,
) -> std::io::Result<()> {
    let report_errors = reporting.enabled();
    let scratch = web::Data::new(checks::ScratchDir(std::env::current_dir()?));
    let redis = settings.redis.map(web::Data::new);
    let app_dockerflow = dockerflow.clone();
    let server = HttpServer::new(move || {
        let dockerflow = app_dockerflow.clone();
        let database = database.clone();
        let redis = redis.clone();
        let summary = dockerflow.request_summary();
        App::new()
            // First: actix tries routes in order, and the probes, most of the traffic, then
            // pay for no other route (`/greetings/{name}` is matched with a regex).
            .configure(move |cfg| dockerflow.configure(cfg))
            .configure(|cfg| database.register(cfg))
            .app_data(scratch.clone())
            .configure(|cfg| {
                if let Some(redis) = redis {
                    cfg.app_data(redis);
                }
            })
            .configure(routes::configure)
            .wrap(sentry::middleware(report_errors))
            .wrap(summary)
    })
    // dockerflow handles SIGTERM (draining first) and SIGINT.
    .disable_signals()
    .bind(settings.listen)?;
    tracing::info!(address = %settings.listen, "listening");
    dockerflow.serve(server.run()).await
}

fn fail(code: u8, err: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("dockerflow-demo: {err}");
    tracing::error!(error = %err, "dockerflow-demo cannot start");
    ExitCode::from(code)
}
