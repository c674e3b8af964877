//! Golden bytes for the log format: one sample of every `Command` variant, and one whole log
//! entry, encoded to the bytes checked in at `tests/golden/commands.hex`. Any change to the
//! encoding fails here; a deliberate one (with the log's version constant bumped) is recorded
//! with one command:
//!
//! ```sh
//! ECNY_UPDATE_GOLDEN=1 cargo test --test golden
//! ```
//!
//! Every sample also round-trips, and the checked-in bytes decode to the sample, so decoding is
//! pinned as well as encoding.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ecny::certs::device::DeviceCaps;
use ecny::certs::{decode_hex, encode_hex, KeyPair, Signature};
use ecny::channels::acquiring::{PaymentChannel, TerminalKind};
use ecny::channels::emvco::Mcc;
use ecny::codec::{Reader, Writer};
use ecny::command::{decode_commands, Command, Entry, HolderAuth, Origin, Submission};
use ecny::ids::{
    AccountId, CampaignId, ContractId, DeviceId, EventId, IdempotencyKey, MerchantId, OperatorId,
    SubWalletId, WalletId,
};
use ecny::offline::messages::{
    AttestedSync, EntryRole, LogEntry, Nonce, PaymentRecord, SignedRecord, SignedUnload,
    SyncAttestation, UnloadEntry,
};
use ecny::parties::{CredentialSubject, StaffRole};
use ecny::programs::campaign::{CampaignTerms, Window};
use ecny::programs::contracts::Template;
use ecny::programs::lottery::Seed;
use ecny::sealed::{Field, IdentityKey, PersonalText, Phone};
use ecny::signing::{DeploymentId, SigningContext};
use ecny::wallet::sub_wallet::SubWalletLimits;
use ecny::wallet::{ClassLimits, WalletClass, WalletStatus};
use ecny::Amount;

const UPDATE_ENV: &str = "ECNY_UPDATE_GOLDEN";
/// The time stamped on the golden log entry: 2026-11-23 12:00 Beijing time.
const ENTRY_TIMESTAMP_MS: u64 = 1_795_406_400_000;

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/commands.hex")
}

/// The variant's name. Exhaustive on purpose: a new variant does not compile here until it has
/// a name, and the test then fails until it has a sample and golden bytes.
fn variant(command: &Command) -> &'static str {
    match command {
        Command::Genesis { .. } => "Genesis",
        Command::CreateOperator { .. } => "CreateOperator",
        Command::FundReserves { .. } => "FundReserves",
        Command::Issue { .. } => "Issue",
        Command::Redeem { .. } => "Redeem",
        Command::SetClassLimits { .. } => "SetClassLimits",
        Command::OpenDepositAccount { .. } => "OpenDepositAccount",
        Command::CashDeposit { .. } => "CashDeposit",
        Command::OpenWallet { .. } => "OpenWallet",
        Command::UpgradeWallet { .. } => "UpgradeWallet",
        Command::BindBankAccount { .. } => "BindBankAccount",
        Command::SetWalletStatus { .. } => "SetWalletStatus",
        Command::CloseWallet { .. } => "CloseWallet",
        Command::Exchange { .. } => "Exchange",
        Command::DepositBack { .. } => "DepositBack",
        Command::Pay { .. } => "Pay",
        Command::Hold { .. } => "Hold",
        Command::ResolveHold { .. } => "ResolveHold",
        Command::RegisterDevice { .. } => "RegisterDevice",
        Command::LoadDevice { .. } => "LoadDevice",
        Command::SyncOffline { .. } => "SyncOffline",
        Command::UnloadDevice { .. } => "UnloadDevice",
        Command::OnboardMerchant { .. } => "OnboardMerchant",
        Command::AddTerminal { .. } => "AddTerminal",
        Command::CreateOrder { .. } => "CreateOrder",
        Command::PayMerchant { .. } => "PayMerchant",
        Command::Refund { .. } => "Refund",
        Command::OpenSubWallet { .. } => "OpenSubWallet",
        Command::SetSubWallet { .. } => "SetSubWallet",
        Command::ChargeSubWallet { .. } => "ChargeSubWallet",
        Command::OpenContract { .. } => "OpenContract",
        Command::ConfirmContract { .. } => "ConfirmContract",
        Command::CancelContract { .. } => "CancelContract",
        Command::CreateCampaign { .. } => "CreateCampaign",
        Command::FundCampaign { .. } => "FundCampaign",
        Command::RegisterForCampaign { .. } => "RegisterForCampaign",
        Command::DrawCampaign { .. } => "DrawCampaign",
        Command::RefundAtCounter { .. } => "RefundAtCounter",
        Command::Deanonymize { .. } => "Deanonymize",
        Command::BeginSync { .. } => "BeginSync",
        Command::ChargePaymentCode { .. } => "ChargePaymentCode",
        Command::SetCodePaymentCap { .. } => "SetCodePaymentCap",
        Command::AddStaff { .. } => "AddStaff",
        Command::RevokeCredential { .. } => "RevokeCredential",
        Command::OpenBankAccountWithCash { .. } => "OpenBankAccountWithCash",
        Command::SetOperatorSuspended { .. } => "SetOperatorSuspended",
        Command::BlockDevice { .. } => "BlockDevice",
    }
}

/// A key pair and signatures that never change: SM2 signing here is deterministic.
fn holder() -> KeyPair {
    KeyPair::from_seed(b"golden holder")
}

fn context() -> SigningContext {
    SigningContext {
        deployment: DeploymentId([0x3c; 16]),
        operator: OperatorId(2),
    }
}

/// The last instant the golden signatures are good: ten minutes after the golden entry.
const NOT_AFTER_MS: u64 = ENTRY_TIMESTAMP_MS + 600_000;

fn auth() -> Option<HolderAuth> {
    Some(HolderAuth {
        public_key: holder().public_key(),
        signature: Signature([0x5a; 64]),
        context: context(),
        not_after_ms: NOT_AFTER_MS,
    })
}

/// The operator whose key seals the golden identities: sealing is deterministic, so the
/// sealed bytes are golden too.
fn identity_key() -> IdentityKey {
    IdentityKey::of_operator(&KeyPair::from_seed(b"golden operator"))
}

/// A payee's attested sync reporting one received record and one unload.
fn attested_sync(record: SignedRecord) -> AttestedSync {
    let log = vec![LogEntry {
        seq: 3,
        role: EntryRole::Received,
        signed: record,
        peer_key: holder().public_key(),
        acknowledged: true,
    }];
    let unloads = vec![UnloadEntry {
        seq: 1,
        unload: SignedUnload {
            device: DeviceId(0xD000_0000_0000_0002),
            unload_seq: 1,
            amount: yuan("10"),
            time_s: 1_795_406_430,
            signature: Signature([0x44; 64]),
        },
    }];
    AttestedSync {
        attestation: SyncAttestation {
            device: DeviceId(0xD000_0000_0000_0002),
            nonce: Nonce([0x55; 16]),
            balance: yuan("56.60"),
            counter: 4,
            load_seq: 1,
            unload_seq: 1,
            synced_through: 2,
            next_log_seq: 4,
            last_sync_s: 1_795_400_000,
            clock_floor_s: 1_795_406_400,
            payments_since_sync: 0,
            spent_since_sync: yuan("0"),
            blocked: false,
            entries_digest: SyncAttestation::entries_digest(&log, &unloads),
            signature: Signature([0x66; 64]),
        },
        log,
        unloads,
    }
}

fn key(n: u128) -> IdempotencyKey {
    IdempotencyKey(0x0123_4567_89ab_cdef_0000_0000_0000_0000 | n)
}

fn yuan(text: &str) -> Amount {
    text.parse().unwrap()
}

fn seed() -> Seed {
    Seed::from_hex(&"07".repeat(32)).unwrap()
}

/// One of each variant, every optional field filled where the variant has one, so each part
/// of the encoding shows in the bytes.
fn samples() -> Vec<Command> {
    let public_key = holder().public_key();
    let record = SignedRecord {
        record: PaymentRecord {
            payer: DeviceId(0xD000_0000_0000_0001),
            counter: 7,
            payee: DeviceId(0xD000_0000_0000_0002),
            nonce: Nonce([0x11; 16]),
            amount: yuan("66.60"),
            time_s: 1_795_406_400,
        },
        signature: Signature([0x22; 64]),
    };
    vec![
        Command::Genesis {
            central_bank_key: public_key,
        },
        Command::CreateOperator {
            name: "Jiangnan Commercial Bank".into(),
            public_key,
        },
        Command::FundReserves {
            operator: OperatorId(1),
            amount: yuan("10000000"),
        },
        Command::Issue {
            operator: OperatorId(1),
            amount: yuan("5000000"),
        },
        Command::Redeem {
            operator: OperatorId(2),
            amount: yuan("0.01"),
        },
        Command::SetClassLimits {
            operator: OperatorId(1),
            class: WalletClass::Three,
            limits: ClassLimits::default_for(WalletClass::Three),
        },
        Command::OpenDepositAccount {
            operator: OperatorId(2),
        },
        Command::CashDeposit {
            account: AccountId(17),
            amount: yuan("5000"),
        },
        Command::OpenWallet {
            operator: OperatorId(2),
            phone: Phone::Sealed(identity_key().seal_phone(13_911_112_222)),
            public_key,
        },
        Command::UpgradeWallet {
            wallet: WalletId(5),
            to: WalletClass::Two,
            name: Some(PersonalText::Sealed(
                identity_key().seal_text(Field::Name, "王五"),
            )),
            id_number: Some(PersonalText::Sealed(
                identity_key().seal_text(Field::IdNumber, "110101199003074514"),
            )),
            in_person: true,
        },
        Command::BindBankAccount {
            wallet: WalletId(5),
            account: AccountId(17),
            auth: None,
        },
        Command::SetWalletStatus {
            wallet: WalletId(5),
            status: WalletStatus::Frozen,
        },
        Command::CloseWallet {
            wallet: WalletId(5),
        },
        Command::Exchange {
            wallet: WalletId(5),
            amount: yuan("2000"),
            key: key(1),
            auth: auth(),
        },
        Command::DepositBack {
            wallet: WalletId(5),
            amount: yuan("100"),
            key: key(2),
            auth: auth(),
        },
        Command::Pay {
            payer: WalletId(5),
            payee: WalletId(6),
            amount: yuan("66.60"),
            key: key(3),
            auth: None,
        }
        .sign(&holder(), &context(), NOT_AFTER_MS),
        Command::Hold {
            payer: WalletId(5),
            payee: WalletId(6),
            amount: yuan("18"),
            timeout_ms: 60_000,
            key: key(4),
            auth: auth(),
        },
        Command::ResolveHold {
            hold: EventId(33),
            post: true,
        },
        Command::RegisterDevice {
            operator: OperatorId(1),
            device: DeviceId(0xD000_0000_0000_0001),
            public_key,
            wallet: Some(WalletId(5)),
            caps: DeviceCaps {
                per_payment_cap: yuan("500"),
                balance_cap: yuan("1000"),
                daily_cap: Some(yuan("30")),
                payments_before_sync: 50,
                spend_before_sync: yuan("600"),
            },
            auth: None,
        },
        Command::LoadDevice {
            device: DeviceId(0xD000_0000_0000_0001),
            load_seq: 2,
            amount: yuan("100"),
            auth: None,
        },
        Command::BeginSync {
            device: DeviceId(0xD000_0000_0000_0002),
        },
        Command::SyncOffline {
            sync: attested_sync(record),
            device_key: public_key,
        },
        Command::UnloadDevice {
            unload: SignedUnload {
                device: DeviceId(0xD000_0000_0000_0001),
                unload_seq: 1,
                amount: yuan("33.30"),
                time_s: 1_795_406_460,
                signature: Signature([0x33; 64]),
            },
            device_key: public_key,
        },
        Command::OnboardMerchant {
            operator: OperatorId(1),
            wallet: WalletId(6),
            name: "Pingjiang Snacks".into(),
            mcc: Mcc::new(5814).unwrap(),
            region: 320_500,
        },
        Command::AddTerminal {
            merchant: MerchantId(2),
            kind: TerminalKind::ScanGun,
        },
        Command::CreateOrder {
            merchant: MerchantId(2),
            reference: "TILL-0001".into(),
            amount: yuan("66.60"),
            expires_at_ms: 1_795_407_300_000,
            terminal: 1,
            cash_on_delivery: false,
        },
        Command::PayMerchant {
            payer: WalletId(5),
            merchant: MerchantId(2),
            amount: yuan("66.60"),
            channel: PaymentChannel::DynamicQr,
            terminal: 1,
            order: Some("TILL-0001".into()),
            key: key(5),
            auth: auth(),
        },
        Command::Refund {
            payment: EventId(43),
            amount: yuan("6.60"),
            key: key(6),
        },
        Command::OpenSubWallet {
            wallet: WalletId(5),
            merchant: MerchantId(2),
            limits: SubWalletLimits {
                per_payment: yuan("200"),
                daily: yuan("500"),
            },
            auth: auth(),
        },
        Command::SetSubWallet {
            sub_wallet: SubWalletId(2),
            limits: SubWalletLimits {
                per_payment: yuan("100"),
                daily: yuan("300"),
            },
            open: false,
            auth: auth(),
        },
        Command::ChargeSubWallet {
            sub_wallet: SubWalletId(2),
            merchant: MerchantId(2),
            amount: yuan("35"),
            order: Some("WEB-7".into()),
            key: key(7),
        },
        Command::OpenContract {
            payer: WalletId(5),
            payee: WalletId(6),
            template: Template::Prepaid {
                units: 40,
                unit_price: yuan("25"),
            },
            purpose: "reading club, 40 lessons".into(),
            key: key(8),
            auth: auth(),
        },
        Command::ConfirmContract {
            contract: ContractId(1),
            units: 3,
            key: key(9),
            auth: auth(),
        },
        Command::CancelContract {
            contract: ContractId(1),
            by_payee: false,
            auth: auth(),
        },
        Command::CreateCampaign {
            terms: CampaignTerms::suzhou_pilot(
                100_000,
                seed().commitment(),
                Window {
                    opens_at_ms: 1_795_000_000_000,
                    closes_at_ms: 1_795_100_000_000,
                },
                Window {
                    opens_at_ms: 1_795_200_000_000,
                    closes_at_ms: 1_796_000_000_000,
                },
            ),
        },
        Command::FundCampaign {
            campaign: CampaignId(1),
            auth: None,
        },
        Command::RegisterForCampaign {
            campaign: CampaignId(1),
            wallet: WalletId(5),
            offline_trial: true,
        },
        Command::DrawCampaign {
            campaign: CampaignId(1),
            seed: seed(),
        },
        Command::RefundAtCounter {
            device: DeviceId(0xD000_0000_0000_0003),
        },
        Command::Deanonymize {
            wallet: WalletId(5),
            reason: "court order (2026) Su 05 Xing Zhong 117".into(),
        },
        Command::ChargePaymentCode {
            payer: WalletId(5),
            merchant: MerchantId(2),
            terminal: 3,
            amount: yuan("66.60"),
            code_step: 59_846_880,
            key: key(9),
        },
        Command::SetCodePaymentCap {
            operator: OperatorId(1),
            cap: yuan("1000"),
        },
        Command::AddStaff {
            operator: OperatorId(1),
            role: StaffRole::Teller,
            label: "counter 3, Guanqian Street branch".into(),
        },
        Command::RevokeCredential {
            subject: CredentialSubject::Terminal {
                merchant: MerchantId(2),
                terminal: 3,
            },
        },
        Command::OpenBankAccountWithCash {
            wallet: WalletId(5),
            cash: yuan("5000"),
            key: key(10),
        },
        Command::SetOperatorSuspended {
            operator: OperatorId(2),
            suspended: true,
        },
        Command::BlockDevice {
            device: DeviceId(0x0102_0304_0506_0708),
        },
    ]
}

fn encoded(command: &Command) -> Vec<u8> {
    let mut out = Writer::new();
    command.encode(&mut out);
    out.bytes
}

/// A whole log entry: a submission of three commands signed by an operator, as the node logs it.
fn entry() -> Vec<u8> {
    let operator = KeyPair::from_seed(b"golden operator");
    let commands = &samples()[13..16];
    let submission = Submission::new(Origin::Operator(OperatorId(2)), commands, &operator);
    submission.verify(&operator.public_key()).unwrap();
    let mut out = Vec::new();
    submission.encode_entry(ENTRY_TIMESTAMP_MS, &mut out);
    out
}

/// Name → bytes, the order kept: what the golden file holds.
fn lines() -> Vec<(String, Vec<u8>)> {
    let mut lines: Vec<(String, Vec<u8>)> = samples()
        .iter()
        .map(|c| (variant(c).to_string(), encoded(c)))
        .collect();
    lines.push(("entry".to_string(), entry()));
    lines
}

fn render(lines: &[(String, Vec<u8>)]) -> String {
    let mut text = String::from(
        "# Every Command variant as Command::encode writes it, one per line, then a whole log entry\n\
         # (tests/golden.rs has the samples). After a deliberate change to the encoding, bump the\n\
         # log's version constant and regenerate with: ECNY_UPDATE_GOLDEN=1 cargo test --test golden\n",
    );
    for (name, bytes) in lines {
        text.push_str(&format!("{name} {}\n", encode_hex(bytes)));
    }
    text
}

fn read_golden(text: &str) -> BTreeMap<String, Vec<u8>> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (name, hex) = line.split_once(' ').expect("name and hex");
            let mut bytes = vec![0u8; hex.len() / 2];
            decode_hex(hex, &mut bytes).expect("hex digits");
            (name.to_string(), bytes)
        })
        .collect()
}

#[test]
fn every_command_variant_encodes_to_its_golden_bytes() {
    let lines = lines();
    let path = golden_path();
    if std::env::var_os(UPDATE_ENV).is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // Written beside and renamed over, so a test reading it sees the old file or the new.
        let staged = path.with_extension("hex.new");
        std::fs::write(&staged, render(&lines)).unwrap();
        std::fs::rename(&staged, &path).unwrap();
        eprintln!("wrote {}", path.display());
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; write it with {UPDATE_ENV}=1", path.display()));
    let golden = read_golden(&text);
    let mut changed = Vec::new();
    for (name, bytes) in &lines {
        match golden.get(name) {
            Some(expected) if expected == bytes => {}
            Some(expected) => changed.push(format!(
                "{name}: was {}\n{:>width$}  now {}",
                encode_hex(expected),
                "",
                encode_hex(bytes),
                width = name.len()
            )),
            None => changed.push(format!("{name}: no golden bytes yet")),
        }
    }
    for name in golden.keys() {
        if !lines.iter().any(|(n, _)| n == name) {
            changed.push(format!("{name}: golden bytes for a variant that is gone"));
        }
    }
    assert!(
        changed.is_empty(),
        "the log encoding changed; if you meant it, bump the log's version constant and run \
         `{UPDATE_ENV}=1 cargo test --test golden`:\n{}",
        changed.join("\n")
    );
}

#[test]
fn every_variant_has_one_sample_and_round_trips_from_its_golden_bytes() {
    let samples = samples();
    let mut names: Vec<&str> = samples.iter().map(variant).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before, "one sample per variant");
    assert_eq!(names.len(), 47, "a sample for every variant of Command");
    // While the file is being regenerated, the bytes it is getting stand in for it.
    let golden: BTreeMap<String, Vec<u8>> = if std::env::var_os(UPDATE_ENV).is_some() {
        lines().into_iter().collect()
    } else {
        read_golden(&std::fs::read_to_string(golden_path()).unwrap())
    };
    for command in &samples {
        let bytes = encoded(command);
        let mut reader = Reader::new(&bytes);
        assert_eq!(
            &Command::decode(&mut reader).unwrap(),
            command,
            "{}",
            variant(command)
        );
        assert!(
            reader.is_empty(),
            "{} leaves bytes unread",
            variant(command)
        );
        if let Some(checked_in) = golden.get(variant(command)) {
            let mut reader = Reader::new(checked_in);
            assert_eq!(
                &Command::decode(&mut reader).unwrap(),
                command,
                "golden {}",
                variant(command)
            );
        }
    }
    // The whole entry reads back: time, origin, commands.
    let entry = entry();
    let decoded = Entry::decode(&entry).unwrap();
    assert_eq!(decoded.timestamp_ms, ENTRY_TIMESTAMP_MS);
    assert_eq!(decoded.origin, Origin::Operator(OperatorId(2)));
    let commands: Vec<Command> = decoded.commands().unwrap().map(Result::unwrap).collect();
    assert_eq!(commands, samples[13..16]);
    let mut batch = Writer::new();
    batch.u32(samples.len() as u32);
    samples.iter().for_each(|c| c.encode(&mut batch));
    assert_eq!(decode_commands(&batch.bytes).unwrap(), samples);
}
