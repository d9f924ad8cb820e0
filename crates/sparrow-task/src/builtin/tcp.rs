//! `tcp-check`: a TCP port accepts a connection within the timeout.
//!
//! | param | type | default |
//! |---|---|---|
//! | `host` | string | `127.0.0.1` |
//! | `port` | integer 1-65535 | required |
//! | `timeout` | duration | `5s` |
//!
//! State: `connected` (bool), `latency_ms` (float), `address` (the address
//! connected to, or `host:port` when none was).

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::params::{int_param, str_param};
use super::{frame, millis, show, timeout_param, Call, Fail, Report};
use crate::Outcome;

/// The timeout when none is given.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) fn run(call: &Call) -> Outcome {
    frame("tcp-check", call, check)
}

fn check(call: &Call, p: &Map<String, Value>, r: &mut Report) -> Result<(), Fail> {
    let host = str_param(p, "host")?.unwrap_or("127.0.0.1");
    let port = match int_param(p, "port")? {
        Some(n) => port_number(n).ok_or_else(|| {
            format!("parameter `port` must be an integer from 1 to 65535, got {n}")
        })?,
        None => {
            return Err("parameter `port` (an integer) is required"
                .to_owned()
                .into())
        }
    };
    let (timeout, by_deadline) = timeout_param(p, DEFAULT_TIMEOUT, call.deadline)?;
    let shown = join_host_port(host, port);
    r.set("connected", false);
    r.set("address", shown.clone());
    let c = connect(host, port, timeout);
    r.set("latency_ms", millis(c.elapsed));
    match c.result {
        Ok(addr) => {
            r.set("connected", true);
            r.set("address", addr.to_string());
            r.line(format!(
                "{shown} -> connected to {addr} in {} ms",
                millis(c.elapsed)
            ));
            Ok(())
        }
        Err(e) if c.timed_out && by_deadline => Err(Fail::TimedOut(format!(
            "cannot connect to {shown}: the deadline passed ({e})"
        ))),
        Err(e) => Err(Fail::Failed(format!("cannot connect to {shown}: {e}"))),
    }
}

/// `n` as a port number (0 is not one can connect to).
pub(crate) fn port_number(n: i64) -> Option<u16> {
    u16::try_from(n).ok().filter(|p| *p != 0)
}

/// `host:port`, with brackets around an IPv6 address.
pub(crate) fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A connection attempt.
pub(crate) struct Connected {
    /// The address that accepted, or why none did.
    pub(crate) result: Result<SocketAddr, String>,
    /// How long it took (resolving included).
    pub(crate) elapsed: Duration,
    /// Time ran out (rather than a refusal).
    pub(crate) timed_out: bool,
}

/// Connects to `host:port` (each resolved address in turn) within
/// `timeout` over all; the connection is closed at once.
pub(crate) fn connect(host: &str, port: u16, timeout: Duration) -> Connected {
    let start = Instant::now();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match (host, port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            return Connected {
                result: Err(format!("cannot resolve {host}: {e}")),
                elapsed: start.elapsed(),
                timed_out: false,
            }
        }
    };
    let mut last = format!("{host} resolves to no address");
    // Which address failed is worth saying only when it is not the host.
    let literal = addrs.len() == 1 && host.parse::<std::net::IpAddr>().is_ok();
    let at = |addr: &SocketAddr| {
        if literal {
            String::new()
        } else {
            format!("{addr}: ")
        }
    };
    let mut timed_out = false;
    for addr in addrs {
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            timed_out = true;
            last = format!("no answer within {}", show(timeout));
            break;
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(_) => {
                return Connected {
                    result: Ok(addr),
                    elapsed: start.elapsed(),
                    timed_out: false,
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                timed_out = true;
                last = format!("{}no answer within {}", at(&addr), show(timeout));
            }
            Err(e) => last = format!("{}{e}", at(&addr)),
        }
    }
    Connected {
        result: Err(last),
        elapsed: start.elapsed(),
        timed_out,
    }
}
