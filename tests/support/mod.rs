//! A small world for scenario tests: a platform on a temporary directory with two funded
//! operators and a helper to open wallets whose holders hold real SM2 keys.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use ecny::amount::Amount;
use ecny::audit::audit;
use ecny::certs::KeyPair;
use ecny::command::{Command, CommandResult, Outcome};
use ecny::ids::{AccountId, IdempotencyKey, OperatorId, WalletId};
use ecny::node::ManualClock;
use ecny::platform::Platform;
use ecny::signing::{SigningContext, SIGNATURE_WINDOW_MS_CLIENT};
use ecny::wallet::WalletClass;

/// 2026-11-23 12:00 Beijing time.
pub const START_MS: u64 = 1_795_406_400_000;

pub struct Holder {
    pub wallet: WalletId,
    pub operator: OperatorId,
    pub key: KeyPair,
    pub phone: u64,
    pub bank: Option<AccountId>,
}

pub struct World {
    pub dir: tempfile::TempDir,
    pub platform: Platform,
    pub clock: Arc<AtomicU64>,
    pub operators: [OperatorId; 2],
    next_key: u128,
    next_phone: u64,
    /// The key of each wallet's holder, for steps a test signs as that holder.
    holders: HashMap<WalletId, KeyPair>,
}

/// An amount as a test writes it for its reader: thousands separated ("10,000,000"), maybe below
/// zero. The platform itself takes only digits and a point; the separators are dropped here.
pub fn yuan(text: &str) -> Amount {
    Amount::parse_signed(&text.replace(',', "")).unwrap()
}

/// A resident ID number of its own for the holder of `phone`, check character included: each
/// test holder is another person.
pub fn id_number_of(phone: u64) -> String {
    ecny::wallet::id_number_from(&format!("110101{:011}", phone % 100_000_000_000))
}

impl World {
    /// Two operators, each with ¥10,000,000 of reserves and ¥5,000,000 of e-CNY issued.
    pub fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(AtomicU64::new(START_MS));
        let (mut platform, _) =
            Platform::open_seeded(dir.path(), "test", Box::new(ManualClock(clock.clone())))
                .unwrap();
        let operators = [
            platform
                .create_operator("Jiangnan Commercial Bank")
                .unwrap(),
            platform.create_operator("Lakeside Digital Bank").unwrap(),
        ];
        for op in operators {
            let commands = vec![
                Command::FundReserves {
                    operator: op,
                    amount: yuan("10000000"),
                },
                Command::Issue {
                    operator: op,
                    amount: yuan("5000000"),
                },
            ];
            for result in platform.as_central_bank(commands).unwrap() {
                result.unwrap();
            }
        }
        World {
            dir,
            platform,
            clock,
            operators,
            next_key: 0,
            next_phone: 13_900_000_000,
            holders: HashMap::new(),
        }
    }

    pub fn reopen(self) -> World {
        let World {
            dir,
            platform,
            clock,
            operators,
            next_key,
            next_phone,
            holders,
        } = self;
        drop(platform);
        let (platform, _) =
            Platform::open_seeded(dir.path(), "test", Box::new(ManualClock(clock.clone())))
                .unwrap();
        World {
            dir,
            platform,
            clock,
            operators,
            next_key,
            next_phone,
            holders,
        }
    }

    pub fn advance_ms(&self, ms: u64) {
        self.clock
            .fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }

    /// What `holder` signs for from now: this deployment and its operator, and the end of the
    /// clients' window by the platform's clock.
    pub fn signing(&mut self, holder: &Holder) -> (SigningContext, u64) {
        let context = self.platform.state().signing_context(holder.operator);
        let now = self.platform.node_mut().now_ms();
        (context, now + SIGNATURE_WINDOW_MS_CLIENT)
    }

    pub fn key(&mut self) -> IdempotencyKey {
        self.next_key += 1;
        IdempotencyKey(self.next_key)
    }

    pub fn run(&mut self, op: OperatorId, command: Command) -> CommandResult {
        self.platform.one(op, command).unwrap()
    }

    /// Runs `command` as operator `op`, signed by the holder the center needs a signature from
    /// (of a wallet this world opened); unsigned if none.
    pub fn run_signed(&mut self, op: OperatorId, command: Command) -> CommandResult {
        let holders = &self.holders;
        let command = self
            .platform
            .signed_by_its_holder(command, |wallet| holders.get(&wallet));
        self.run(op, command)
    }

    /// A class-4 wallet at `op`.
    pub fn open(&mut self, op: OperatorId) -> Holder {
        self.next_phone += 1;
        let key = KeyPair::from_seed(format!("holder/{}", self.next_phone).as_bytes());
        let command = Command::OpenWallet {
            operator: op,
            phone: self.next_phone.into(),
            public_key: key.public_key(),
        };
        let Ok(Outcome::Wallet(wallet)) = self.run(op, command) else {
            panic!("open wallet refused")
        };
        self.holders.insert(wallet, key.clone());
        Holder {
            wallet,
            operator: op,
            key,
            phone: self.next_phone,
            bank: None,
        }
    }

    /// A wallet with a bound bank account holding `deposits`, upgraded to `class` (3, 2 or 1 need
    /// KYC; 4 stays anonymous but still gets a bank account for exchange).
    pub fn open_banked(&mut self, op: OperatorId, deposits: &str, class: WalletClass) -> Holder {
        let mut holder = self.open(op);
        let Ok(Outcome::Account(account)) =
            self.run(op, Command::OpenDepositAccount { operator: op })
        else {
            panic!()
        };
        self.run(
            op,
            Command::CashDeposit {
                account,
                amount: yuan(deposits),
            },
        )
        .unwrap();
        self.run_signed(
            op,
            Command::BindBankAccount {
                wallet: holder.wallet,
                account,
                auth: None,
            },
        )
        .unwrap();
        if class < WalletClass::Four {
            let upgrade = Command::UpgradeWallet {
                wallet: holder.wallet,
                to: class,
                name: Some("Zhang San".into()),
                id_number: Some(id_number_of(holder.phone).into()),
                in_person: class == WalletClass::One,
            };
            self.run(op, upgrade).unwrap();
        }
        holder.bank = Some(account);
        holder
    }

    pub fn exchange(&mut self, holder: &Holder, amount: &str) -> CommandResult {
        let key = self.key();
        let command = Command::Exchange {
            wallet: holder.wallet,
            amount: yuan(amount),
            key,
            auth: None,
        };
        let command = self
            .platform
            .sign_as_holder(command, &holder.key, holder.operator);
        self.run(holder.operator, command)
    }

    pub fn pay(&mut self, from: &Holder, to: WalletId, amount: &str) -> CommandResult {
        let key = self.key();
        self.pay_with_key(from, to, amount, key)
    }

    pub fn pay_with_key(
        &mut self,
        from: &Holder,
        to: WalletId,
        amount: &str,
        key: IdempotencyKey,
    ) -> CommandResult {
        let command = Command::Pay {
            payer: from.wallet,
            payee: to,
            amount: yuan(amount),
            key,
            auth: None,
        };
        let command = self
            .platform
            .sign_as_holder(command, &from.key, from.operator);
        self.run(from.operator, command)
    }

    pub fn balance(&self, wallet: WalletId) -> Amount {
        self.platform.state().balance(wallet).unwrap()
    }

    pub fn hash(&self) -> [u8; 32] {
        self.platform.state().state_hash()
    }

    pub fn assert_audit(&self) {
        let report = audit(self.platform.state());
        assert!(report.is_clean(), "audit failed:\n{report}");
    }
}
