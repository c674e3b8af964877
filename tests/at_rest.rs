//! Secrets and identities at rest: every file a data directory holds, log and snapshots
//! included, is read byte by byte for a holder's name, ID number and phone, and none is there;
//! every secret file is the owner's alone (0600), and one someone loosened is tightened at start.

mod support;

use std::path::{Path, PathBuf};

use ecny::command::{Command, Outcome};
use ecny::wallet::WalletClass;
use support::World;

const NAME: &str = "张晓明";
const ID_NUMBER: &str = "11010519491231002X";

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[test]
fn the_log_and_snapshots_hold_no_name_id_number_or_phone() {
    let mut world = World::new();
    let [jiangnan, _] = world.operators;
    let holder = world.open_banked(jiangnan, "100", WalletClass::Four);
    let upgrade = Command::UpgradeWallet {
        wallet: holder.wallet,
        to: WalletClass::Two,
        name: Some(NAME.into()),
        id_number: Some(ID_NUMBER.into()),
        in_person: false,
    };
    world.run(jiangnan, upgrade).unwrap();
    let Ok(Outcome::IdentityLookup(lookup)) = world.run(
        jiangnan,
        Command::Deanonymize {
            wallet: holder.wallet,
            reason: "Suzhou PSB case 2026-118".into(),
        },
    ) else {
        panic!("the wallet's own operator was refused")
    };
    world.platform.node_mut().snapshot().unwrap();

    let phone = holder.phone.to_string();
    let secrets: [(&str, Vec<u8>); 5] = [
        ("name", NAME.as_bytes().to_vec()),
        ("ID number", ID_NUMBER.as_bytes().to_vec()),
        ("phone as text", phone.as_bytes().to_vec()),
        ("phone, little-endian", holder.phone.to_le_bytes().to_vec()),
        ("phone, big-endian", holder.phone.to_be_bytes().to_vec()),
    ];
    let files: Vec<PathBuf> = files_under(world.dir.path())
        .into_iter()
        .filter(|path| !path.starts_with(world.dir.path().join("keys")))
        .collect();
    assert!(
        files
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".ecnylog")),
        "{files:?}"
    );
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        for (what, secret) in &secrets {
            assert!(
                !contains(&bytes, secret),
                "{} holds the holder's {what}",
                path.display()
            );
        }
    }

    // The operator, which alone holds the key, still reads the identity it disclosed.
    let disclosed = world.platform.disclosed_identity(jiangnan, lookup).unwrap();
    assert_eq!(disclosed.phone, Some(holder.phone));
    assert_eq!(disclosed.name.as_deref(), Some(NAME));
    assert_eq!(disclosed.id_number.as_deref(), Some(ID_NUMBER));
    // After a restart, from the log and snapshot alone, too.
    let world = world.reopen();
    let again = world.platform.disclosed_identity(jiangnan, lookup).unwrap();
    assert_eq!(again.name.as_deref(), Some(NAME));
    world.assert_audit();
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[test]
fn every_secret_file_is_the_owners_alone_and_a_loosened_one_is_tightened_at_start() {
    use ecny::server::{Server, ServerConfig};
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut platform, _) = ecny::platform::Platform::open(dir.path()).unwrap();
        platform
            .create_operator("Jiangnan Commercial Bank")
            .unwrap();
    }
    let config = ServerConfig {
        data: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".into(),
        ..ServerConfig::default()
    };
    drop(Server::start(&config).unwrap());
    let keys = dir.path().join("keys");
    let secrets = files_under(&keys);
    let names: Vec<String> = secrets
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "central-bank.key",
        "OP01.key",
        "central-bank.token",
        "OP01.token",
        "token-secret",
        "OP01.code-secret",
    ] {
        assert!(names.iter().any(|n| n == expected), "{names:?}");
    }
    for path in &secrets {
        assert_eq!(
            mode(path),
            0o600,
            "{} is readable by others",
            path.display()
        );
    }
    assert_eq!(mode(&keys), 0o700);

    // Someone loosens them; the next start tightens them again before it serves.
    for path in &secrets {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o755)).unwrap();
    drop(Server::start(&config).unwrap());
    for path in &secrets {
        assert_eq!(mode(path), 0o600, "{} was left open", path.display());
    }
    assert_eq!(mode(&keys), 0o700);
}
