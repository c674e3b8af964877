//! The command log's segments as a node finds them on disk after a crash, a bad disk or a
//! hostile hand: frames the log's format describes, cut, flipped or followed by garbage, or
//! plain bytes. For every directory:
//!
//! * `CommandLog::read` changes no file, and agrees with `CommandLog::open` on the entries and
//!   on the torn tail;
//! * entries come back in order, numbered without a gap from the first one replay needs;
//! * `open` refuses what it refuses without touching a file, and otherwise only cuts the torn
//!   tail it reports; a second read then finds no tail, and an entry appended after it is read
//!   back;
//! * where the damage is known (one flipped byte or one cut), the outcome is exactly the one the
//!   log's recovery rules state.

#![no_main]

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use ecny::storage::log::{CommandLog, RecoveryReport, FRAME_HEADER_BYTES};
use ecny_fuzz::{scratch_dir, Script, ScriptWriter};
use libfuzzer_sys::fuzz_target;

const SEGMENTS_MAX: u8 = 3;
const FRAMES_MAX: u8 = 16;

struct Input {
    /// The snapshot's position: entries at or below it are not replayed.
    replay_after: u8,
    /// The first segment's first sequence number, less one.
    start: Start,
    segments: Vec<SegmentInput>,
}

#[derive(Debug, Clone, Copy)]
enum Start {
    Small(u8),
    NearTheEnd(u8),
}

#[derive(Debug)]
enum SegmentInput {
    /// Well-formed frames holding these payloads, then the damage.
    Frames {
        payloads: Vec<Vec<u8>>,
        damage: Option<Damage>,
    },
    /// Whatever bytes, named as if its first entry were `skip` past where it should start.
    Raw { bytes: Vec<u8>, skip: u8 },
}

#[derive(Debug, Clone)]
enum Damage {
    Cut(u16),
    Flip { at: u16, mask: u8 },
    Garbage(Vec<u8>),
}

impl Input {
    /// `replay_after` (u8); the start (u8: below 128 a small number, else near `u64::MAX`);
    /// the number of segments (u8, 1 to 3); then each segment: 0, a frame count (u8) and each
    /// payload (byte string), then a damage byte (0 none, 1 cut at u16, 2 flip at u16 with a
    /// u8 mask, 3 garbage bytes appended); or 1, a skip (u8) and raw bytes.
    fn read(s: &mut Script<'_>) -> Option<Input> {
        let replay_after = s.u8()?;
        let start = match s.u8()? {
            n if n < 128 => Start::Small(n),
            n => Start::NearTheEnd(n),
        };
        let count = s.u8()? % SEGMENTS_MAX + 1;
        let segments = (0..count)
            .map(|_| {
                Some(match s.u8()? % 2 {
                    0 => {
                        let frames = s.u8()? % FRAMES_MAX;
                        let payloads = (0..frames)
                            .map(|_| s.bytes().map(<[u8]>::to_vec))
                            .collect::<Option<_>>()?;
                        let damage = match s.u8()? % 4 {
                            0 => None,
                            1 => Some(Damage::Cut(s.u16()?)),
                            2 => Some(Damage::Flip {
                                at: s.u16()?,
                                mask: s.u8()?,
                            }),
                            _ => Some(Damage::Garbage(s.bytes()?.to_vec())),
                        };
                        SegmentInput::Frames { payloads, damage }
                    }
                    _ => SegmentInput::Raw {
                        skip: s.u8()?,
                        bytes: s.bytes()?.to_vec(),
                    },
                })
            })
            .collect::<Option<_>>()?;
        Some(Input {
            replay_after,
            start,
            segments,
        })
    }

    fn write(&self, w: &mut ScriptWriter) {
        let start = match self.start {
            Start::Small(n) => n,
            Start::NearTheEnd(n) => n | 128,
        };
        w.u8(self.replay_after)
            .u8(start)
            .u8(self.segments.len() as u8 - 1);
        for segment in &self.segments {
            match segment {
                SegmentInput::Frames { payloads, damage } => {
                    w.u8(0).u8(payloads.len() as u8);
                    for payload in payloads {
                        w.bytes(payload);
                    }
                    match damage {
                        None => w.u8(0),
                        Some(Damage::Cut(at)) => w.u8(1).u16(*at),
                        Some(Damage::Flip { at, mask }) => w.u8(2).u16(*at).u8(*mask),
                        Some(Damage::Garbage(bytes)) => w.u8(3).bytes(bytes),
                    };
                }
                SegmentInput::Raw { bytes, skip } => {
                    w.u8(1).u8(*skip).bytes(bytes);
                }
            }
        }
    }
}

/// One segment as written, and what the harness knows about it.
struct Written {
    bytes: Vec<u8>,
    /// Offsets and sequence numbers of the frames written, when written from frames.
    frames: Option<Vec<(usize, u64, Vec<u8>)>>,
    damage: Option<Damage>,
}

type Entries = Vec<(u64, Vec<u8>)>;

fuzz_target!(init: ecny_fuzz::write_seeds_if_asked(seeds), |data: &[u8]| {
    let Some(input) = Input::read(&mut Script::new(data)) else {
        return;
    };
    let dir = scratch_dir("ecny-fuzz-log");
    let written = write_segments(dir.path(), &input);
    let replay_after = u64::from(input.replay_after);
    let files = snapshot_files(dir.path());

    let mut read_entries = Entries::new();
    let read = CommandLog::read(dir.path(), replay_after, |seq, payload| {
        read_entries.push((seq, payload.to_vec()));
        Ok::<(), ()>(())
    });
    assert_eq!(
        snapshot_files(dir.path()),
        files,
        "read changed the directory"
    );

    let mut open_entries = Entries::new();
    let opened = CommandLog::open(dir.path(), replay_after, |seq, payload| {
        open_entries.push((seq, payload.to_vec()));
        Ok::<(), ()>(())
    });
    match (&read, opened) {
        (Err(_), Ok(_)) | (Ok(_), Err(_)) => {
            panic!("read and open disagree: {read:?}")
        }
        (Err(_), Err(_)) => {
            assert_eq!(
                without_lock(snapshot_files(dir.path())),
                files,
                "a refused open changed the log"
            );
        }
        (Ok(report), Ok((log, opened))) => {
            assert_eq!(&opened, report, "read and open report differently");
            assert_eq!(open_entries, read_entries);
            check_order(&read_entries, replay_after, report);
            check_cut(dir.path(), &files, report);
            drop(log);
            append_after(dir.path(), replay_after, &read_entries, report);
        }
    }
    if let Some(expected) = expected_outcome(&written, &input) {
        match (&read, expected) {
            (Ok(report), Some((entries, tail))) => {
                let entries: Entries = entries
                    .into_iter()
                    .filter(|(seq, _)| *seq > replay_after)
                    .collect();
                assert_eq!(
                    read_entries, entries,
                    "recovered other entries than written"
                );
                assert_eq!(report.torn_tail.as_ref().map(|t| t.offset), tail);
            }
            (Err(_), None) => {}
            (outcome, expected) => {
                panic!("recovery gave {outcome:?}, the rules say {expected:?}")
            }
        }
    }
});

fn first_seq(start: Start) -> u64 {
    match start {
        Start::Small(n) => u64::from(n % 8) + 1,
        Start::NearTheEnd(n) => u64::MAX - u64::from(n % 8),
    }
}

fn write_segments(dir: &Path, input: &Input) -> Vec<Written> {
    let mut next_seq = first_seq(input.start);
    let mut written = Vec::new();
    for segment in &input.segments {
        let segment_start = match segment {
            SegmentInput::Raw { skip, .. } => next_seq.saturating_add(u64::from(*skip)),
            SegmentInput::Frames { .. } => next_seq,
        };
        let path = dir.join(format!("log-{segment_start:020}.ecnylog"));
        let (bytes, frames, damage) = match segment {
            SegmentInput::Raw { bytes, .. } => (bytes.clone(), None, None),
            SegmentInput::Frames { payloads, damage } => {
                let mut bytes = Vec::new();
                let mut frames = Vec::new();
                for payload in payloads {
                    frames.push((bytes.len(), next_seq, payload.clone()));
                    bytes.extend_from_slice(&frame(next_seq, payload));
                    next_seq = next_seq.saturating_add(1);
                }
                if let Some(damage) = damage {
                    apply(damage, &mut bytes);
                }
                (bytes, Some(frames), damage.clone())
            }
        };
        if let SegmentInput::Raw { .. } = segment {
            next_seq = segment_start;
        }
        if path.exists() {
            // Two segments with one name: the later write wins, and the oracle gives up.
            written.clear();
        }
        fs::write(&path, &bytes).expect("write a segment");
        written.push(Written {
            bytes,
            frames,
            damage,
        });
    }
    written
}

/// A frame as the log's format table describes it.
fn frame(seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(FRAME_HEADER_BYTES + payload.len());
    bytes.extend_from_slice(b"ECNF");
    bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&seq.to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    let header_crc = crc32fast::hash(&bytes[..20]);
    bytes.extend_from_slice(&header_crc.to_le_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

fn apply(damage: &Damage, bytes: &mut Vec<u8>) {
    match damage {
        Damage::Cut(at) => bytes.truncate(usize::from(*at)),
        Damage::Flip { at, mask } => {
            if !bytes.is_empty() {
                let at = usize::from(*at) % bytes.len();
                bytes[at] ^= mask;
            }
        }
        Damage::Garbage(garbage) => bytes.extend_from_slice(garbage),
    }
}

fn snapshot_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .expect("list the directory")
        .map(|entry| {
            let entry = entry.expect("a directory entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, fs::read(entry.path()).expect("read a file"))
        })
        .collect()
}

fn without_lock(mut files: BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    files.remove("LOCK");
    files
}

fn check_order(entries: &Entries, replay_after: u64, report: &RecoveryReport) {
    for (position, (seq, _)) in entries.iter().enumerate() {
        assert_eq!(
            *seq,
            replay_after + 1 + position as u64,
            "entries out of order"
        );
    }
    assert_eq!(report.entries_replayed, entries.len() as u64);
    if let Some((last, _)) = entries.last() {
        assert_eq!(report.last_seq, *last);
    }
    assert!(report.last_seq >= replay_after);
}

/// Open changed nothing but the torn tail it reports, cut exactly there.
fn check_cut(dir: &Path, before: &BTreeMap<String, Vec<u8>>, report: &RecoveryReport) {
    let after = without_lock(snapshot_files(dir));
    for (name, bytes) in before {
        let now = after.get(name).expect("open removed no segment");
        match &report.torn_tail {
            Some(tail) if tail.segment.file_name().is_some_and(|n| n == name.as_str()) => {
                let offset = usize::try_from(tail.offset).expect("small files");
                assert_eq!(
                    now.as_slice(),
                    &bytes[..offset],
                    "the cut is not at the tail"
                );
                assert_eq!(tail.bytes_cut, (bytes.len() - offset) as u64);
            }
            _ => assert_eq!(now, bytes, "open changed a segment it reported nothing of"),
        }
    }
}

/// After recovery the log takes a new entry, and every reader finds it after the old ones.
fn append_after(dir: &Path, replay_after: u64, entries: &Entries, report: &RecoveryReport) {
    if report.last_seq == u64::MAX {
        return;
    }
    let (mut log, _) = CommandLog::open(dir, replay_after, |_, _| Ok::<(), ()>(()))
        .expect("a recovered log opens again");
    let seq = log.append(b"after recovery").expect("append");
    assert_eq!(seq, report.last_seq + 1);
    log.commit().expect("commit");
    drop(log);
    let mut again = Entries::new();
    let reread = CommandLog::read(dir, replay_after, |seq, payload| {
        again.push((seq, payload.to_vec()));
        Ok::<(), ()>(())
    })
    .expect("a log just written reads");
    assert!(reread.torn_tail.is_none(), "a tail remains after recovery");
    assert_eq!(&again[..entries.len()], entries.as_slice());
    assert_eq!(again.last(), Some(&(seq, b"after recovery".to_vec())));
}

/// `Some(Some((entries, torn tail offset)))` or `Some(None)` (refused) where the rules decide
/// from what was written; `None` where the harness does not predict.
#[allow(clippy::type_complexity)]
fn expected_outcome(written: &[Written], input: &Input) -> Option<Option<(Entries, Option<u64>)>> {
    if written.len() != input.segments.len() {
        return None;
    }
    let replay_after = u64::from(input.replay_after);
    let first = first_seq(input.start);
    let mut entries = Entries::new();
    let mut tail = None;
    for (index, segment) in written.iter().enumerate() {
        let frames = segment.frames.as_ref()?;
        let is_last = index + 1 == written.len();
        let intact = frames.iter().take_while(|(offset, _, payload)| {
            let end = offset + FRAME_HEADER_BYTES + payload.len();
            segment.bytes.len() >= end
                && segment.bytes[*offset..end] == frame(frame_seq(frames, *offset), payload)[..]
        });
        let intact: Vec<_> = intact.cloned().collect();
        let damaged = intact.len() < frames.len();
        if damaged && carries_magic(frames) {
            // A payload holding something like a frame header may read as a later write.
            return None;
        }
        match &segment.damage {
            None => {}
            Some(Damage::Garbage(_)) => return None,
            // A cut past the end or a flip with an empty mask: nothing to see.
            Some(Damage::Cut(_)) | Some(Damage::Flip { .. }) if !damaged => {}
            Some(Damage::Cut(_)) => {
                if !is_last {
                    return Some(None);
                }
                let kept = frames_len(&intact);
                tail = (segment.bytes.len() > kept).then_some(kept as u64);
            }
            Some(Damage::Flip { .. }) => {
                let last_frame_hit = intact.len() + 1 == frames.len();
                if !is_last || !last_frame_hit {
                    // A later frame survives the flip (or another segment follows).
                    return Some(None);
                }
                tail = Some(frames_len(&intact) as u64);
            }
        }
        entries.extend(intact.into_iter().map(|(_, seq, payload)| (seq, payload)));
        if damaged && !is_last {
            return Some(None);
        }
    }
    let last_seq = entries.last().map_or(first - 1, |(seq, _)| *seq);
    if first > replay_after + 1 || last_seq < replay_after {
        return Some(None);
    }
    if entries.iter().any(|(seq, _)| *seq == u64::MAX) {
        return None;
    }
    Some(Some((entries, tail)))
}

fn frame_seq(frames: &[(usize, u64, Vec<u8>)], offset: usize) -> u64 {
    frames
        .iter()
        .find(|(at, _, _)| *at == offset)
        .map(|(_, seq, _)| *seq)
        .expect("a frame's offset")
}

fn frames_len(frames: &[(usize, u64, Vec<u8>)]) -> usize {
    frames
        .iter()
        .map(|(_, _, payload)| FRAME_HEADER_BYTES + payload.len())
        .sum()
}

fn carries_magic(frames: &[(usize, u64, Vec<u8>)]) -> bool {
    frames
        .iter()
        .any(|(_, _, payload)| payload.windows(4).any(|window| window == b"ECNF"))
}

/// Logs of real entries: whole, over two segments, after a snapshot, with a torn last write,
/// with a flipped byte in the middle, and as the log itself writes a segment.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let (entries, _) = ecny_fuzz::ledger::small_state();
    let frames = |payloads: &[Vec<u8>], damage: Option<Damage>| SegmentInput::Frames {
        payloads: payloads.to_vec(),
        damage,
    };
    let dir = scratch_dir("ecny-fuzz-log");
    {
        let (mut log, _) =
            CommandLog::open(dir.path(), 0, |_, _| Ok::<(), ()>(())).expect("a new log");
        for entry in &entries {
            log.append(entry).expect("append");
        }
        log.commit().expect("commit");
    }
    let written = fs::read(dir.path().join("log-00000000000000000001.ecnylog")).expect("a segment");
    let (first, rest) = entries.split_at(1);
    let inputs = [
        ("log", 0, vec![frames(&entries, None)]),
        (
            "two-segments",
            0,
            vec![frames(first, None), frames(rest, None)],
        ),
        ("after-snapshot", 2, vec![frames(&entries, None)]),
        (
            "torn-write",
            0,
            vec![frames(&entries, Some(Damage::Cut(300)))],
        ),
        (
            "flipped-byte",
            0,
            vec![frames(&entries, Some(Damage::Flip { at: 40, mask: 1 }))],
        ),
        (
            "written-by-the-log",
            0,
            vec![SegmentInput::Raw {
                bytes: written,
                skip: 0,
            }],
        ),
    ];
    inputs
        .into_iter()
        .map(|(name, replay_after, segments)| {
            let input = Input {
                replay_after,
                start: Start::Small(0),
                segments,
            };
            let mut writer = ScriptWriter::new();
            input.write(&mut writer);
            (name, writer.take())
        })
        .collect()
}
