use super::*;

fn facts() -> Facts {
    sparrow_lang::FixedHost::debian().facts
}

fn facts_of(os: &str) -> Facts {
    Facts {
        os: os.into(),
        ..facts()
    }
}

#[test]
fn an_entry_is_used_while_what_it_looked_at_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let flags = dir.path().join("flags.json");
    fs::write(&flags, r#"{"use-redis": true}"#).unwrap();
    let cache = Cache::new(dir.path().join("cache"), true);
    let key = key("raku:1", &facts(), Path::new("/etc/a.raku"), "task-run ..");
    let deps = Deps {
        files: vec![flags.display().to_string()],
        exists: vec!["/definitely/not/here".into()],
        env: vec!["MODE".into()],
    };
    let prod = |k: &str| (k == "MODE").then(|| "prod".to_string());
    cache.put(&key, "task_run(..);", &deps, &prod);
    assert_eq!(cache.get(&key, &prod).as_deref(), Some("task_run(..);"));
    // Another value of a variable it read.
    let dev = |k: &str| (k == "MODE").then(|| "dev".to_string());
    assert_eq!(cache.get(&key, &dev), None);
    // Another flags file.
    fs::write(&flags, r#"{"use-redis": false}"#).unwrap();
    assert_eq!(cache.get(&key, &prod), None);
}

#[test]
fn keys_change_with_text_path_facts_and_raku() {
    let base = key("raku:1", &facts(), Path::new("/a.raku"), "x");
    assert_ne!(base, key("raku:2", &facts(), Path::new("/a.raku"), "x"));
    assert_ne!(
        base,
        key("raku:1", &facts_of("fedora"), Path::new("/a.raku"), "x")
    );
    assert_ne!(base, key("raku:1", &facts(), Path::new("/b.raku"), "x"));
    assert_ne!(base, key("raku:1", &facts(), Path::new("/a.raku"), "y"));
    assert_eq!(base, key("raku:1", &facts(), Path::new("/a.raku"), "x"));
}

#[test]
fn read_only_caches_and_whole_environment_readers_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let none = |_: &str| None;
    let ro = Cache::new(dir.path().join("ro"), false);
    ro.put("k", "t", &Deps::default(), &none);
    assert!(!dir.path().join("ro").exists());
    let rw = Cache::new(dir.path().join("rw"), true);
    let all = Deps {
        env: vec!["*".into()],
        ..Deps::default()
    };
    rw.put("k", "t", &all, &none);
    assert_eq!(rw.get("k", &none), None);
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

#[test]
fn fifos_and_entries_others_may_write_are_never_used_and_never_block() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("cache"), true);
    let none = |_: &str| None;
    // A flags file that became a FIFO: the entry is not used (and reading
    // its hash does not wait for a writer).
    let flags = dir.path().join("flags.json");
    fs::write(&flags, "{}").unwrap();
    let deps = Deps {
        files: vec![flags.display().to_string()],
        ..Deps::default()
    };
    cache.put("k1", "t", &deps, &none);
    assert_eq!(cache.get("k1", &none).as_deref(), Some("t"));
    fs::remove_file(&flags).unwrap();
    mkfifo(&flags);
    assert_eq!(cache.get("k1", &none), None);
    // An entry that is a FIFO is no entry.
    mkfifo(&dir.path().join("cache").join("k2.json"));
    assert_eq!(cache.get("k2", &none), None);
    // An entry anyone may write is not trusted when root reads it.
    cache.put("k3", "t", &Deps::default(), &none);
    let entry = dir.path().join("cache").join("k3.json");
    fs::set_permissions(&entry, fs::Permissions::from_mode(0o666)).unwrap();
    if Owners::for_generator() == Owners::Root {
        assert_eq!(cache.get("k3", &none), None);
    }
}
