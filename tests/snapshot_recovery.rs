//! A damaged snapshot never makes a node unrecoverable: the node keeps the previous snapshot and
//! the log since it, and recovers from them. Reading a data directory (`ecny audit`) changes
//! nothing in it, even a torn tail, and works beside a running node.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ecny::node::Node;
use ecny::wallet::WalletClass;
use support::World;

fn files_with_extension(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}

fn snapshots(dir: &Path) -> Vec<PathBuf> {
    files_with_extension(&dir.join("snapshots"), "ecnysnap")
}

fn flip_byte_in_the_middle(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    fs::write(path, &bytes).unwrap();
}

/// Every file under `dir` with its bytes: what "nothing changed" is compared against.
fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut found = BTreeMap::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(contents(&path));
        } else {
            found.insert(path.clone(), fs::read(&path).unwrap());
        }
    }
    found
}

/// Payments between two holders, with `ecny snapshot` taken after each of `rounds` rounds;
/// returns the world and its state hash at the end.
fn history_with_snapshots(rounds: usize) -> (World, [u8; 32]) {
    let mut world = World::new();
    let [jiangnan, lakeside] = world.operators;
    let payer = world.open_banked(jiangnan, "10,000", WalletClass::Three);
    world.exchange(&payer, "1,000").unwrap();
    let payee = world.open(lakeside);
    for round in 0..rounds {
        for _ in 0..3 {
            world.pay(&payer, payee.wallet, "1.50").unwrap();
        }
        world.platform.node_mut().snapshot().unwrap();
        assert_eq!(snapshots(world.dir.path()).len(), (round + 1).min(2));
    }
    world.pay(&payer, payee.wallet, "2.00").unwrap();
    let hash = world.hash();
    world.assert_audit();
    (world, hash)
}

#[test]
fn a_damaged_newest_snapshot_is_set_aside_and_the_previous_one_with_the_log_recovers_all() {
    let (world, hash) = history_with_snapshots(3);
    let World { dir, platform, .. } = world;
    drop(platform);
    let newest = snapshots(dir.path()).pop().unwrap();
    flip_byte_in_the_middle(&newest);

    let (node, recovery) = Node::open(dir.path()).unwrap();
    assert_eq!(node.state().state_hash(), hash);
    assert_eq!(recovery.damaged_snapshots.len(), 1);
    let aside = &recovery.damaged_snapshots[0];
    assert!(aside.reason.contains("checksum"), "{}", aside.reason);
    assert_eq!(aside.path.file_name().unwrap().to_str().unwrap(), {
        let name = newest.file_name().unwrap().to_str().unwrap();
        format!("{name}.damaged")
    });
    assert!(!newest.exists() && aside.path.exists());
    assert!(recovery.snapshot_seq.unwrap() < recovery.log.last_seq);
    assert!(ecny::audit::audit(node.state()).is_clean());
}

#[test]
fn the_first_snapshot_damaged_recovers_from_the_whole_log() {
    let (world, hash) = history_with_snapshots(1);
    let World { dir, platform, .. } = world;
    drop(platform);
    flip_byte_in_the_middle(&snapshots(dir.path())[0]);
    let (node, recovery) = Node::open(dir.path()).unwrap();
    assert_eq!(node.state().state_hash(), hash);
    assert_eq!(recovery.snapshot_seq, None);
    assert_eq!(recovery.damaged_snapshots.len(), 1);
}

#[test]
fn both_kept_snapshots_damaged_is_refused_naming_the_newest_and_changes_no_log() {
    let (world, _) = history_with_snapshots(3);
    let World { dir, platform, .. } = world;
    drop(platform);
    let kept = snapshots(dir.path());
    assert_eq!(kept.len(), 2);
    for snapshot in &kept {
        flip_byte_in_the_middle(snapshot);
    }
    let log_before = contents(&dir.path().join("log"));
    let error = Node::open(dir.path())
        .err()
        .expect("nothing left to recover from");
    assert_eq!(error.code(), "SNAPSHOTS_EXHAUSTED");
    let message = error.to_string();
    let newest_name = kept[1].file_name().unwrap().to_str().unwrap();
    assert!(message.contains(newest_name), "{message}");
    assert_eq!(contents(&dir.path().join("log")), log_before);
}

#[test]
fn ecny_audit_reads_a_torn_tail_without_cutting_it_and_beside_a_running_node() {
    let (world, _) = history_with_snapshots(1);
    let World {
        dir,
        platform,
        clock,
        ..
    } = world;
    drop(platform);
    let segment = files_with_extension(&dir.path().join("log"), "ecnylog")
        .pop()
        .unwrap();
    // Half a frame header after the last good frame: a write that never completed.
    let mut file = fs::OpenOptions::new().append(true).open(&segment).unwrap();
    std::io::Write::write_all(&mut file, b"ECNF\x10\x00\x00\x00\x09").unwrap();
    drop(file);
    let before = contents(dir.path());

    let audit = || {
        Command::new(env!("CARGO_BIN_EXE_ecny"))
            .args(["audit", "--data"])
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let output = audit();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("incomplete write"), "{stdout}");
    assert_eq!(contents(dir.path()), before, "ecny audit changed the data");

    // The owner cuts the tail; a reader beside it still audits.
    let (node, recovery) = ecny::platform::Platform::open_seeded(
        dir.path(),
        "test",
        Box::new(ecny::node::ManualClock(clock)),
    )
    .unwrap();
    assert!(recovery.log.torn_tail.is_some());
    let output = audit();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (read, _) = Node::read_only(dir.path()).unwrap();
    assert_eq!(read.state_hash(), node.state().state_hash());
}

/// A node writes snapshots by itself as its log grows, between group commits, so a restart
/// replays a bounded tail of the history however long it is, and recovers the same state.
#[test]
fn a_node_snapshots_by_itself_so_a_restart_replays_only_a_bounded_tail() {
    const AFTER_BYTES: u64 = 4_096;
    let mut world = World::new();
    let [jiangnan, lakeside] = world.operators;
    let payer = world.open_banked(jiangnan, "10,000", WalletClass::Three);
    world.exchange(&payer, "1,000").unwrap();
    let payee = world.open(lakeside);
    let snapshot_dir = world.dir.path().join("snapshots");
    assert!(
        !snapshot_dir.exists() || snapshots(world.dir.path()).is_empty(),
        "a young log is below the default threshold"
    );
    world
        .platform
        .node_mut()
        .set_snapshot_after_bytes(Some(AFTER_BYTES));
    for _ in 0..60 {
        world.pay(&payer, payee.wallet, "1.00").unwrap();
        let unsnapshotted = world.platform.node_mut().log_bytes_since_snapshot();
        assert!(
            unsnapshotted < AFTER_BYTES,
            "{unsnapshotted} log bytes would be replayed"
        );
    }
    // The newest two are kept, with the log back to the older one.
    assert_eq!(snapshots(world.dir.path()).len(), 2);
    let hash = world.hash();
    world.assert_audit();
    let World { dir, platform, .. } = world;
    drop(platform);
    let (node, recovery) = Node::open(dir.path()).unwrap();
    assert!(recovery.snapshot_seq.is_some());
    assert!(
        recovery.log.entries_replayed < 20,
        "{} entries replayed of about 70",
        recovery.log.entries_replayed
    );
    assert_eq!(node.state().state_hash(), hash);
}
