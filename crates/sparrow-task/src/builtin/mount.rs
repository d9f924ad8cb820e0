//! `mount-check`: a path is a mount point, of the expected type, writable
//! or not, with enough free space.
//!
//! | param | type | default |
//! |---|---|---|
//! | `path` | string, the mount point | required |
//! | `fstype` | string (`ext4`, `proc`) | any |
//! | `writable` | bool: `true` must be read-write, `false` read-only | not checked |
//! | `min_free` | size (bytes, `"1G"`) available to unprivileged users | |
//!
//! State: `mounted` (bool), `fstype`, `source` (strings), `free_bytes`,
//! `total_bytes` (int), `read_only` (bool). Mounts come from
//! `/proc/self/mountinfo`; space and the read-only flag from statvfs (no
//! test write: a check must not change what it checks).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde_json::{Map, Value};

use super::params::{bool_param, req_str, size_param, str_param};
use super::{frame, Call, Fail, Report};
use crate::Outcome;

pub(crate) fn run(call: &Call) -> Outcome {
    frame("mount-check", call, check)
}

/// One line of mountinfo, the fields used.
#[derive(Debug, PartialEq)]
struct Mount {
    point: String,
    fstype: String,
    source: String,
}

/// Undoes mountinfo's octal escapes (`\040` is a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                let v = d.iter().fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
                out.push(v as u8);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mounts in a mountinfo text, in mount order.
fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            // Optional fields end at a lone "-"; fstype and source follow.
            let dash = fields.iter().skip(6).position(|f| *f == "-")? + 6;
            Some(Mount {
                point: unescape(fields.get(4)?),
                fstype: unescape(fields.get(dash + 1)?),
                source: unescape(fields.get(dash + 2)?),
            })
        })
        .collect()
}

/// What statvfs says.
struct Space {
    free: u64,
    total: u64,
    read_only: bool,
}

fn statvfs(path: &Path) -> Result<Space, String> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| format!("{} contains a NUL byte", path.display()))?;
    // SAFETY: an all-zero statvfs is a valid value of this plain C struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a pointer to a statvfs we own.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!("statvfs {}: {e}", path.display()));
    }
    let frsize = st.f_frsize as u64;
    Ok(Space {
        free: (st.f_bavail as u64).saturating_mul(frsize),
        total: (st.f_blocks as u64).saturating_mul(frsize),
        read_only: st.f_flag & libc::ST_RDONLY != 0,
    })
}

fn check(_: &Call, p: &Map<String, Value>, r: &mut Report) -> Result<(), Fail> {
    let given = req_str(p, "path")?;
    let want_type = str_param(p, "fstype")?;
    let writable = bool_param(p, "writable")?;
    let min_free = size_param(p, "min_free")?;
    r.set("mounted", false);
    // Symlinks resolved (`/var/run` is `/run`); mountinfo lists real paths.
    let path = match std::fs::canonicalize(given) {
        Ok(p) => p,
        Err(e) => return Err(format!("{given}: {e}").into()),
    };
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    let shown = path.display().to_string();
    // The last mount on a point is the one visible there.
    let Some(m) = parse_mountinfo(&text)
        .into_iter()
        .rev()
        .find(|m| Path::new(&m.point) == path)
    else {
        r.line(format!("{shown}: not mounted"));
        return Err(format!("{shown} is not a mount point").into());
    };
    r.set("mounted", true);
    r.set("fstype", m.fstype.clone());
    r.set("source", m.source.clone());
    let space = statvfs(&path)?;
    r.set("free_bytes", space.free);
    r.set("total_bytes", space.total);
    r.set("read_only", space.read_only);
    r.line(format!(
        "{shown}: {} from {}, {}, {} of {} bytes free",
        m.fstype,
        m.source,
        if space.read_only {
            "read-only"
        } else {
            "read-write"
        },
        space.free,
        space.total
    ));

    let mut wrong = Vec::new();
    if let Some(t) = want_type {
        if t != m.fstype {
            wrong.push(format!("its type is {}, expected {t}", m.fstype));
        }
    }
    match writable {
        Some(true) if space.read_only => {
            wrong.push("it is read-only, expected writable".to_owned())
        }
        Some(false) if !space.read_only => {
            wrong.push("it is writable, expected read-only".to_owned())
        }
        _ => {}
    }
    if let Some(min) = min_free {
        if space.free < min {
            wrong.push(format!(
                "{} bytes free, expected at least {min} (min_free)",
                space.free
            ));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("{shown}: {}", wrong.join("; ")).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_with_escapes_and_optional_fields() {
        let text = "27 1 254:0 / / rw,relatime shared:1 master:2 - ext4 /dev/vda rw\n\
                    40 27 0:50 / /mnt/my\\040disk rw - fuse.sshfs me@h:/a\\134b rw\n\
                    garbage\n";
        let m = parse_mountinfo(text);
        assert_eq!(
            m,
            vec![
                Mount {
                    point: "/".into(),
                    fstype: "ext4".into(),
                    source: "/dev/vda".into()
                },
                Mount {
                    point: "/mnt/my disk".into(),
                    fstype: "fuse.sshfs".into(),
                    source: "me@h:/a\\b".into()
                },
            ]
        );
        assert_eq!(unescape("a\\0b\\012"), "a\\0b\n");
    }
}
