//! The system under simulation: a seeded platform on a scratch data directory, its clock, two
//! operators, banked holders with SM2 keys and two shops; and the hands that submit, crash,
//! restart and snapshot it.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::amount::Amount;
use crate::certs::device::DeviceCaps;
use crate::certs::{KeyPair, PublicKey};
use crate::channels::acquiring::TerminalKind;
use crate::channels::emvco::Mcc;
use crate::command::{Command, CommandResult, Origin, Outcome, Submission};
use crate::ids::{AccountId, DeviceId, IdempotencyKey, MerchantId, OperatorId, WalletId};
use crate::node::{ManualClock, NodeError, Recovery, SubmissionResult};
use crate::platform::{seeded_key, Platform};
use crate::signing::SIGNATURE_WINDOW_MS_CLIENT;
use crate::state_machine::StateMachine;
use crate::storage::snapshot;
use crate::wallet::WalletClass;

/// Holders per operator, shop owners apart.
const HOLDERS_PER_OPERATOR: usize = 5;
const OPERATORS: [&str; 2] = ["Jiangnan Commercial Bank", "Lakeside Digital Bank"];

/// A holder: a wallet, the operator that runs it, the holder's key and bound bank account.
pub(super) struct Holder {
    pub wallet: WalletId,
    pub operator: OperatorId,
    pub key: KeyPair,
    pub bank: AccountId,
}

pub(super) struct Shop {
    pub id: MerchantId,
    /// The holder whose wallet the shop settles into.
    pub owner: usize,
}

/// A data directory of its own, removed when the simulation of its seed ends.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(seed: u64) -> std::io::Result<ScratchDir> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let unique = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("ecny-sim-{}-{seed}-{unique}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path)?;
        Ok(ScratchDir(path))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub(super) struct World {
    platform: Option<Platform>,
    dir: ScratchDir,
    seed_text: String,
    clock: Arc<AtomicU64>,
    operator_keys: Vec<KeyPair>,
    pub operators: Vec<OperatorId>,
    pub holders: Vec<Holder>,
    pub shops: Vec<Shop>,
    next_key: u128,
}

impl World {
    /// The platform on its own clock from `start_ms`, two operators with e-CNY issued, holders
    /// at both with money in their banks and wallets, and a shop at each.
    pub(super) fn found(seed: u64, start_ms: u64) -> Result<World, String> {
        let dir = ScratchDir::new(seed).map_err(|e| format!("scratch directory: {e}"))?;
        let seed_text = format!("sim-{seed}");
        let clock = Arc::new(AtomicU64::new(start_ms));
        let (platform, _) =
            Platform::open_seeded(&dir.0, &seed_text, Box::new(ManualClock(clock.clone())))
                .map_err(|e| format!("open: {e}"))?;
        let mut world = World {
            platform: Some(platform),
            dir,
            seed_text,
            clock,
            operator_keys: Vec::new(),
            operators: Vec::new(),
            holders: Vec::new(),
            shops: Vec::new(),
            next_key: 0,
        };
        for name in OPERATORS {
            let id = world
                .platform()
                .create_operator(name)
                .map_err(|e| format!("create operator: {e}"))?;
            world.operators.push(id);
            world
                .operator_keys
                .push(seeded_key(&world.seed_text, &id.to_string()));
            let budget = Amount::from_yuan(10_000_000);
            let issue = vec![
                Command::FundReserves {
                    operator: id,
                    amount: budget,
                },
                Command::Issue {
                    operator: id,
                    amount: budget,
                },
            ];
            for result in world
                .platform()
                .as_central_bank(issue)
                .map_err(|e| format!("issue: {e}"))?
            {
                result.map_err(|e| format!("issue refused: {}", e.code()))?;
            }
        }
        for op in world.operators.clone() {
            for _ in 0..HOLDERS_PER_OPERATOR {
                world.open_banked(op, WalletClass::Three)?;
            }
            let owner = world.open_banked(op, WalletClass::Two)?;
            world.open_shop(op, owner)?;
        }
        Ok(world)
    }

    fn platform(&mut self) -> &mut Platform {
        self.platform
            .as_mut()
            .expect("the platform is up between crashes")
    }

    pub(super) fn state(&self) -> &StateMachine {
        self.platform
            .as_ref()
            .expect("the platform is up between crashes")
            .state()
    }

    pub(super) fn now_ms(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    pub(super) fn advance_ms(&self, ms: u64) {
        self.clock.fetch_add(ms, Ordering::SeqCst);
    }

    pub(super) fn key(&mut self) -> IdempotencyKey {
        self.next_key += 1;
        IdempotencyKey(self.next_key)
    }

    fn run(&mut self, op: OperatorId, command: Command) -> Result<Outcome, String> {
        let what = format!("{command:?}");
        match self.platform().one(op, command) {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(error)) => Err(format!("set-up refused {}: {what}", error.code())),
            Err(error) => Err(format!("set-up failed: {error}")),
        }
    }

    /// A wallet of `class` with a bound bank account holding 50,000 yuan, 3,000 of it
    /// exchanged into e-CNY. The one place the set-up's holder commands are written.
    fn open_banked(&mut self, op: OperatorId, class: WalletClass) -> Result<usize, String> {
        let index = self.holders.len();
        let key = KeyPair::from_seed(format!("{}/holder/{index}", self.seed_text).as_bytes());
        let phone = 13_800_000_000 + index as u64;
        let Outcome::Wallet(wallet) = self.run(
            op,
            Command::OpenWallet {
                operator: op,
                phone: phone.into(),
                public_key: key.public_key(),
            },
        )?
        else {
            return Err("open wallet answered no wallet".into());
        };
        let Outcome::Account(bank) = self.run(op, Command::OpenDepositAccount { operator: op })?
        else {
            return Err("open account answered no account".into());
        };
        self.run(
            op,
            Command::CashDeposit {
                account: bank,
                amount: Amount::from_yuan(50_000),
            },
        )?;
        self.holders.push(Holder {
            wallet,
            operator: op,
            key,
            bank,
        });
        // The holder signs the binding: money goes back only to an account it chose.
        let bind = Command::BindBankAccount {
            wallet,
            account: bank,
            auth: None,
        };
        let bind = self.signed(index, bind);
        self.run(op, bind)?;
        let id_number =
            crate::wallet::id_number_from(&format!("320500{:011}", phone % 100_000_000_000));
        self.run(
            op,
            Command::UpgradeWallet {
                wallet,
                to: class,
                name: Some(format!("Holder {index}").into()),
                id_number: Some(id_number.into()),
                in_person: class == WalletClass::One,
            },
        )?;
        let key = self.key();
        let exchange = Command::Exchange {
            wallet,
            amount: Amount::from_yuan(3_000),
            key,
            auth: None,
        };
        let exchange = self.signed(index, exchange);
        self.run(op, exchange)?;
        Ok(index)
    }

    fn open_shop(&mut self, op: OperatorId, owner: usize) -> Result<(), String> {
        let Outcome::Merchant(id) = self.run(
            op,
            Command::OnboardMerchant {
                operator: op,
                wallet: self.holders[owner].wallet,
                name: format!("Shop {}", self.shops.len() + 1),
                mcc: Mcc::new(5814).expect("a valid category"),
                region: 320508,
            },
        )?
        else {
            return Err("onboarding answered no merchant".into());
        };
        self.run(
            op,
            Command::AddTerminal {
                merchant: id,
                kind: TerminalKind::Pos,
            },
        )?;
        self.shops.push(Shop { id, owner });
        Ok(())
    }

    pub(super) fn seed_text(&self) -> &str {
        &self.seed_text
    }

    /// Registers a secure element bound to holder `owner`'s wallet. The one place the
    /// simulation writes this command.
    pub(super) fn register_device(
        &mut self,
        owner: usize,
        device: DeviceId,
        public_key: PublicKey,
        caps: DeviceCaps,
    ) -> Result<(), String> {
        let holder = &self.holders[owner];
        let (operator, wallet) = (holder.operator, holder.wallet);
        // A card bound to the wallet draws on its money: the holder signs the binding.
        let register = Command::RegisterDevice {
            operator,
            device,
            public_key,
            wallet: Some(wallet),
            caps,
            auth: None,
        };
        let register = self.signed(owner, register);
        self.run(operator, register).map(|_| ())
    }

    /// The center books a load of `amount` from holder `owner`'s wallet into `device`: the
    /// refusal's code if it refuses. The one place the simulation writes this command.
    pub(super) fn load_device(
        &mut self,
        owner: usize,
        device: DeviceId,
        load_seq: u32,
        amount: Amount,
    ) -> Result<Result<(), &'static str>, String> {
        let operator = self.holders[owner].operator;
        let load = Command::LoadDevice {
            device,
            load_seq,
            amount,
            auth: None,
        };
        let load = self.signed(owner, load);
        Ok(self.one(operator, load)?.map(|_| ()).map_err(|e| e.code()))
    }

    /// `command` signed now by holder `signer`'s key, for the holder's operator.
    pub(super) fn signed(&self, signer: usize, command: Command) -> Command {
        self.signed_with(&self.holders[signer].key, signer, command)
    }

    /// `command` signed now with `key` as if for holder `holder`'s wallet.
    pub(super) fn signed_with(&self, key: &KeyPair, holder: usize, command: Command) -> Command {
        let context = self.state().signing_context(self.holders[holder].operator);
        command.sign(key, &context, self.now_ms() + SIGNATURE_WINDOW_MS_CLIENT)
    }

    /// One group commit of operator batches, each signed by its operator.
    pub(super) fn submit(
        &mut self,
        batches: &[(OperatorId, Vec<Command>)],
    ) -> Result<Vec<SubmissionResult>, NodeError> {
        let submissions = batches
            .iter()
            .map(|(op, commands)| {
                let key = &self.operator_keys[op.0 as usize - 1];
                Submission::new(Origin::Operator(*op), commands, key)
            })
            .collect();
        self.platform().node_mut().submit(submissions)
    }

    /// One command through its operator's desk, for the offline side's sync.
    pub(super) fn one(
        &mut self,
        op: OperatorId,
        command: Command,
    ) -> Result<CommandResult, String> {
        self.platform()
            .one(op, command)
            .map_err(|e| format!("submit: {e}"))
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// The log segment appends go to, and its length now.
    pub(super) fn active_segment(&self) -> Result<(PathBuf, u64), String> {
        let mut segments: Vec<PathBuf> = fs::read_dir(self.dir().join("log"))
            .map_err(|e| format!("log directory: {e}"))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|e| e == "ecnylog"))
            .collect();
        segments.sort();
        let last = segments.pop().ok_or("the log has no segment")?;
        let length = fs::metadata(&last)
            .map_err(|e| format!("{}: {e}", last.display()))?
            .len();
        Ok((last, length))
    }

    /// The process dies: nothing of the platform's memory survives.
    pub(super) fn kill(&mut self) {
        self.platform = None;
    }

    /// Starts again on the same data directory, as after a crash.
    pub(super) fn restart(&mut self) -> Result<Recovery, String> {
        self.platform = None;
        let (platform, recovery) = Platform::open_seeded(
            &self.dir.0,
            &self.seed_text,
            Box::new(ManualClock(self.clock.clone())),
        )
        .map_err(|e| format!("restart failed [{}]: {e}", e.code()))?;
        self.platform = Some(platform);
        Ok(recovery)
    }

    pub(super) fn snapshot(&mut self) -> Result<(), String> {
        self.platform()
            .node_mut()
            .snapshot()
            .map(|_| ())
            .map_err(|e| format!("snapshot: {e}"))
    }

    /// The newest snapshot file, if any.
    pub(super) fn newest_snapshot(&self) -> Result<Option<PathBuf>, String> {
        let found = snapshot::newest_first(&self.dir().join("snapshots"))
            .map_err(|e| format!("snapshots: {e}"))?;
        Ok(found.into_iter().next().map(|s| s.path))
    }
}
