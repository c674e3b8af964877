//! Snapshots as a node reads them back: the state machine's encoding, and the checksummed file
//! around it.
//!
//! * `StateMachine::decode_snapshot` never panics or runs out of memory on any bytes; a state it
//!   accepts encodes to a snapshot that decodes to the same state, and encodes alike again.
//! * The file verifier accepts a file only if it is exactly what `snapshot::write` writes for
//!   that sequence number and state; a snapshot written and then changed by any one byte, cut,
//!   extended or renamed is refused, and an untouched one reads back as written.

#![no_main]

use std::fs;

use ecny::state_machine::StateMachine;
use ecny::storage::snapshot::{self, SNAPSHOT_HEADER_BYTES};
use ecny_fuzz::{scratch_dir, Script, ScriptWriter};
use libfuzzer_sys::fuzz_target;

/// What happens to a snapshot file between its write and its read.
enum Change {
    None,
    Flip { at: u16, mask: u8 },
    Cut(u16),
    Extend(Vec<u8>),
    Rename(u64),
}

impl Change {
    fn read(s: &mut Script<'_>) -> Option<Change> {
        Some(match s.u8()? % 5 {
            0 => Change::None,
            1 => Change::Flip {
                at: s.u16()?,
                mask: s.u8()?,
            },
            2 => Change::Cut(s.u16()?),
            3 => Change::Extend(s.bytes()?.to_vec()),
            _ => Change::Rename(s.u64()?),
        })
    }
}

const MODE_STATE: u8 = 0;
const MODE_WRITTEN: u8 = 1;
const MODE_FILE: u8 = 2;

// An input is a mode byte, then: a state machine snapshot (0); a sequence number (u64), a
// change (a kind byte and its fields) and the state to write (1); or a file name's sequence
// number (u64) and the file's bytes (2).
fuzz_target!(init: ecny_fuzz::write_seeds_if_asked(seeds), |data: &[u8]| {
    let mut script = Script::new(data);
    match script.u8().map(|mode| mode % 3) {
        Some(MODE_STATE) => state(script.rest()),
        Some(MODE_WRITTEN) => written_file(&mut script),
        Some(_) => raw_file(&mut script),
        None => {}
    }
});

fn state(bytes: &[u8]) {
    let Ok(state) = StateMachine::decode_snapshot(bytes) else {
        return;
    };
    let encoded = state.encode_snapshot();
    let again = StateMachine::decode_snapshot(&encoded).expect("an encoded state decodes");
    assert!(again == state, "a snapshot decodes to another state");
    assert_eq!(again.encode_snapshot(), encoded, "encoding is not stable");
    assert_eq!(again.state_hash(), state.state_hash());
}

fn written_file(script: &mut Script<'_>) {
    let (Some(seq), Some(change)) = (script.u64(), Change::read(script)) else {
        return;
    };
    let state = script.rest();
    let dir = scratch_dir("ecny-fuzz-snap");
    let path = snapshot::write(dir.path(), seq, state).expect("write a snapshot");
    let original = fs::read(&path).expect("read it back");
    let mut changed = original.clone();
    let mut name_seq = seq;
    match change {
        Change::None => {}
        Change::Flip { at, mask } => {
            let at = usize::from(at) % changed.len();
            changed[at] ^= mask;
        }
        Change::Cut(at) => changed.truncate(usize::from(at)),
        Change::Extend(tail) => changed.extend_from_slice(&tail),
        Change::Rename(other) => name_seq = other,
    }
    fs::remove_file(&path).expect("remove the original");
    let renamed = dir.path().join(format!("snapshot-{name_seq:020}.ecnysnap"));
    fs::write(&renamed, &changed).expect("write the changed file");
    let found = snapshot::newest_first(dir.path()).expect("list snapshots");
    assert_eq!(found.len(), 1);
    let read = found[0].read();
    if changed == original && name_seq == seq {
        let snapshot = read.expect("an untouched snapshot reads");
        assert_eq!((snapshot.seq, snapshot.state.as_slice()), (seq, state));
    } else {
        assert!(read.is_err(), "a changed snapshot was accepted");
    }
    assert_eq!(
        fs::read(&renamed).expect("still there"),
        changed,
        "reading changed the file"
    );
}

fn raw_file(script: &mut Script<'_>) {
    let Some(name_seq) = script.u64() else {
        return;
    };
    let file = script.rest();
    let dir = scratch_dir("ecny-fuzz-snap");
    let path = dir.path().join(format!("snapshot-{name_seq:020}.ecnysnap"));
    fs::write(&path, file).expect("write the file");
    let Ok(Some(snapshot)) = snapshot::latest(dir.path()) else {
        return;
    };
    // Only the very bytes `write` makes for this position and state are accepted.
    assert!(file.len() >= SNAPSHOT_HEADER_BYTES);
    let other = scratch_dir("ecny-fuzz-snap");
    let rewritten = snapshot::write(other.path(), snapshot.seq, &snapshot.state).expect("write");
    assert_eq!(
        fs::read(rewritten).expect("read"),
        file,
        "a second spelling was accepted"
    );
}

/// A real state's snapshot, written and read back whole or changed, and its file as written.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let (_, state) = ecny_fuzz::ledger::small_state();
    let snapshot = state.encode_snapshot();
    let written = |change: &[u8]| {
        let mut writer = ScriptWriter::new();
        writer.u8(MODE_WRITTEN).u64(3).raw(change).raw(&snapshot);
        writer.take()
    };
    let dir = scratch_dir("ecny-fuzz-snap");
    let path = snapshot::write(dir.path(), 3, &snapshot).expect("write a snapshot");
    let mut file = ScriptWriter::new();
    file.u8(MODE_FILE)
        .u64(3)
        .raw(&fs::read(path).expect("read it back"));
    vec![
        ("state", [&[MODE_STATE], snapshot.as_slice()].concat()),
        ("written", written(&[0])),
        ("written-flipped", written(&[1, 40, 0, 1])),
        ("written-renamed", written(&[4, 4, 0, 0, 0, 0, 0, 0, 0])),
        ("file", file.take()),
    ]
}
