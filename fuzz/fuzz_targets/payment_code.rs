//! Payment-code digits as a till's scan gun (or a person typing) hands them to the operator.
//! A code the verifier identifies is exactly the code the issuer made for that wallet and step,
//! within the lookback; and no terminal gets more than the allowed failures in any window.

#![no_main]

use std::collections::HashMap;

use ecny::channels::payment_code::{
    OperatorCodeSecret, PaymentCodeIssuer, PaymentCodeVerifier, CODE_STALE_LOOKBACK_STEPS,
    CODE_STEP_S, GUESS_FAILURES_PER_WINDOW_MAX, GUESS_WINDOW_S, PAYMENT_CODE_DIGITS,
};
use ecny::ids::{OperatorId, WalletId};
use ecny_fuzz::{Script, ScriptWriter};
use libfuzzer_sys::fuzz_target;

const OPERATOR: OperatorId = OperatorId(3);
/// 2024-05-01 12:00:00 UTC.
const NOON_S: u64 = 1_714_564_800;

/// The digits a till hands over.
enum Digits {
    /// Whatever the scanner read.
    Typed(String),
    /// A real code of `wallet`, `steps_back` steps ago, with digit `position - 1` set to
    /// `digit` (none for `position` 0).
    Edited {
        wallet: u32,
        steps_back: u8,
        position: u8,
        digit: u8,
    },
}

struct Scan {
    terminal: u8,
    later_s: u16,
    digits: Digits,
}

impl Scan {
    /// A terminal (u8), the seconds since the last scan (u16), then 0 and the digits (a byte
    /// string) or 1 and an edited real code: wallet (u32), steps back, position, digit (u8 each).
    fn read(s: &mut Script<'_>) -> Option<Scan> {
        let (terminal, later_s) = (s.u8()?, s.u16()?);
        let digits = match s.u8()? % 2 {
            0 => Digits::Typed(String::from_utf8_lossy(s.bytes()?).into_owned()),
            _ => Digits::Edited {
                wallet: s.u32()?,
                steps_back: s.u8()?,
                position: s.u8()?,
                digit: s.u8()?,
            },
        };
        Some(Scan {
            terminal,
            later_s,
            digits,
        })
    }

    fn write(&self, w: &mut ScriptWriter) {
        w.u8(self.terminal).u16(self.later_s);
        match &self.digits {
            Digits::Typed(text) => w.u8(0).bytes(text.as_bytes()),
            Digits::Edited {
                wallet,
                steps_back,
                position,
                digit,
            } => w
                .u8(1)
                .u32(*wallet)
                .u8(*steps_back)
                .u8(*position)
                .u8(*digit),
        };
    }
}

/// Scans at one operator's tills, at most this many per input.
const SCANS_MAX: usize = 64;

fuzz_target!(init: ecny_fuzz::write_seeds_if_asked(seeds), |data: &[u8]| {
    let mut script = Script::new(data);
    let secret = OperatorCodeSecret::from_bytes([7; 32]);
    let issuer = PaymentCodeIssuer::new(OPERATOR, &secret).expect("operator routable");
    let mut verifier = PaymentCodeVerifier::new(OPERATOR, &secret).expect("operator routable");
    let mut failures: HashMap<u64, Vec<u64>> = HashMap::new();
    let mut now_s = NOON_S;
    for _ in 0..SCANS_MAX {
        let Some(scan) = Scan::read(&mut script) else {
            break;
        };
        now_s += u64::from(scan.later_s);
        let code = digits(&issuer, scan.digits, now_s);
        let terminal = u64::from(scan.terminal % 4);
        match verifier.identify(&code, terminal, now_s) {
            Ok(read) => {
                let now_step = now_s / CODE_STEP_S;
                assert!(read.step <= now_step && now_step - read.step <= CODE_STALE_LOOKBACK_STEPS);
                let made = issuer.code_for(read.wallet, read.step * CODE_STEP_S);
                assert_eq!(made.digits, code, "identified a code the issuer never made");
            }
            Err(error) if error.code() == "CODE_UNKNOWN" => {
                assert_eq!(code.len(), PAYMENT_CODE_DIGITS);
                let times = failures.entry(terminal).or_default();
                times.push(now_s);
                let in_window = times
                    .iter()
                    .filter(|&&t| t + GUESS_WINDOW_S > now_s)
                    .count();
                assert!(
                    in_window <= GUESS_FAILURES_PER_WINDOW_MAX,
                    "terminal {terminal} failed {in_window} codes within {GUESS_WINDOW_S} s"
                );
            }
            Err(_) => {}
        }
    }
});

fn digits(issuer: &PaymentCodeIssuer, digits: Digits, now_s: u64) -> String {
    match digits {
        Digits::Typed(text) => text,
        Digits::Edited {
            wallet,
            steps_back,
            position,
            digit,
        } => {
            let at_s = now_s.saturating_sub(u64::from(steps_back % 16) * CODE_STEP_S);
            let mut code = issuer.code_for(WalletId(wallet), at_s).digits.into_bytes();
            if let Some(position) = position.checked_sub(1) {
                code[usize::from(position) % PAYMENT_CODE_DIGITS] = b'0' + digit % 10;
            }
            String::from_utf8(code).expect("ASCII digits")
        }
    }
}

/// A real code read at once, read late, guessed at by one terminal until it is refused, and
/// from another operator.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let secret = OperatorCodeSecret::from_bytes([7; 32]);
    let issuer = PaymentCodeIssuer::new(OPERATOR, &secret).expect("operator routable");
    let typed = |later_s: u16| Scan {
        terminal: 0,
        later_s,
        digits: Digits::Typed(issuer.code_for(WalletId(42), NOON_S).digits),
    };
    let guess = |digit: u8| Scan {
        terminal: 1,
        later_s: 1,
        digits: Digits::Edited {
            wallet: 42,
            steps_back: 0,
            position: 18,
            digit,
        },
    };
    let foreign = PaymentCodeIssuer::new(OperatorId(4), &secret).expect("operator routable");
    let scripts: Vec<(&'static str, Vec<Scan>)> = vec![
        ("code", vec![typed(0)]),
        ("code-late", vec![typed(400)]),
        ("guesses", (0..8).map(guess).collect()),
        (
            "other-operator",
            vec![Scan {
                terminal: 2,
                later_s: 0,
                digits: Digits::Typed(foreign.code_for(WalletId(42), NOON_S).digits),
            }],
        ),
    ];
    scripts
        .into_iter()
        .map(|(name, scans)| {
            let mut writer = ScriptWriter::new();
            for scan in &scans {
                scan.write(&mut writer);
            }
            (name, writer.take())
        })
        .collect()
}
