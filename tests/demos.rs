//! Both narrated walk-throughs run start to finish on fresh directories, every step behaving as
//! told and the audit clean at the end.

#[test]
fn the_online_demo_tells_its_whole_story() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    ecny::demo::run(dir.path(), &mut |line| lines.push(line.to_string())).unwrap();
    let text = lines.join("\n");
    assert!(text.contains("LIMIT_SINGLE_PAYMENT"), "{text}");
    assert!(text.contains("every invariant holds"), "{text}");
    assert!(text.contains("identical"), "{text}");
}

#[test]
fn the_offline_demo_tells_its_whole_story() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    ecny::demo::offline::run(dir.path(), &mut |line| lines.push(line.to_string())).unwrap();
    let text = lines.join("\n");
    assert!(text.contains("OFFLINE_DAILY_CAP"), "{text}");
    assert!(text.contains("CERT_REVOKED"), "{text}");
    assert!(text.contains("1 device(s) blocked"), "{text}");
    assert!(text.contains("every invariant holds"), "{text}");
}
