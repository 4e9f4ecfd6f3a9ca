//! The real backends of the heartbeat: a private `redis-server` this program starts and kills,
//! and a fresh PostgreSQL database it creates and drops. The machine's shared services are
//! never stopped or reconfigured.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::BenchError;

/// The bench's own migration: the database it creates is migrated, so the migrations check
/// passes.
pub(crate) const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// The PostgreSQL server to create the run's database on (trust auth).
const POSTGRES_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A pool of PostgreSQL connections, as the heartbeat checks take it from the app data.
pub(crate) type PgPool = Pool<ConnectionManager<PgConnection>>;

/// A `redis-server` on a free loopback port, with no persistence; killed when dropped.
pub(crate) struct PrivateRedis {
    child: Child,
    port: u16,
}

impl PrivateRedis {
    pub(crate) fn start() -> Result<Self, BenchError> {
        let port = free_port()?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--protected-mode", "yes"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                BenchError::new(format!(
                    "cannot start redis-server (apt-get install redis-server): {e}"
                ))
            })?;
        let redis = PrivateRedis { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() && redis.ping_calls().is_ok() {
                return Ok(redis);
            }
            if Instant::now() > deadline {
                return Err(BenchError::new(format!(
                    "redis-server on port {port} did not come up in 10 s"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// How many PING commands this server has answered (`INFO commandstats`, `cmdstat_ping`).
    pub(crate) fn ping_calls(&self) -> Result<u64, BenchError> {
        let client =
            redis::Client::open(self.url()).map_err(|e| BenchError::new(format!("redis: {e}")))?;
        let mut conn = client
            .get_connection_with_timeout(Duration::from_secs(2))
            .map_err(|e| BenchError::new(format!("cannot connect to the private redis: {e}")))?;
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut conn)
            .map_err(|e| BenchError::new(format!("redis INFO commandstats: {e}")))?;
        Ok(parse_ping_calls(&info))
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cmdstat_ping:calls=12,usec=...` → 12; 0 when no PING was ever answered.
fn parse_ping_calls(info: &str) -> u64 {
    info.lines()
        .find_map(|line| line.trim().strip_prefix("cmdstat_ping:"))
        .and_then(|stats| stats.split(',').find_map(|kv| kv.strip_prefix("calls=")))
        .and_then(|calls| calls.parse().ok())
        .unwrap_or(0)
}

/// A database created for this run on the shared PostgreSQL, migrated; dropped when dropped.
pub(crate) struct FreshDatabase {
    name: String,
}

impl FreshDatabase {
    pub(crate) fn create() -> Result<Self, BenchError> {
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let name = format!("dockerflow_bench_{}_{stamp}", std::process::id());
        let mut admin = admin()?;
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .map_err(|e| BenchError::new(format!("cannot create database {name}: {e}")))?;
        let db = FreshDatabase { name };
        let mut conn = PgConnection::establish(&db.url())
            .map_err(|e| BenchError::new(format!("cannot connect to database {}: {e}", db.name)))?;
        conn.run_pending_migrations(MIGRATIONS)
            .map_err(|e| BenchError::new(format!("cannot migrate database {}: {e}", db.name)))?;
        Ok(db)
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    /// A pool like a service would have: a few connections, made on demand.
    pub(crate) fn pool(&self) -> Result<PgPool, BenchError> {
        Pool::builder()
            .max_size(4)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(5))
            .build(ConnectionManager::new(self.url()))
            .map_err(|e| BenchError::new(format!("cannot make a pool for {}: {e}", self.name)))
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        // FORCE ends the connections pools still hold (PostgreSQL 13 and later).
        let dropped = admin().and_then(|mut admin| {
            diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin)
            .map_err(|e| BenchError::new(e.to_string()))
        });
        if let Err(err) = dropped {
            eprintln!(
                "dockerflow-bench: could not drop database {}: {err}",
                self.name
            );
        }
    }
}

fn admin() -> Result<PgConnection, BenchError> {
    PgConnection::establish(POSTGRES_ADMIN_URL).map_err(|e| {
        BenchError::new(format!(
            "cannot connect to PostgreSQL at 127.0.0.1:5432 as postgres: {e}"
        ))
    })
}

/// A port nothing listens on right now.
pub(crate) fn free_port() -> Result<u16, BenchError> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| BenchError::new(format!("cannot find a free loopback port: {e}")))
}

#[cfg(test)]
mod tests {
    use super::parse_ping_calls;

    #[test]
    fn reads_ping_calls() {
        let info = "# Commandstats\r\ncmdstat_info:calls=3,usec=90\r\ncmdstat_ping:calls=12,usec=8,usec_per_call=0.67\r\n";
        assert_eq!(parse_ping_calls(info), 12);
        assert_eq!(parse_ping_calls("# Commandstats\r\n"), 0);
    }
}
