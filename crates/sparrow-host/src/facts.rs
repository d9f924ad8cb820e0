//! Gathering facts from the running machine.

use std::fs;

use sparrow_lang::Facts;

/// Reads the facts not named in `skip` from the machine (named ones get a
/// placeholder that the caller replaces), so an override file also spares
/// the reads it makes unnecessary.
pub fn gather(skip: &serde_json::Map<String, serde_json::Value>) -> Facts {
    let need = |k: &str| !skip.contains_key(k);
    let os_release = if need("os") || need("os_version") {
        fs::read_to_string("/etc/os-release")
            .or_else(|_| fs::read_to_string("/usr/lib/os-release"))
            .map(|t| parse_os_release(&t))
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let get = |key: &str| {
        os_release
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let uname = if need("arch") || need("kernel") || need("hostname") {
        uname()
    } else {
        Default::default()
    };
    Facts {
        os: if need("os") {
            Some(get("ID"))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "linux".into())
        } else {
            String::new()
        },
        os_version: get("VERSION_ID"),
        hostname: uname.2,
        arch: uname.0,
        kernel: uname.1,
        virtualization: if need("virtualization") {
            crate::virt::detect()
        } else {
            String::new()
        },
        memory_total: if need("memory_total") {
            mem_total().unwrap_or(0)
        } else {
            0
        },
        cpu_count: if need("cpu_count") { cpu_count() } else { 0 },
    }
}

/// `KEY=value` pairs of an os-release file, with shell quoting removed.
pub fn parse_os_release(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                return None;
            }
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = if let Some(inner) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                let mut out = String::new();
                let mut chars = inner.chars();
                while let Some(c) = chars.next() {
                    if c == '\\' {
                        if let Some(n) = chars.next() {
                            out.push(n);
                        }
                    } else {
                        out.push(c);
                    }
                }
                out
            } else if let Some(inner) = v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
                inner.to_string()
            } else {
                v.to_string()
            };
            Some((k.trim().to_string(), v))
        })
        .collect()
}

/// (machine, release, nodename) from uname(2).
fn uname() -> (String, String, String) {
    // SAFETY: utsname is plain old data; uname fills it or fails.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return Default::default();
    }
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    (field(&u.machine), field(&u.release), field(&u.nodename))
}

fn mem_total() -> Option<u64> {
    let text = fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// CPUs this process may run on, as `nproc` counts them.
fn cpu_count() -> u64 {
    // SAFETY: cpu_set_t is plain old data, sized for sched_getaffinity.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let ok =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) }
            == 0;
    if ok {
        let n = unsafe { libc::CPU_COUNT(&set) };
        if n > 0 {
            return n as u64;
        }
    }
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_quoting() {
        let parsed = parse_os_release(
            "# c\nID=debian\nVERSION_ID=\"12\"\nNAME='Debian GNU/Linux'\nPRETTY=\"a \\\"b\\\"\"\n",
        );
        let get = |k: &str| {
            parsed
                .iter()
                .find(|(kk, _)| kk == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("ID"), Some("debian"));
        assert_eq!(get("VERSION_ID"), Some("12"));
        assert_eq!(get("NAME"), Some("Debian GNU/Linux"));
        assert_eq!(get("PRETTY"), Some("a \"b\""));
    }

    #[test]
    fn real_facts_match_the_machine() {
        let f = gather(&serde_json::Map::new());
        let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        assert_eq!(f.kernel, release.trim());
        let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(f.hostname, host.trim());
        assert_eq!(f.arch, std::env::consts::ARCH);
        assert!(f.memory_total > 64 << 20, "{}", f.memory_total);
        let nproc = std::process::Command::new("nproc").output().unwrap();
        let nproc: u64 = String::from_utf8_lossy(&nproc.stdout)
            .trim()
            .parse()
            .unwrap();
        assert_eq!(f.cpu_count, nproc);
        let os = parse_os_release(&fs::read_to_string("/etc/os-release").unwrap());
        assert_eq!(
            Some(&f.os),
            os.iter().find(|(k, _)| k == "ID").map(|(_, v)| v)
        );
    }
}
