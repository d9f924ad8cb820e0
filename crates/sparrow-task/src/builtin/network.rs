//! `network-check`: an interface is up, a default route exists, endpoints
//! accept TCP. At least one of the three must be asked for.
//!
//! | param | type | default |
//! |---|---|---|
//! | `interface` | string (`eth0`): must exist and be up | not checked |
//! | `default_route` | bool: `true` needs an IPv4 or IPv6 default route | not checked |
//! | `connect` | `"host:port"` or a list of them: each must accept TCP | |
//! | `timeout` | duration, per connection | `5s` |
//!
//! State: `interface: {name, exists, operstate, admin_up, up}`,
//! `default_route: {ipv4, ipv6, present, interfaces}`, `connect: {"host:port":
//! {connected, latency_ms, address | error}}`, each when asked for.

use std::path::Path;

use serde_json::{json, Map, Value};

use super::params::{bool_param, duration_param, str_list, str_param};
use super::tcp::{connect, join_host_port, port_number, DEFAULT_TIMEOUT};
use super::{budget, frame, millis, Call, Fail, Report};
use crate::Outcome;

const RTF_UP: u32 = 0x1;
const RTF_REJECT: u32 = 0x200;

pub(crate) fn run(call: &Call) -> Outcome {
    frame("network-check", call, check)
}

fn hex(s: &str) -> Option<u32> {
    u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok()
}

/// The interfaces of IPv4 default routes in a /proc/net/route text.
fn ipv4_defaults(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dev, dest, flags, mask) = (f.first()?, f.get(1)?, f.get(3)?, f.get(7)?);
            let up = hex(flags)? & RTF_UP != 0;
            (up && *dest == "00000000" && *mask == "00000000").then(|| dev.to_string())
        })
        .collect()
}

/// The interfaces of IPv6 default routes in a /proc/net/ipv6_route text
/// (the kernel's unreachable default on `lo` is a reject route, left out).
fn ipv6_defaults(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dest, len, flags, dev) = (f.first()?, f.get(1)?, f.get(8)?, f.get(9)?);
            let flags = hex(flags)?;
            let default = dest.bytes().all(|b| b == b'0') && *len == "00";
            (default && flags & RTF_UP != 0 && flags & RTF_REJECT == 0).then(|| dev.to_string())
        })
        .collect()
}

/// Splits `host:port` (`[::1]:80` for IPv6).
fn split_endpoint(s: &str) -> Option<(&str, u16)> {
    let (host, port) = s.trim().rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port_number(port.parse().ok()?)?;
    (!host.is_empty()).then_some((host, port))
}

fn check_interface(name: &str, r: &mut Report, wrong: &mut Vec<String>) -> Result<(), Fail> {
    // The name becomes a path: keep it one component.
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(format!("parameter `interface` is not an interface name: {name:?}").into());
    }
    let dir = Path::new("/sys/class/net").join(name);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).map(|s| s.trim().to_owned());
    let Ok(operstate) = read("operstate") else {
        r.set(
            "interface",
            json!({"name": name, "exists": false, "up": false}),
        );
        r.line(format!("interface {name}: no such interface"));
        wrong.push(format!("interface {name} does not exist"));
        return Ok(());
    };
    let admin_up = read("flags")
        .ok()
        .and_then(|f| hex(&f))
        .is_some_and(|f| f & libc::IFF_UP as u32 != 0);
    // Drivers that do not track carrier (loopback, some tunnels) report
    // "unknown": then the administrative flag is all there is.
    let up = operstate == "up" || (operstate == "unknown" && admin_up);
    r.set(
        "interface",
        json!({"name": name, "exists": true, "operstate": operstate, "admin_up": admin_up, "up": up}),
    );
    r.line(format!(
        "interface {name}: operstate {operstate}, {}",
        if admin_up { "IFF_UP" } else { "not IFF_UP" }
    ));
    if !up {
        wrong.push(format!(
            "interface {name} is not up (operstate {operstate}, {})",
            if admin_up {
                "administratively up"
            } else {
                "administratively down"
            }
        ));
    }
    Ok(())
}

fn check_default_route(r: &mut Report, wrong: &mut Vec<String>) {
    let v4 = std::fs::read_to_string("/proc/net/route")
        .map_or_else(|_| Vec::new(), |t| ipv4_defaults(&t));
    let v6 = std::fs::read_to_string("/proc/net/ipv6_route")
        .map_or_else(|_| Vec::new(), |t| ipv6_defaults(&t));
    let mut devs: Vec<String> = v4.iter().chain(&v6).cloned().collect();
    devs.sort();
    devs.dedup();
    let present = !devs.is_empty();
    r.set(
        "default_route",
        json!({"ipv4": !v4.is_empty(), "ipv6": !v6.is_empty(), "present": present, "interfaces": devs}),
    );
    r.line(format!(
        "default route: ipv4 {}, ipv6 {}",
        if v4.is_empty() {
            "none".to_owned()
        } else {
            format!("via {}", v4.join(","))
        },
        if v6.is_empty() {
            "none".to_owned()
        } else {
            format!("via {}", v6.join(","))
        },
    ));
    if !present {
        wrong.push("no default route (IPv4 or IPv6)".to_owned());
    }
}

fn check(call: &Call, p: &Map<String, Value>, r: &mut Report) -> Result<(), Fail> {
    let interface = str_param(p, "interface")?;
    let default_route = bool_param(p, "default_route")?.unwrap_or(false);
    let endpoints = str_list(p, "connect")?;
    let timeout = duration_param(p, "timeout")?;
    let mut targets = Vec::new();
    for e in &endpoints {
        let (host, port) = split_endpoint(e).ok_or_else(|| {
            format!("parameter `connect`: {e:?} is not host:port (a string like \"127.0.0.1:80\")")
        })?;
        targets.push((e.as_str(), host, port));
    }
    if interface.is_none() && !default_route && targets.is_empty() {
        return Err(
            "nothing to check: give `interface`, `default_route: true` or `connect`"
                .to_owned()
                .into(),
        );
    }

    let mut wrong = Vec::new();
    if let Some(name) = interface {
        check_interface(name, r, &mut wrong)?;
    }
    if default_route {
        check_default_route(r, &mut wrong);
    }
    let mut conns = Map::new();
    let mut out_of_time = false;
    for (shown, host, port) in targets {
        let (limit, by_deadline) = match budget(timeout, Some(DEFAULT_TIMEOUT), call.deadline) {
            Ok(b) => b,
            Err(_) => {
                out_of_time = true;
                wrong.push(format!("{shown}: not tried, the deadline passed"));
                continue;
            }
        };
        let c = connect(host, port, limit.unwrap_or(DEFAULT_TIMEOUT));
        let mut st = json!({"connected": c.result.is_ok(), "latency_ms": millis(c.elapsed)});
        match &c.result {
            Ok(addr) => {
                st["address"] = addr.to_string().into();
                r.line(format!(
                    "{shown} -> connected to {addr} in {} ms",
                    millis(c.elapsed)
                ));
            }
            Err(e) => {
                out_of_time |= c.timed_out && by_deadline;
                st["error"] = e.clone().into();
                r.line(format!("{shown} -> {e}"));
                wrong.push(format!(
                    "cannot connect to {}: {e}",
                    join_host_port(host, port)
                ));
            }
        }
        conns.insert(shown.to_owned(), st);
    }
    if !conns.is_empty() {
        r.set("connect", conns);
    }
    match (wrong.is_empty(), out_of_time) {
        (true, _) => Ok(()),
        (false, true) => Err(Fail::TimedOut(wrong.join("; "))),
        (false, false) => Err(Fail::Failed(wrong.join("; "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_routes_are_found() {
        let v4 =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                  eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                  eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(ipv4_defaults(v4), vec!["eth0"]);
        assert!(ipv4_defaults(&v4.replace("0003", "0002")).is_empty());
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003     eth0\n\
                  00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n\
                  fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0\n";
        assert_eq!(ipv6_defaults(v6), vec!["eth0"]);
    }

    #[test]
    fn endpoints_split() {
        assert_eq!(split_endpoint("127.0.0.1:80"), Some(("127.0.0.1", 80)));
        assert_eq!(split_endpoint("[::1]:443"), Some(("::1", 443)));
        assert_eq!(split_endpoint("example.org:0"), None);
        assert_eq!(split_endpoint("example.org"), None);
        assert_eq!(split_endpoint(":80"), None);
    }
}
