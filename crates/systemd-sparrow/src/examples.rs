//! The bundled examples, compiled in so that `demo` works from any directory.
//! A test keeps this list equal to the files in `examples/`.

/// `(path below examples/, text)`.
pub static EXAMPLES: &[(&str, &str)] = &[
    (
        "adaptive-api.sparrow",
        include_str!("../../../examples/adaptive-api.sparrow"),
    ),
    (
        "backup.sparrow",
        include_str!("../../../examples/backup.sparrow"),
    ),
    (
        "beans.sparrow",
        include_str!("../../../examples/beans.sparrow"),
    ),
    (
        "databases.sparrow",
        include_str!("../../../examples/databases.sparrow"),
    ),
    (
        "dynamic-deps.sparrow",
        include_str!("../../../examples/dynamic-deps.sparrow"),
    ),
    (
        "fleet.sparrow",
        include_str!("../../../examples/fleet.sparrow"),
    ),
    (
        "hardened.sparrow",
        include_str!("../../../examples/hardened.sparrow"),
    ),
    (
        "healing.sparrow",
        include_str!("../../../examples/healing.sparrow"),
    ),
    (
        "ledger.sparrow",
        include_str!("../../../examples/ledger.sparrow"),
    ),
    (
        "nginx.sparrow",
        include_str!("../../../examples/nginx.sparrow"),
    ),
    (
        "pressure.sparrow",
        include_str!("../../../examples/pressure.sparrow"),
    ),
    (
        "site.sparrow",
        include_str!("../../../examples/site.sparrow"),
    ),
    (
        "sized-by-host.sparrow",
        include_str!("../../../examples/sized-by-host.sparrow"),
    ),
    (
        "webapp.sparrow",
        include_str!("../../../examples/webapp.sparrow"),
    ),
    (
        "worker@.sparrow",
        include_str!("../../../examples/worker@.sparrow"),
    ),
    (
        "lib/pyapp.sparrow",
        include_str!("../../../examples/lib/pyapp.sparrow"),
    ),
];

#[cfg(test)]
mod tests {
    #[test]
    fn the_list_matches_the_examples_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        let mut on_disk = Vec::new();
        for sub in ["", "lib"] {
            for e in std::fs::read_dir(dir.join(sub)).unwrap() {
                let p = e.unwrap().path();
                if p.extension().is_some_and(|x| x == "sparrow") {
                    let rel = p.strip_prefix(&dir).unwrap().display().to_string();
                    let text = std::fs::read_to_string(&p).unwrap();
                    on_disk.push((rel, text));
                }
            }
        }
        on_disk.sort();
        let mut compiled: Vec<(String, String)> = super::EXAMPLES
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        compiled.sort();
        assert_eq!(
            compiled, on_disk,
            "update src/examples.rs to list every file in examples/"
        );
    }
}
