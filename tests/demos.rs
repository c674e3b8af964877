//! Both narrated walk-throughs run start to finish on fresh directories, every step behaving as
//! told and the audit clean at the end.

#[test]
fn the_online_demo_tells_its_whole_story() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    ecny::demo::run(dir.path(), &mut |line| lines.push(line.to_string())).unwrap();
    let text = lines.join("\n");
    assert!(text.contains("LIMIT_SINGLE_PAYMENT"), "{text}");
    for code in [
        "ORDER_ALREADY_PAID",
        "REFUND_EXCEEDS_PAYMENT",
        "SUB_WALLET_CLOSED",
    ] {
        assert!(text.contains(code), "{code}: {text}");
    }
    assert!(
        text.contains("gross 232.00, refunds 20.00, net 212.00"),
        "{text}"
    );
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
