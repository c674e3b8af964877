//! `ecny wallet` and `ecny merchant`, the real binary, run as a newcomer would from two terminals
//! against a server started here: a holder opens a wallet and tops it up at the counter, a shop
//! owner gets a class-2 wallet and onboards, the shop presents an order and the holder pays its
//! PNG, a scan gun charges the holder's payment code, the shop refunds and settles; sub-wallets,
//! payments to a wallet and the shop's printed QR; bad input and refusals exit non-zero with
//! `error: detail [CODE]`. Each story ends with a clean audit.

#[allow(dead_code)]
#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/served.rs"]
mod served;

use std::path::{Path, PathBuf};
use std::process::Command;

use http_client::send;
use served::Served;

/// The working directory both terminals share, where profiles and PNGs go.
struct Desk {
    served: Served,
    work: tempfile::TempDir,
}

/// What one run of `ecny` printed.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Desk {
    fn new() -> Desk {
        Desk {
            served: Served::start(),
            work: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    fn data(&self) -> &Path {
        self.served.dir.path()
    }

    fn run(&self, args: &[&str]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_ecny"))
            .args(args)
            .current_dir(self.work.path())
            .output()
            .unwrap();
        Run {
            success: output.status.success(),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }

    /// Runs and expects success; what it printed.
    fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert!(
            run.success,
            "ecny {args:?} failed:\n{}{}",
            run.stdout, run.stderr
        );
        run.stdout
    }

    /// Runs and expects a non-zero exit with `error: … [CODE]`; the message.
    fn fails(&self, args: &[&str], code: &str) -> String {
        let run = self.run(args);
        assert!(!run.success, "ecny {args:?} succeeded:\n{}", run.stdout);
        assert!(
            run.stderr.starts_with("error: ") && run.stderr.contains(&format!(" [{code}]")),
            "ecny {args:?} said:\n{}",
            run.stderr
        );
        run.stderr
    }

    /// Opens a wallet for `profile` at `operator` from a fresh terminal.
    fn open_wallet(&self, profile: &str, operator: &str, phone: &str) -> String {
        let url = self.served.url();
        let opened = self.ok(&[
            "wallet",
            "--profile",
            profile,
            "--server",
            &url,
            "open",
            "--operator",
            operator,
            "--phone",
            phone,
        ]);
        word_after(&opened, "opened wallet ")
    }

    /// The operator's administrator registers a teller, whose credential goes in `profile`.
    fn teller(&self, profile: &str, operator: &str) {
        let url = self.served.url();
        let data = self.data().to_str().unwrap().to_string();
        let added = self.ok(&[
            "staff",
            "--profile",
            profile,
            "--server",
            &url,
            "add",
            "--operator",
            operator,
            "--role",
            "teller",
            "--label",
            "counter 1",
            "--data",
            &data,
        ]);
        assert!(added.contains("(teller, counter 1)"), "{added}");
    }

    /// A teller opens a bank account for `wallet` with the holder's cash.
    fn bank_account(&self, teller: &str, wallet: &str, cash: &str) -> String {
        self.ok(&[
            "staff",
            "--profile",
            teller,
            "bank-account",
            "--wallet",
            wallet,
            "--cash",
            cash,
        ])
    }

    fn audit_is_clean(&self) {
        let bearer = format!("Bearer {}", self.served.central_bank);
        let reply = send(
            self.served.server.addr(),
            "GET",
            "/v1/audit",
            &[("Authorization", &bearer)],
            b"",
        );
        let report = reply.ok(200);
        assert_eq!(report["clean"], true, "{report}");
    }
}

/// The word that follows `marker` in `text`.
fn word_after(text: &str, marker: &str) -> String {
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} not in:\n{text}"))
        + marker.len();
    text[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches([',', ')'])
        .to_string()
}

/// The rest of the line that starts with `marker` in `text`.
fn line_after(text: &str, marker: &str) -> String {
    text.lines()
        .find_map(|line| line.strip_prefix(marker))
        .unwrap_or_else(|| panic!("no line starting {marker:?} in:\n{text}"))
        .to_string()
}

/// Li (a class-4 holder at OP02 with ¥2,000.00) and Pingjiang Snacks (onboarded at OP01 on Wang's
/// class-2 wallet, with a till and a scan gun); profiles li.json, wang.json and the default
/// ecny-merchant.json.
fn li_and_the_snack_shop(desk: &Desk) -> (String, String) {
    let li = desk.open_wallet("li.json", "OP02", "13900000002");
    desk.teller("lakeside-teller.json", "OP02");
    desk.teller("jiangnan-teller.json", "OP01");
    let banked = desk.bank_account("lakeside-teller.json", &li, "5000");
    assert!(banked.contains("with ¥5,000.00 in cash"), "{banked}");
    let topped = desk.ok(&[
        "wallet",
        "--profile",
        "li.json",
        "top-up",
        "--amount",
        "2000",
    ]);
    assert!(topped.contains("balance ¥2,000.00"), "{topped}");

    let wang = desk.open_wallet("wang.json", "OP01", "13800138000");
    let url = desk.served.url();
    let data = desk.data().to_str().unwrap().to_string();
    let onboard = [
        "merchant",
        "--server",
        &url,
        "onboard",
        "--operator",
        "OP01",
        "--wallet",
        &wang,
        "--name",
        "Pingjiang Snacks",
        "--mcc",
        "5814",
        "--region",
        "320500",
        "--data",
        &data,
    ];
    // A phone-number wallet cannot take a shop's takings: it needs class 2 first.
    desk.fails(&onboard, "MERCHANT_WALLET_UNVERIFIED");
    assert!(!desk.path("ecny-merchant.json").exists());
    desk.bank_account("jiangnan-teller.json", &wang, "100");
    let upgraded = desk.ok(&[
        "wallet",
        "--profile",
        "wang.json",
        "kyc",
        "--class",
        "2",
        "--name",
        "Wang Wu",
        "--id-number",
        "110101199003074514",
    ]);
    assert!(upgraded.contains("class 2"), "{upgraded}");
    let onboarded = desk.ok(&onboard);
    let shop = word_after(&onboarded, "as merchant ");
    assert_eq!(shop, "M00000001");
    for kind in ["pos", "scan_gun"] {
        let added = desk.ok(&["merchant", "terminal", "add", "--kind", kind]);
        assert!(added.contains(&format!("({kind})")), "{added}");
    }
    (li, shop)
}

#[test]
fn two_terminals_play_both_sides_of_a_payment() {
    let desk = Desk::new();
    let (li, shop) = li_and_the_snack_shop(&desk);
    #[cfg(unix)]
    for profile in ["li.json", "wang.json", "ecny-merchant.json"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(desk.path(profile))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{profile}");
    }

    // The till shows the order; the holder's phone reads its picture and pays.
    let order = desk.ok(&[
        "merchant",
        "order",
        "--reference",
        "TILL-0001",
        "--amount",
        "120.00",
        "--png",
        "order.png",
    ]);
    assert!(order.contains('\u{2588}'), "no QR drawn:\n{order}");
    let payload = line_after(&order, "payload ");
    assert_eq!(
        ecny::channels::decode_png(&std::fs::read(desk.path("order.png")).unwrap()).unwrap(),
        [payload.as_str()]
    );
    let paid = desk.ok(&[
        "wallet",
        "--profile",
        "li.json",
        "pay",
        "--qr-png",
        "order.png",
    ]);
    assert!(
        paid.contains("paid ¥120.00 to Pingjiang Snacks (M00000001) for order TILL-0001"),
        "{paid}"
    );
    let sale = word_after(&paid, "transfer ");
    let status = desk.ok(&["merchant", "order-status", "TILL-0001"]);
    assert!(
        status.contains(&format!("paid, ¥120.00, transfer {sale}")),
        "{status}"
    );
    // The same QR again: the order is paid once.
    desk.fails(
        &["wallet", "--profile", "li.json", "pay", "--qr", &payload],
        "ORDER_ALREADY_PAID",
    );

    // The holder shows a payment code; the shop's scan gun charges it, once.
    let code = desk.ok(&["wallet", "--profile", "li.json", "code"]);
    assert!(
        code.contains('\u{2580}') || code.contains('\u{2584}'),
        "{code}"
    );
    let digits: String = line_after(&code, "payment code ")
        .split_whitespace()
        .collect();
    assert_eq!(digits.len(), 18);
    let charged = desk.ok(&[
        "merchant",
        "charge-code",
        "--code",
        &digits,
        "--amount",
        "18.00",
    ]);
    assert!(
        charged.contains("charged ¥18.00 by payment code at terminal 2"),
        "{charged}"
    );
    desk.fails(
        &[
            "merchant",
            "charge-code",
            "--code",
            &digits,
            "--amount",
            "18.00",
        ],
        "CODE_REUSED",
    );

    // A refund goes back along the sale; the day settles.
    let refunded = desk.ok(&[
        "merchant",
        "refund",
        "--payment",
        &sale,
        "--amount",
        "30.00",
    ]);
    assert!(
        refunded.contains(&format!("refunded ¥30.00 of payment {sale}")),
        "{refunded}"
    );
    desk.fails(
        &[
            "merchant",
            "refund",
            "--payment",
            &sale,
            "--amount",
            "90.01",
        ],
        "REFUND_EXCEEDS_PAYMENT",
    );
    let payments = desk.ok(&["merchant", "payments"]);
    assert!(
        payments.starts_with("2 payment(s) to M00000001"),
        "{payments}"
    );
    assert!(
        payments.contains("dynamic_qr terminal 1 order TILL-0001 refunded ¥30.00"),
        "{payments}"
    );
    assert!(
        !payments.contains(&li),
        "a merchant never sees the payer:\n{payments}"
    );
    let settlement = desk.ok(&["merchant", "settlement"]);
    for line in ["gross ¥138.00", "refunded ¥30.00", "net ¥108.00"] {
        assert!(settlement.contains(line), "{line} not in:\n{settlement}");
    }
    let balance = desk.ok(&["wallet", "--profile", "li.json", "balance"]);
    assert!(
        balance.contains("class 4, active, balance ¥1,892.00"),
        "{balance}"
    );
    let takings = desk.ok(&["wallet", "--profile", "wang.json", "balance"]);
    assert!(takings.contains("balance ¥108.00"), "{takings}");

    // One altered character: the phone refuses the damaged code and nothing moves.
    let damaged = payload.replacen("120.00", "020.00", 1);
    let said = desk.fails(
        &["wallet", "--profile", "li.json", "pay", "--qr", &damaged],
        "QR_CRC_MISMATCH",
    );
    assert!(said.contains("scan it again"), "{said}");
    desk.fails(
        &["wallet", "--profile", "nobody.json", "balance"],
        "PROFILE_MISSING",
    );
    desk.fails(
        &["merchant", "--profile", "nobody.json", "settlement"],
        "PROFILE_MISSING",
    );
    let balance = desk.ok(&["wallet", "--profile", "li.json", "balance"]);
    assert!(balance.contains("balance ¥1,892.00"), "{balance}");
    assert_eq!(shop, "M00000001");
    desk.audit_is_clean();
}

#[test]
fn sub_wallets_wallet_payments_the_printed_qr_and_refusals() {
    let desk = Desk::new();
    let (_, shop) = li_and_the_snack_shop(&desk);
    let li = ["wallet", "--profile", "li.json"];
    let with_li =
        |args: &[&str]| -> Vec<String> { li.iter().chain(args).map(|s| s.to_string()).collect() };
    let run_li = |args: &[&str]| {
        let all = with_li(args);
        desk.ok(&all.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let fail_li = |args: &[&str], code: &str| {
        let all = with_li(args);
        desk.fails(&all.iter().map(String::as_str).collect::<Vec<_>>(), code)
    };

    // Li pushes a sub-wallet to the shop's app; the shop charges within its limits.
    let pushed = run_li(&[
        "sub-wallet",
        "open",
        "--merchant",
        &shop,
        "--per-payment",
        "200",
        "--daily",
        "300",
    ]);
    let sub = word_after(&pushed, "pushed sub-wallet ");
    desk.ok(&[
        "merchant",
        "charge",
        "--sub-wallet",
        &sub,
        "--amount",
        "150.00",
    ]);
    desk.fails(
        &[
            "merchant",
            "charge",
            "--sub-wallet",
            &sub,
            "--amount",
            "200.01",
        ],
        "SUB_WALLET_LIMIT_SINGLE",
    );
    let limited = run_li(&[
        "sub-wallet",
        "limits",
        &sub,
        "--per-payment",
        "100",
        "--daily",
        "300",
    ]);
    assert!(limited.contains("up to ¥100.00 a payment"), "{limited}");
    desk.fails(
        &[
            "merchant",
            "charge",
            "--sub-wallet",
            &sub,
            "--amount",
            "100.01",
        ],
        "SUB_WALLET_LIMIT_SINGLE",
    );
    let listed = run_li(&["sub-wallets"]);
    assert!(listed.contains("¥150.00 charged today, open"), "{listed}");
    let closed = run_li(&["sub-wallet", "close", &sub]);
    assert!(closed.ends_with("closed\n"), "{closed}");
    desk.fails(
        &["merchant", "charge", "--sub-wallet", &sub, "--amount", "1"],
        "SUB_WALLET_CLOSED",
    );

    // The printed QR on the stand: the payer types the amount, or is told to.
    let stand = desk.ok(&["merchant", "qr", "--png", "stand.png", "--svg", "stand.svg"]);
    assert!(std::fs::read_to_string(desk.path("stand.svg"))
        .unwrap()
        .contains("<svg"));
    let printed = line_after(&stand, "payload ");
    fail_li(&["pay", "--qr-png", "stand.png"], "AMOUNT_REQUIRED");
    let tapped = run_li(&["pay", "--qr", &printed, "--amount", "66.60", "--tapped"]);
    assert!(
        tapped.contains("paid ¥66.60 to Pingjiang Snacks"),
        "{tapped}"
    );

    // Straight to another wallet, across operators.
    let wang: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(desk.path("wang.json")).unwrap()).unwrap();
    let wang = wang["wallet"].as_str().unwrap().to_string();
    run_li(&["pay-wallet", "--to", &wang, "--amount", "10.00"]);
    let balance = run_li(&["balance"]);
    assert!(balance.contains("balance ¥1,773.40"), "{balance}");
    let settlement = desk.ok(&["merchant", "settlement"]);
    assert!(settlement.contains("gross ¥216.60"), "{settlement}");
    assert!(desk
        .ok(&["wallet", "--profile", "wang.json", "balance"])
        .contains("¥226.60"));

    // Refusals: another operator's token at Li's counter, a limit, a wallet that is there
    // already, bad arguments, a server that is not running.
    let li_wallet: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(desk.path("li.json")).unwrap()).unwrap();
    let li_wallet = li_wallet["wallet"].as_str().unwrap().to_string();
    let li_profile = std::fs::read_to_string(desk.path("li.json")).unwrap();
    assert!(
        !li_profile.contains(&desk.served.operators[1]) && !li_profile.contains("ST0"),
        "a holder's profile holds no staff credential: {li_profile}"
    );
    let counter = |teller: &str, code: &str| {
        desk.fails(
            &[
                "staff",
                "--profile",
                teller,
                "bank-account",
                "--wallet",
                &li_wallet,
                "--cash",
                "1",
            ],
            code,
        )
    };
    // Another operator's teller hears of Li's wallet as of none.
    counter("jiangnan-teller.json", "UNKNOWN_WALLET");
    fail_li(&["top-up", "--amount", "9000"], "LIMIT_BALANCE_CAP");
    counter("lakeside-teller.json", "BANK_ACCOUNT_ALREADY_BOUND");
    fail_li(
        &["pay-wallet", "--to", &wang, "--amount", "2000.01"],
        "LIMIT_SINGLE_PAYMENT",
    );
    // "1,50" is not guessed at (150.00? 1.50?): only digits and a point are amounts.
    for amount in ["1,50", "1,000", "¥1"] {
        let refused = desk.run(
            &with_li(&["pay-wallet", "--to", &wang, "--amount", amount])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        assert!(!refused.success, "{amount}: {}", refused.stdout);
        assert!(
            refused.stderr.contains("[MALFORMED_AMOUNT]"),
            "{}",
            refused.stderr
        );
    }
    assert!(run_li(&["balance"]).contains("balance ¥1,773.40"));
    let url = desk.served.url();
    fail_li(
        &[
            "--server",
            &url,
            "open",
            "--operator",
            "OP02",
            "--phone",
            "13900000009",
        ],
        "PROFILE_EXISTS",
    );
    desk.fails(
        &[
            "wallet",
            "--profile",
            "zhao.json",
            "--server",
            &url,
            "open",
            "--operator",
            "OP02",
            "--phone",
            "13900000002",
        ],
        "PHONE_TAKEN",
    );
    assert!(
        !desk.path("zhao.json").exists(),
        "a refused open keeps no key"
    );
    desk.fails(
        &[
            "wallet",
            "--profile",
            "zhao.json",
            "open",
            "--operator",
            "OP02",
            "--phone",
            "139",
        ],
        "MALFORMED_PHONE",
    );
    let amount = desk.run(&[
        "wallet",
        "--profile",
        "li.json",
        "top-up",
        "--amount",
        "12.345",
    ]);
    assert!(
        !amount.success && amount.stderr.contains("--amount"),
        "{}",
        amount.stderr
    );
    let gone = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let said = fail_li(
        &[
            "--server",
            &gone.to_string(),
            "pay-wallet",
            "--to",
            &wang,
            "--amount",
            "1",
        ],
        "SERVER_UNREACHABLE",
    );
    // Signing asks the server for its context first: with no server, nothing was sent.
    assert!(!said.contains("may have been carried out"), "{said}");
    assert!(run_li(&["balance"]).contains("balance ¥1,773.40"));
    desk.audit_is_clean();
}
