//! Virtualization detection in the spirit of `systemd-detect-virt`: the
//! container first (it hides the VM underneath), then the hypervisor.
//! Names follow systemd's (`kvm`, `qemu`, `docker`, `systemd-nspawn`, ...).

use std::fs;

fn read(path: &str) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

fn container() -> Option<String> {
    // systemd-nspawn and other container managers write this for systemd.
    if let Some(c) = read("/run/systemd/container").filter(|c| !c.is_empty()) {
        return Some(c);
    }
    if let Ok(env) = fs::read("/proc/1/environ") {
        for var in env.split(|b| *b == 0) {
            if let Some(v) = var.strip_prefix(b"container=") {
                if !v.is_empty() {
                    return Some(String::from_utf8_lossy(v).into_owned());
                }
            }
        }
    }
    if fs::metadata("/run/.containerenv").is_ok() {
        return Some("podman".into());
    }
    if fs::metadata("/.dockerenv").is_ok() {
        return Some("docker".into());
    }
    if fs::metadata("/proc/vz").is_ok() && fs::metadata("/proc/bc").is_err() {
        return Some("openvz".into());
    }
    let release = read("/proc/sys/kernel/osrelease").unwrap_or_default();
    if release.contains("Microsoft") || release.contains("microsoft") {
        return Some("wsl".into());
    }
    None
}

const DMI_VENDORS: &[(&str, &str)] = &[
    ("KVM", "kvm"),
    ("OpenStack", "kvm"),
    ("KubeVirt", "kvm"),
    ("Amazon EC2", "amazon"),
    ("QEMU", "qemu"),
    ("VMware", "vmware"),
    ("VMW", "vmware"),
    ("innotek GmbH", "oracle"),
    ("VirtualBox", "oracle"),
    ("Oracle Corporation", "oracle"),
    ("Xen", "xen"),
    ("Bochs", "bochs"),
    ("Parallels", "parallels"),
    ("BHYVE", "bhyve"),
    ("Hyper-V", "microsoft"),
    ("Google Compute Engine", "google"),
    ("Apple Virtualization", "apple"),
];

fn vm() -> Option<String> {
    for file in [
        "product_name",
        "sys_vendor",
        "board_vendor",
        "bios_vendor",
        "product_version",
    ] {
        if let Some(v) = read(&format!("/sys/class/dmi/id/{file}")) {
            if let Some((_, name)) = DMI_VENDORS.iter().find(|(needle, _)| v.starts_with(needle)) {
                return Some(name.to_string());
            }
            if v.starts_with("Microsoft Corporation")
                && read("/sys/class/dmi/id/product_name")
                    .is_some_and(|p| p.contains("Virtual Machine"))
            {
                return Some("microsoft".into());
            }
        }
    }
    if read("/sys/hypervisor/type").as_deref() == Some("xen") {
        return Some("xen".into());
    }
    if let Some(c) = read("/proc/device-tree/hypervisor/compatible") {
        if c.contains("kvm") {
            return Some("kvm".into());
        }
        if c.contains("xen") {
            return Some("xen".into());
        }
    }
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flagged = cpuinfo
        .lines()
        .any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "hypervisor"));
    flagged.then(|| "vm-other".into())
}

/// `none`, or the container or VM technology.
pub fn detect() -> String {
    container().or_else(vm).unwrap_or_else(|| "none".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn agrees_with_systemd_detect_virt() {
        let Ok(out) = std::process::Command::new("systemd-detect-virt").output() else {
            panic!("systemd-detect-virt is missing: install systemd");
        };
        let theirs = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(super::detect(), theirs);
    }
}
