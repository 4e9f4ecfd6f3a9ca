//! The heartbeat hooks: a statsd counter per heartbeat when `STATSD_ADDR` is set, and a log
//! line: `WARN` for a failed heartbeat, `DEBUG` for a passed one (a load balancer asks many
//! times a minute, and the request's own summary line already says it answered 200).

use std::net::{SocketAddr, UdpSocket};
use std::sync::OnceLock;

use cadence::{Counted, StatsdClient, UdpMetricSink};
use dockerflow::Level;

static STATSD: OnceLock<StatsdClient> = OnceLock::new();

/// Sends the counters to `addr` from now on (statsd line protocol over UDP).
pub(crate) fn send_to_statsd(addr: SocketAddr) -> std::io::Result<()> {
    let bind = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = UdpSocket::bind(bind)?;
    socket.set_nonblocking(true)?;
    let sink = UdpMetricSink::from(addr, socket).map_err(std::io::Error::other)?;
    STATSD
        .set(StatsdClient::from_sink("", sink))
        .map_err(|_| std::io::Error::other("statsd is already set up"))
}

#[dockerflow::on_heartbeat_passed]
fn count_heartbeat_passed(level: Level) {
    tracing::debug!(
        counter = "heartbeat.pass",
        level = level.as_str(),
        "heartbeat"
    );
    count("heartbeat.pass");
}

#[dockerflow::on_heartbeat_failed]
fn count_heartbeat_failed(level: Level) {
    tracing::warn!(
        counter = "heartbeat.fail",
        level = level.as_str(),
        "heartbeat"
    );
    count("heartbeat.fail");
}

fn count(counter: &str) {
    if let Some(statsd) = STATSD.get() {
        if let Err(err) = statsd.count(counter, 1) {
            tracing::warn!(counter, error = %err, "cannot send to statsd");
        }
    }
}
