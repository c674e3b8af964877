//! A torn tail (a crash mid-write) is cut and the node starts with everything acknowledged; a
//! flipped byte before the tail stops start-up with an error that names the offset.

mod support;

use std::fs;
use std::path::PathBuf;

use ecny::node::{Node, NodeError};
use ecny::storage::log::FRAME_HEADER_BYTES;
use ecny::storage::StorageError;
use ecny::wallet::WalletClass;
use support::World;

fn segments(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir.join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ecnylog"))
        .collect();
    files.sort();
    files
}

/// A world with a few committed entries; returns it with the hash after the second-to-last
/// commit and the log's size before the last commit.
fn world_with_history() -> (World, [u8; 32], u64) {
    let mut world = World::new();
    let [jiangnan, lakeside] = world.operators;
    let a = world.open_banked(jiangnan, "1000", WalletClass::Three);
    world.exchange(&a, "100").unwrap();
    let b = world.open(lakeside);
    world.pay(&a, b.wallet, "1").unwrap();
    let hash_before_last = world.hash();
    let size_before_last = fs::metadata(segments(world.dir.path()).last().unwrap())
        .unwrap()
        .len();
    world.pay(&a, b.wallet, "2").unwrap();
    (world, hash_before_last, size_before_last)
}

#[test]
fn a_torn_tail_is_cut_and_start_up_keeps_everything_before_it() {
    let (world, hash_before_last, size_before_last) = world_with_history();
    let dir = world.dir.path().to_path_buf();
    let World {
        dir: keep,
        platform,
        ..
    } = world;
    drop(platform);
    let segment = segments(&dir).pop().unwrap();
    let full = fs::metadata(&segment).unwrap().len();
    for cut in [
        size_before_last + 1,
        (size_before_last + full) / 2,
        full - 1,
    ] {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(&dir, copy.path());
        let torn = copy.path().join("log").join(segment.file_name().unwrap());
        fs::OpenOptions::new()
            .write(true)
            .open(&torn)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let (node, recovery) = Node::open(copy.path()).unwrap();
        let cut_report = recovery.log.torn_tail.expect("torn tail reported");
        assert_eq!(cut_report.offset, size_before_last);
        assert_eq!(node.state().state_hash(), hash_before_last);
        assert_eq!(fs::metadata(&torn).unwrap().len(), size_before_last);
    }
    drop(keep);
}

#[test]
fn a_flipped_byte_before_the_tail_refuses_to_start_and_names_the_offset() {
    let (world, _, _) = world_with_history();
    let World { dir, platform, .. } = world;
    drop(platform);
    let segment = segments(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&segment).unwrap();
    let starts = frame_starts(&bytes);
    let middle = bytes.len() / 3;
    bytes[middle] ^= 0x40;
    fs::write(&segment, &bytes).unwrap();
    let error = Node::open(dir.path()).err().expect("start-up must refuse");
    assert_eq!(error.code(), "LOG_CORRUPT");
    // The offset named is where the damaged frame starts, in the damaged file.
    let damaged_frame = starts
        .into_iter()
        .take_while(|start| *start <= middle as u64)
        .last()
        .unwrap();
    assert!(damaged_frame > 0, "the damage is past the first frame");
    match &error {
        NodeError::Storage(StorageError::Corrupt {
            segment: named,
            offset,
            ..
        }) => assert_eq!((named, *offset), (&segment, damaged_frame)),
        other => panic!("not a corrupt log: {other}"),
    }
    let message = error.to_string();
    assert!(
        message.contains(&format!("at byte offset {damaged_frame} "))
            && message.contains(&segment.display().to_string()),
        "{message}"
    );
    assert_eq!(
        fs::read(&segment).unwrap(),
        bytes,
        "a refused start-up must not touch the log"
    );
}

/// Where each frame of a segment starts: a 24-byte header whose bytes 4..8 give the payload's
/// length (the format in `storage::log`), then the payload.
fn frame_starts(bytes: &[u8]) -> Vec<u64> {
    let mut starts = Vec::new();
    let mut at = 0usize;
    while at + FRAME_HEADER_BYTES <= bytes.len() {
        assert_eq!(&bytes[at..at + 4], b"ECNF", "a frame starts with its magic");
        starts.push(at as u64);
        let length = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        at += FRAME_HEADER_BYTES + length;
    }
    starts
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != "LOCK" {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}
