//! Commands and log entries as the registration center receives them from an operator (or an
//! insider at one): any bytes as a batch, logged under any origin at any later time.
//!
//! * `decode_commands`, `check_commands` and a log entry's lazy iterator agree; what decodes
//!   round-trips through its encoding, and every question asked of a command answers.
//! * Applied to the demo's state, any batch leaves every audit invariant holding; the state
//!   machine is deterministic (two copies end alike); a batch whose every command is refused
//!   changes nothing a time-only entry would not; and the state after it snapshots and restores
//!   exactly.

#![no_main]

use std::sync::OnceLock;

use ecny::audit::audit;
use ecny::certs::Signature;
use ecny::codec::{Reader, Writer};
use ecny::command::{check_commands, decode_commands, Command, Entry, Origin, Submission};
use ecny::ids::OperatorId;
use ecny::platform::Platform;
use ecny::state_machine::StateMachine;
use libfuzzer_sys::fuzz_target;

/// Commands in one fuzzed batch at most: each is applied twice and audited.
const BATCH_COMMANDS_MAX: usize = 64;

/// The demo's whole walk-through, once per process: operators, wallets, merchants, contracts.
fn demo_state() -> &'static StateMachine {
    static STATE: OnceLock<StateMachine> = OnceLock::new();
    STATE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let data = dir.path().join("demo");
        ecny::demo::run(&data, &mut |_| {}).expect("the demo runs");
        let (platform, _) = Platform::open(&data).expect("the demo's directory opens");
        platform.state().clone()
    })
}

// An input is an origin byte (0 the central bank, else that operator), the seconds since the
// demo's last entry (u16, big-endian) and an encoded batch: a u32 count and the commands.
fuzz_target!(init: ecny_fuzz::write_seeds_if_asked(seeds), |data: &[u8]| {
    let _ = Entry::decode(data);
    let [origin, advance_high, advance_low, commands @ ..] = data else {
        return;
    };
    let decoded = decode_commands(commands);
    let checked = check_commands(commands);
    assert_eq!(
        decoded.as_ref().map(Vec::len).ok(),
        checked.as_ref().ok().copied(),
        "decode_commands and check_commands disagree"
    );
    let Ok(batch) = decoded else {
        return;
    };
    round_trip(&batch);
    for command in &batch {
        ask(command);
    }
    if batch.len() > BATCH_COMMANDS_MAX {
        return;
    }
    let origin = match origin % 4 {
        0 => Origin::CentralBank,
        n => Origin::Operator(OperatorId(u16::from(n))),
    };
    let advance_ms = u64::from(u16::from_be_bytes([*advance_high, *advance_low])) * 1_000;
    apply(origin, advance_ms, commands, batch.len());
});

/// What decodes encodes to a batch that decodes to the same commands and encodes alike again.
/// (Not always to the very input bytes: a negative cap field, say, reads as "no cap" and writes
/// back as -1; the meaning, which signatures and idempotency digests cover, is the same.)
fn round_trip(batch: &[Command]) {
    let encode = |commands: &[Command]| {
        let mut out = Writer::new();
        out.u32(commands.len() as u32);
        for command in commands {
            command.encode(&mut out);
        }
        out.bytes
    };
    let bytes = encode(batch);
    let again = decode_commands(&bytes).expect("an encoded batch decodes");
    assert_eq!(
        again, batch,
        "a batch decoded to other commands after a round trip"
    );
    assert_eq!(encode(&again), bytes, "encoding is not stable");
    let mut input = Reader::new(&bytes[4..]);
    for command in batch {
        assert_eq!(&Command::decode(&mut input).expect("re-decodes"), command);
    }
}

/// Everything the node and the operator tier ask of a command, on any command.
fn ask(command: &Command) {
    let _ = command.check_text_fields();
    let _ = command.idempotency_key();
    let _ = command.digest();
    let _ = command.signed_message();
    if command.auth().is_some() {
        let _ = command.verify_auth();
    }
}

fn apply(origin: Origin, advance_ms: u64, commands: &[u8], count: usize) {
    let base = demo_state();
    let timestamp_ms = base.last_timestamp_ms() + advance_ms;
    let payload = entry(origin, timestamp_ms, commands);
    let parsed = Entry::decode(&payload).expect("a well-formed entry");
    let lazily: Vec<Command> = parsed
        .commands()
        .expect("a count within the limit")
        .collect::<Result<_, _>>()
        .expect("the batch decodes lazily too");
    assert_eq!(lazily.len(), count);

    let mut state = base.clone();
    let mut results = Vec::new();
    state
        .apply_entry(&payload, &mut results)
        .expect("a decodable entry applies");
    assert_eq!(results.len(), count, "one result per command");
    let report = audit(&state);
    assert!(
        report.is_clean(),
        "audit after a batch: {:?}",
        report.violations
    );

    let mut twin = base.clone();
    let mut twin_results = Vec::new();
    twin.apply_entry(&payload, &mut twin_results)
        .expect("applies again");
    assert_eq!(twin_results, results, "the same entry answered differently");
    assert!(twin == state, "the same entry left different states");

    if results.iter().all(Result::is_err) {
        let mut idle = base.clone();
        idle.apply_entry(
            &entry(origin, timestamp_ms, &0u32.to_le_bytes()),
            &mut Vec::new(),
        )
        .expect("an empty batch applies");
        assert_eq!(
            idle.state_hash(),
            state.state_hash(),
            "refused commands changed the state: {results:?}"
        );
    }

    let restored =
        StateMachine::decode_snapshot(&state.encode_snapshot()).expect("a snapshot restores");
    assert!(restored == state, "the snapshot restored another state");
}

/// A log entry as the node writes it; the batch signature is checked before the log, not here.
fn entry(origin: Origin, timestamp_ms: u64, commands: &[u8]) -> Vec<u8> {
    let submission = Submission {
        origin,
        commands: commands.to_vec(),
        signature: Signature([0; 64]),
    };
    let mut payload = Vec::new();
    submission.encode_entry(timestamp_ms, &mut payload);
    payload
}

/// Batches of every kind of command, from the party that sends it, on the demo's wallets,
/// merchants and operators; the holders' signatures are left out, so the center refuses every
/// command that moves a holder's money (`SIGNATURE_REQUIRED`) and books only what stays on the
/// operator's word.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    use ecny::certs::device::DeviceCaps;
    use ecny::certs::KeyPair;
    use ecny::channels::acquiring::{PaymentChannel, TerminalKind};
    use ecny::channels::emvco::Mcc;
    use ecny::ids::{
        AccountId, CampaignId, ContractId, DeviceId, EventId, IdempotencyKey, MerchantId,
        SubWalletId, WalletId,
    };
    use ecny::programs::contracts::Template;
    use ecny::programs::{CampaignTerms, Seed, Window};
    use ecny::wallet::sub_wallet::SubWalletLimits;
    use ecny::wallet::{ClassLimits, WalletClass, WalletStatus};
    use ecny::Amount;

    let key = KeyPair::from_seed(b"fuzz holder").public_key();
    let (op, w1, w2, m1) = (OperatorId(1), WalletId(1), WalletId(2), MerchantId(1));
    let yuan = Amount::from_yuan;
    let limits = SubWalletLimits {
        per_payment: yuan(50),
        daily: yuan(200),
    };
    let seed = Seed::from_bytes([3; 32]);
    let window = |from_ms: u64, days: u64| Window {
        opens_at_ms: from_ms,
        closes_at_ms: from_ms + days * 86_400_000,
    };
    let later_ms = 1_900_000_000_000;
    let terms = CampaignTerms::suzhou_pilot(
        10,
        seed.commitment(),
        window(later_ms, 3),
        window(later_ms + 4 * 86_400_000, 14),
    );
    let caps = DeviceCaps {
        per_payment_cap: yuan(500),
        balance_cap: yuan(2_000),
        daily_cap: None,
        payments_before_sync: 30,
        spend_before_sync: yuan(1_000),
    };
    let central_bank = vec![
        Command::FundReserves {
            operator: op,
            amount: yuan(1_000),
        },
        Command::Issue {
            operator: op,
            amount: yuan(500),
        },
        Command::Redeem {
            operator: op,
            amount: yuan(10),
        },
        Command::SetClassLimits {
            operator: op,
            class: WalletClass::Four,
            limits: ClassLimits {
                balance_cap: Some(yuan(10_000)),
                single_payment: Some(yuan(2_000)),
                daily: Some(yuan(5_000)),
                annual: None,
            },
        },
        Command::CreateOperator {
            name: "Harbour Bank".into(),
            public_key: key,
        },
        Command::CreateCampaign { terms },
        Command::FundCampaign {
            campaign: CampaignId(2),
            auth: None,
        },
    ];
    let wallets = vec![
        Command::OpenWallet {
            operator: op,
            phone: 13_900_000_001.into(),
            public_key: key,
        },
        Command::UpgradeWallet {
            wallet: w1,
            to: WalletClass::Three,
            name: Some("Li Hua".into()),
            id_number: Some("320102199001011234".into()),
            in_person: false,
        },
        Command::OpenDepositAccount { operator: op },
        Command::CashDeposit {
            account: AccountId(1),
            amount: yuan(100),
        },
        Command::BindBankAccount {
            wallet: w2,
            account: AccountId(1),
            auth: None,
        },
        Command::SetWalletStatus {
            wallet: w2,
            status: WalletStatus::Frozen,
        },
        Command::SetWalletStatus {
            wallet: w2,
            status: WalletStatus::Active,
        },
        Command::Deanonymize {
            wallet: w1,
            reason: "court order 2024-17".into(),
        },
        Command::SetCodePaymentCap {
            operator: op,
            cap: yuan(500),
        },
    ];
    let money = vec![
        Command::Exchange {
            wallet: w1,
            amount: yuan(20),
            key: IdempotencyKey(11),
            auth: None,
        },
        Command::DepositBack {
            wallet: w1,
            amount: yuan(5),
            key: IdempotencyKey(12),
            auth: None,
        },
        Command::Pay {
            payer: w1,
            payee: w2,
            amount: yuan(1),
            key: IdempotencyKey(13),
            auth: None,
        },
        Command::Hold {
            payer: w1,
            payee: w2,
            amount: yuan(1),
            timeout_ms: 60_000,
            key: IdempotencyKey(14),
            auth: None,
        },
        Command::ResolveHold {
            hold: EventId(1),
            post: true,
        },
        Command::CloseWallet {
            wallet: WalletId(9),
        },
    ];
    let merchants = vec![
        Command::OnboardMerchant {
            operator: op,
            wallet: w2,
            name: "Corner Books".into(),
            mcc: Mcc::new(5942).expect("a category"),
            region: 320_500,
        },
        Command::AddTerminal {
            merchant: m1,
            kind: TerminalKind::Pos,
        },
        Command::CreateOrder {
            merchant: m1,
            reference: "CB-0001".into(),
            amount: yuan(25),
            expires_at_ms: later_ms,
            terminal: 1,
            cash_on_delivery: false,
        },
        Command::PayMerchant {
            payer: w1,
            merchant: m1,
            amount: yuan(25),
            channel: PaymentChannel::DynamicQr,
            terminal: 1,
            order: Some("CB-0001".into()),
            key: IdempotencyKey(21),
            auth: None,
        },
        Command::Refund {
            payment: EventId(1),
            amount: yuan(5),
            key: IdempotencyKey(22),
        },
        Command::ChargePaymentCode {
            payer: w1,
            merchant: m1,
            terminal: 1,
            amount: yuan(3),
            code_step: 60_000_000,
            key: IdempotencyKey(23),
        },
        Command::OpenSubWallet {
            wallet: w1,
            merchant: m1,
            limits,
            auth: None,
        },
        Command::SetSubWallet {
            sub_wallet: SubWalletId(1),
            limits,
            open: true,
            auth: None,
        },
        Command::ChargeSubWallet {
            sub_wallet: SubWalletId(1),
            merchant: m1,
            amount: yuan(5),
            order: None,
            key: IdempotencyKey(24),
        },
    ];
    let programs = vec![
        Command::OpenContract {
            payer: w1,
            payee: w2,
            template: Template::Prepaid {
                units: 10,
                unit_price: yuan(2),
            },
            purpose: "reading club".into(),
            key: IdempotencyKey(31),
            auth: None,
        },
        Command::OpenContract {
            payer: w1,
            payee: w2,
            template: Template::Escrow {
                amount: yuan(3),
                deadline_ms: later_ms,
            },
            purpose: "bicycle".into(),
            key: IdempotencyKey(32),
            auth: None,
        },
        Command::ConfirmContract {
            contract: ContractId(1),
            units: 1,
            key: IdempotencyKey(33),
            auth: None,
        },
        Command::CancelContract {
            contract: ContractId(1),
            by_payee: true,
            auth: None,
        },
        Command::RegisterForCampaign {
            campaign: CampaignId(1),
            wallet: w1,
            offline_trial: true,
        },
        Command::DrawCampaign {
            campaign: CampaignId(1),
            seed,
        },
    ];
    let devices = vec![
        Command::RegisterDevice {
            operator: op,
            device: DeviceId(77),
            public_key: key,
            wallet: Some(w1),
            caps,
            auth: None,
        },
        Command::LoadDevice {
            device: DeviceId(77),
            load_seq: 1,
            amount: yuan(10),
            auth: None,
        },
        Command::BeginSync {
            device: DeviceId(77),
        },
        Command::RefundAtCounter {
            device: DeviceId(77),
        },
    ];
    let batch = |origin: u8, commands: &[Command]| {
        let mut out = Writer::new();
        out.raw(&[origin, 0, 1]).u32(commands.len() as u32);
        for command in commands {
            command.encode(&mut out);
        }
        out.bytes
    };
    vec![
        ("central-bank", batch(0, &central_bank)),
        ("wallets", batch(1, &wallets)),
        ("money", batch(1, &money)),
        ("merchants", batch(2, &merchants)),
        ("programs", batch(1, &programs)),
        ("devices", batch(1, &devices)),
        ("wrong-origin", batch(3, &central_bank)),
    ]
}
