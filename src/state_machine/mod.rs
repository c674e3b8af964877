//! The deterministic state machine of the registration center and its operators: log entries in,
//! state and results out. The same log always gives the same state, which makes crash recovery a
//! replay. Time arrives inside each entry; nothing here reads a clock, a disk or a socket.

mod acquiring;
mod campaigns;
mod contracts;
mod credentials;
mod devices;
mod identity;
mod payments;
mod snapshot;
mod validation;
mod wallets;

pub use validation::{Validated, Validator};

use crate::amount::Amount;
use crate::certs::device::DeviceCaps;
use crate::certs::{sm3, verify_all_parallel, PublicKey, SignedItem};
use crate::channels::acquiring::{
    Acquiring, Merchant, MerchantPayment, MerchantRefund, Order, OrderStatus, PaymentChannel,
    TerminalKind,
};
use crate::channels::emvco::Mcc;
use crate::channels::payment_code::{self, CodeMarks};
use crate::codec::{DecodeError, Reader, Writer};
use crate::command::{
    check_window, se_signatures, Command, CommandDigest, CommandResult, Entry, HolderAuth, Origin,
    Outcome, Submission,
};
use crate::error::CommandError;
use crate::idempotency::{Claim, FirstResult, IdempotencyIndex};
use crate::ids::{
    AccountId, CampaignId, ContractId, DeviceId, EventId, IdempotencyKey, MerchantId, OperatorId,
    SubWalletId, WalletId,
};
use crate::issuance::{self, IssuanceTotals};
use crate::ledger::{self, AccountKind, Ledger, Leg, TransferKind, WalletChange};
use crate::offline::messages::{AttestedSync, SignedUnload};
use crate::offline::settlement::{
    DeviceRegistry, OperatorAccounts, RegisteredDevice, SettlementBooks,
};
use crate::operator::{Identity, IdentityLookup, Operator};
use crate::programs::contracts::Contracts;
use crate::programs::red_packets::RedPackets;
use crate::programs::LotteryError;
use crate::sealed::{
    decode_sealed_text, encode_sealed_text, PersonalText, Phone, SealTag, SealedPhone, SealedText,
};
use crate::signing::{DeploymentId, SigningContext};
use crate::wallet::sub_wallet::{SubWalletLimits, SubWallets};
use crate::wallet::{
    ClassLimits, Wallet, WalletClass, WalletStatus, CLASS_TWO_WALLETS_PER_IDENTITY_MAX,
};

/// Operators are few; the id space is u16 and dense.
pub const OPERATORS_MAX: usize = 1_000;
const SNAPSHOT_MAGIC: &[u8; 8] = b"ECNYSTA5";
/// Magic, last timestamp and entries applied: where in the log a snapshot stands.
const SNAPSHOT_POSITION_END: usize = 24;

#[derive(Clone, Debug, PartialEq)]
pub struct StateMachine {
    ledger: Ledger,
    central_bank_key: Option<PublicKey>,
    /// Derived from the central bank's key at genesis; what holders' signatures must name.
    deployment: DeploymentId,
    reserve_funding: AccountId,
    issuance_account: AccountId,
    operators: Vec<Operator>,
    issuance: Vec<IssuanceTotals>,
    wallets: Vec<Wallet>,
    /// Held for the operator tier: the key each wallet's money-moving commands must carry.
    wallet_keys: Vec<PublicKey>,
    idempotency: IdempotencyIndex,
    /// Each wallet's last payment-code step charged.
    code_marks: CodeMarks,
    /// The wallet of each wallet account, by account index (0: not a wallet's); derived from
    /// `wallets`, so never snapshotted.
    wallet_of_account: Vec<u32>,
    devices: DeviceRegistry,
    acquiring: Acquiring,
    sub_wallets: SubWallets,
    contracts: Contracts,
    red_packets: RedPackets,
    /// Every de-anonymization: who looked, at which wallet, why, when; never the identity.
    identity_lookups: Vec<IdentityLookup>,
    /// Staff records and credential generations: revocations survive a restart.
    credentials: crate::parties::CredentialBook,
    last_timestamp_ms: u64,
    entries_applied: u64,
}

/// See [`StateMachine::books_mut_for_test`].
#[cfg(test)]
pub(crate) struct BooksForTest<'a> {
    pub issuance: &'a mut [IssuanceTotals],
    pub wallets: &'a mut [Wallet],
    pub contracts: &'a mut Contracts,
    pub red_packets: &'a mut RedPackets,
}

impl Default for StateMachine {
    fn default() -> Self {
        StateMachine {
            ledger: Ledger::default(),
            central_bank_key: None,
            deployment: DeploymentId::default(),
            reserve_funding: AccountId(0),
            issuance_account: AccountId(1),
            operators: Vec::new(),
            issuance: Vec::new(),
            wallets: Vec::new(),
            wallet_keys: Vec::new(),
            idempotency: IdempotencyIndex::default(),
            code_marks: CodeMarks::default(),
            wallet_of_account: Vec::new(),
            devices: DeviceRegistry::default(),
            acquiring: Acquiring::default(),
            sub_wallets: SubWallets::default(),
            contracts: Contracts::default(),
            red_packets: RedPackets::default(),
            identity_lookups: Vec::new(),
            credentials: Default::default(),
            last_timestamp_ms: 0,
            entries_applied: 0,
        }
    }
}

pub(crate) fn check_amount(amount: Amount) -> Result<(), CommandError> {
    if !amount.is_positive() {
        return Err(CommandError::AmountNotPositive(amount));
    }
    if amount > Amount::MAX {
        return Err(CommandError::AmountTooLarge(amount));
    }
    Ok(())
}

impl StateMachine {
    // ----- reads -----

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    #[cfg(test)]
    pub(crate) fn ledger_mut_for_test(&mut self) -> &mut Ledger {
        &mut self.ledger
    }

    /// The books a test damages, one way at a time, to show the audit names each kind of damage.
    #[cfg(test)]
    pub(crate) fn books_mut_for_test(&mut self) -> BooksForTest<'_> {
        BooksForTest {
            issuance: &mut self.issuance,
            wallets: &mut self.wallets,
            contracts: &mut self.contracts,
            red_packets: &mut self.red_packets,
        }
    }

    pub fn operators(&self) -> &[Operator] {
        &self.operators
    }

    pub fn operator(&self, id: OperatorId) -> Result<&Operator, CommandError> {
        id.slot()
            .and_then(|slot| self.operators.get(slot))
            .ok_or(CommandError::UnknownOperator(id))
    }

    /// The table slot of an operator: known, and (from an operator) the caller's own.
    fn operator_slot(&self, origin: Origin, operator: OperatorId) -> Result<usize, CommandError> {
        let id = self.require_operator(origin, operator)?.id;
        Ok(id.slot().expect("a known operator's id is at least 1"))
    }

    pub fn issuance_totals(&self, id: OperatorId) -> Result<IssuanceTotals, CommandError> {
        self.operator(id)?;
        Ok(self.issuance[id.slot().expect("a known operator")])
    }

    pub fn issuance_account(&self) -> AccountId {
        self.issuance_account
    }

    pub fn wallets(&self) -> &[Wallet] {
        &self.wallets
    }

    pub fn wallet(&self, id: WalletId) -> Result<&Wallet, CommandError> {
        id.slot()
            .and_then(|slot| self.wallets.get(slot))
            .ok_or(CommandError::UnknownWallet(id))
    }

    /// A wallet the command has already looked up (`wallet`, `own_wallet`), to change it.
    fn wallet_mut(&mut self, id: WalletId) -> &mut Wallet {
        let slot = id
            .slot()
            .expect("a wallet looked up before is numbered from 1");
        &mut self.wallets[slot]
    }

    /// A wallet whose id the state itself holds (a contract's payer, a campaign's sponsor).
    fn known_wallet(&self, id: WalletId) -> &Wallet {
        let slot = id
            .slot()
            .expect("a wallet the state holds is numbered from 1");
        &self.wallets[slot]
    }

    pub fn wallet_id_at(index: usize) -> WalletId {
        WalletId(index as u32 + 1)
    }

    pub fn wallet_key(&self, id: WalletId) -> Result<&PublicKey, CommandError> {
        self.wallet(id)?;
        Ok(&self.wallet_keys[id.slot().expect("a known wallet")])
    }

    pub fn balance(&self, id: WalletId) -> Result<Amount, CommandError> {
        Ok(self.ledger.account(self.wallet(id)?.account)?.balance)
    }

    pub fn central_bank_key(&self) -> Option<&PublicKey> {
        self.central_bank_key.as_ref()
    }

    /// This deployment's id; meaningful once genesis has run.
    pub fn deployment(&self) -> DeploymentId {
        self.deployment
    }

    /// What a holder of one of `operator`'s wallets signs for.
    pub fn signing_context(&self, operator: OperatorId) -> SigningContext {
        SigningContext {
            deployment: self.deployment,
            operator,
        }
    }

    /// The wallet whose account this is, if any.
    pub fn wallet_of_account(&self, account: AccountId) -> Option<WalletId> {
        self.wallet_of_account
            .get(account.index())
            .filter(|wallet| **wallet != 0)
            .map(|wallet| WalletId(*wallet))
    }

    fn index_wallet_account(&mut self, wallet: WalletId, account: AccountId) {
        if self.wallet_of_account.len() <= account.index() {
            self.wallet_of_account.resize(account.index() + 1, 0);
        }
        self.wallet_of_account[account.index()] = wallet.0;
    }

    /// Finds a wallet at `operator` by its phone's seal tag (`IdentityKey::phone_tag`, which only
    /// the operator can compute).
    pub fn wallet_by_phone_tag(
        &self,
        operator: OperatorId,
        tag: &SealTag,
    ) -> Result<WalletId, CommandError> {
        self.operator(operator)?
            .wallet_by_phone(tag)
            .ok_or_else(|| CommandError::UnknownPhone("this phone number".into()))
    }

    /// The wallet whose holder must sign `command` for the center to book it, as the state knows
    /// it now (a sub-wallet's wallet, a contract's party); `None` if no holder signs it.
    pub fn holder_signer(&self, command: &Command) -> Result<Option<WalletId>, CommandError> {
        Ok(match command {
            Command::SetSubWallet { sub_wallet, .. } => {
                Some(self.sub_wallets.get(*sub_wallet)?.wallet)
            }
            Command::ConfirmContract { contract, .. } => Some(self.contracts.get(*contract)?.payer),
            Command::LoadDevice { device, .. } => self.devices.device(*device)?.wallet,
            Command::FundCampaign { campaign, .. } => {
                Some(self.campaign(*campaign)?.terms().sponsor.wallet)
            }
            Command::CancelContract {
                contract, by_payee, ..
            } => {
                let contract = self.contracts.get(*contract)?;
                Some(if *by_payee {
                    contract.payee
                } else {
                    contract.payer
                })
            }
            other => other.named_signer(),
        })
    }

    pub fn last_timestamp_ms(&self) -> u64 {
        self.last_timestamp_ms
    }

    /// The earliest time at which time alone changes the state — a hold or an escrow timing out,
    /// a recurring payment falling due, a red-packet campaign ending — or `None` when nothing
    /// waits on time. Any entry stamped at or after it does that work before its commands, so a
    /// server with no traffic submits an empty one then (`crate::scheduler`). Registration
    /// windows, packets' validity and orders' expiry are read at the time of the command that
    /// meets them, so they change nothing on their own.
    pub fn next_due_ms(&self) -> Option<u64> {
        [
            self.ledger.next_pending_expiry_ms(),
            self.contracts.next_due_ms(),
            self.red_packets.next_expiry_ms(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn entries_applied(&self) -> u64 {
        self.entries_applied
    }

    // ----- validation before the log -----

    /// The keys that validation needs, to run on other threads than the state machine's.
    pub fn validator(&self) -> Validator {
        Validator {
            central_bank: self.central_bank_key,
            operators: self.operators.iter().map(|op| op.public_key).collect(),
        }
    }

    pub fn validate(&self, submission: Submission) -> Result<Validated, CommandError> {
        self.validator().validate(submission)
    }

    // ----- apply -----

    /// Applies one log entry, appending one result per command to `results`.
    pub fn apply_entry(
        &mut self,
        payload: &[u8],
        results: &mut Vec<CommandResult>,
    ) -> Result<(), DecodeError> {
        self.apply_validated_entry(payload, &[], results)
    }

    /// Applies a log entry whose commands' idempotency digests validation already computed (off
    /// this thread: hashing is most of a keyed command's cost); `digests` is empty on replay.
    pub fn apply_validated_entry(
        &mut self,
        payload: &[u8],
        digests: &[Option<CommandDigest>],
        results: &mut Vec<CommandResult>,
    ) -> Result<(), DecodeError> {
        let entry = Entry::decode(payload)?;
        // Time never runs backwards inside the state machine, whatever the clocks did.
        let now = entry.timestamp_ms.max(self.last_timestamp_ms);
        self.last_timestamp_ms = now;
        self.entries_applied += 1;
        self.ledger.expire_pending(now);
        self.run_due_contracts(now);
        if self.red_packets.expiry_due(now) {
            self.expire_campaigns(now);
        }
        for (index, command) in entry.commands()?.enumerate() {
            let command = command?;
            let digest = digests.get(index).copied().flatten();
            results.push(self.apply(entry.origin, command, digest, now));
        }
        Ok(())
    }

    fn apply(
        &mut self,
        origin: Origin,
        command: Command,
        digest: Option<CommandDigest>,
        now: u64,
    ) -> CommandResult {
        use Command::*;
        // A keyed command is remembered by its key and the digest of what it does.
        let keyed = command.idempotency_key().map(|key| {
            let digest = digest.unwrap_or_else(|| command.digest());
            debug_assert_eq!(
                digest,
                command.digest(),
                "validation digested another command"
            );
            Keyed { key, digest }
        });
        let by = || keyed.expect("a keyed command has its key");
        // A retry of a command already done answers its first result even after its signature's
        // window has closed (a crash before the answer, a slow restart): the client then learns
        // that its money moved, not a refusal.
        if let (Some(by), Some(auth)) = (keyed, command.auth()) {
            if auth.not_after_ms < now {
                if let Some(first) = self.first_answer_of_done(&command, auth, by) {
                    return Ok(first);
                }
            }
        }
        if let Origin::Operator(operator) = origin {
            let suspended = self.operator(operator).is_ok_and(|op| op.suspended);
            if suspended && !command.allowed_while_suspended() {
                return Err(CommandError::OperatorSuspended(operator));
            }
        }
        match command {
            Pay {
                payer,
                payee,
                amount,
                auth,
                ..
            } => self.pay(origin, payer, payee, amount, by(), auth, now),
            Genesis { central_bank_key } => self.genesis(origin, central_bank_key),
            CreateOperator { name, public_key } => self.create_operator(origin, name, public_key),
            FundReserves { operator, amount } => self.fund_reserves(origin, operator, amount, now),
            Issue { operator, amount } => self.issue(origin, operator, amount, now),
            Redeem { operator, amount } => self.redeem(origin, operator, amount, now),
            SetClassLimits {
                operator,
                class,
                limits,
            } => self.set_class_limits(origin, operator, class, limits),
            OpenDepositAccount { operator } => self.open_deposit_account(origin, operator),
            CashDeposit { account, amount } => self.cash_deposit(origin, account, amount, now),
            OpenWallet {
                operator,
                phone,
                public_key,
            } => self.open_wallet(origin, operator, phone, public_key, now),
            UpgradeWallet {
                wallet,
                to,
                name,
                id_number,
                in_person,
            } => {
                let sealed = |text: Option<PersonalText>| match text {
                    None => Ok(None),
                    Some(PersonalText::Sealed(sealed)) => Ok(Some(sealed)),
                    Some(PersonalText::Clear(_)) => Err(CommandError::IdentityNotSealed),
                };
                match (sealed(name), sealed(id_number)) {
                    (Ok(name), Ok(id_number)) => {
                        let identity = Identity {
                            name,
                            id_number,
                            verified_in_person: in_person,
                        };
                        self.upgrade_wallet(origin, wallet, to, identity, now)
                    }
                    (Err(error), _) | (_, Err(error)) => Err(error),
                }
            }
            BindBankAccount {
                wallet,
                account,
                auth,
            } => self.bind_bank_account(origin, wallet, account, &auth, now),
            SetWalletStatus { wallet, status } => {
                self.set_wallet_status(origin, wallet, status, now)
            }
            CloseWallet { wallet } => self.close_wallet(origin, wallet, now),
            Exchange {
                wallet,
                amount,
                auth,
                ..
            } => self.exchange(origin, wallet, amount, by(), auth, now),
            DepositBack {
                wallet,
                amount,
                auth,
                ..
            } => self.deposit_back(origin, wallet, amount, by(), auth, now),
            Hold {
                payer,
                payee,
                amount,
                timeout_ms,
                auth,
                ..
            } => self.hold(origin, payer, payee, amount, timeout_ms, by(), auth, now),
            ResolveHold { hold, post } => self.resolve_hold(origin, hold, post, now),
            RegisterDevice {
                operator,
                device,
                public_key,
                wallet,
                caps,
                auth,
            } => self.register_device(
                origin,
                operator,
                device,
                (public_key, wallet, caps),
                &auth,
                now,
            ),
            LoadDevice {
                device,
                load_seq,
                amount,
                auth,
            } => self.load_device(origin, device, (load_seq, amount), &auth, now),
            BeginSync { device } => self.begin_sync(origin, device, now),
            SyncOffline { sync, device_key } => self.sync_offline(origin, &sync, &device_key, now),
            UnloadDevice { unload, device_key } => {
                self.unload_device(origin, &unload, &device_key, now)
            }
            OnboardMerchant {
                operator,
                wallet,
                name,
                mcc,
                region,
            } => self.onboard_merchant(origin, operator, wallet, name, (mcc, region)),
            AddTerminal { merchant, kind } => self.add_terminal(origin, merchant, kind),
            CreateOrder {
                merchant,
                reference,
                amount,
                expires_at_ms,
                terminal,
                cash_on_delivery,
            } => {
                let order = Order {
                    merchant,
                    reference,
                    amount,
                    expires_at_ms,
                    terminal,
                    cash_on_delivery,
                    status: OrderStatus::Open,
                };
                self.create_order(origin, order, now)
            }
            PayMerchant {
                payer,
                merchant,
                amount,
                channel,
                terminal,
                order,
                auth,
                ..
            } => {
                let at = MerchantPaymentAt {
                    merchant,
                    channel,
                    terminal,
                    order,
                };
                self.pay_merchant(origin, payer, at, amount, by(), auth, now)
            }
            Refund {
                payment, amount, ..
            } => self.refund(origin, payment, amount, by(), now),
            OpenSubWallet {
                wallet,
                merchant,
                limits,
                auth,
            } => self.open_sub_wallet(origin, wallet, merchant, limits, auth, now),
            SetSubWallet {
                sub_wallet,
                limits,
                open,
                auth,
            } => self.set_sub_wallet(origin, (sub_wallet, limits, open), auth, now),
            ChargeSubWallet {
                sub_wallet,
                merchant,
                amount,
                order,
                ..
            } => self.charge_sub_wallet(origin, sub_wallet, merchant, amount, order, by(), now),
            OpenContract {
                payer,
                payee,
                template,
                purpose,
                auth,
                ..
            } => self.open_contract(origin, payer, payee, template, purpose, by(), auth, now),
            ConfirmContract {
                contract,
                units,
                auth,
                ..
            } => self.confirm_contract(origin, contract, units, by(), auth, now),
            CancelContract {
                contract,
                by_payee,
                auth,
            } => self.cancel_contract(origin, contract, by_payee, auth, now),
            CreateCampaign { terms } => self.create_campaign(origin, terms, now),
            FundCampaign { campaign, auth } => self.fund_campaign(origin, campaign, &auth, now),
            RegisterForCampaign {
                campaign,
                wallet,
                offline_trial,
            } => self.register_for_campaign(origin, campaign, wallet, offline_trial, now),
            DrawCampaign { campaign, seed } => self.draw_campaign(origin, campaign, seed, now),
            Deanonymize { wallet, reason } => self.deanonymize(origin, wallet, reason, now),
            RefundAtCounter { device } => self.refund_at_counter(origin, device, now),
            ChargePaymentCode {
                payer,
                merchant,
                terminal,
                amount,
                code_step,
                ..
            } => {
                let at = MerchantPaymentAt {
                    merchant,
                    channel: PaymentChannel::PaymentCode,
                    terminal,
                    order: None,
                };
                self.charge_payment_code(origin, payer, at, amount, code_step, by(), now)
            }
            SetCodePaymentCap { operator, cap } => self.set_code_payment_cap(origin, operator, cap),
            AddStaff {
                operator,
                role,
                label,
            } => self.add_staff(origin, operator, role, label),
            RevokeCredential { subject } => self.revoke_credential(origin, subject),
            OpenBankAccountWithCash { wallet, cash, .. } => {
                self.open_bank_account_with_cash(origin, wallet, cash, by(), now)
            }
            SetOperatorSuspended {
                operator,
                suspended,
            } => self.set_operator_suspended(origin, operator, suspended),
            BlockDevice { device } => self.block_device(origin, device, now),
        }
    }

    fn set_operator_suspended(
        &mut self,
        origin: Origin,
        operator: OperatorId,
        suspended: bool,
    ) -> CommandResult {
        Self::require_central_bank(origin)?;
        let index = self.operator_slot(Origin::CentralBank, operator)?;
        self.operators[index].suspended = suspended;
        Ok(Outcome::Done)
    }

    /// The first answer of `command` if it is a retry of one already done: the same key and
    /// digest in its signer's scope, signed by the wallet's own key for this context.
    fn first_answer_of_done(
        &self,
        command: &Command,
        auth: &HolderAuth,
        by: Keyed,
    ) -> Option<Outcome> {
        let wallet = self.holder_signer(command).ok().flatten()?;
        let holder = self.wallet(wallet).ok()?;
        if auth.public_key != *self.wallet_key(wallet).ok()?
            || auth.context != self.signing_context(holder.operator)
        {
            return None;
        }
        let done = self.idempotency.first_result(wallet, by.key)?;
        let answer = match command {
            Command::OpenContract { .. } => Outcome::Contract(ContractId(done.first as u32)),
            _ => Outcome::Transfer(EventId(done.first)),
        };
        (done.digest == by.digest).then_some(answer)
    }

    fn require_central_bank(origin: Origin) -> Result<(), CommandError> {
        match origin {
            Origin::CentralBank => Ok(()),
            Origin::Operator(_) => Err(CommandError::CentralBankOnly),
        }
    }

    fn require_operator(
        &self,
        origin: Origin,
        operator: OperatorId,
    ) -> Result<&Operator, CommandError> {
        let found = self.operator(operator)?;
        match origin {
            Origin::Operator(caller) if caller != operator => Err(CommandError::NotYourWallet {
                wallet: WalletId(0),
                owner: operator,
                caller,
            }),
            _ => Ok(found),
        }
    }

    /// The wallet, checked to belong to the calling operator; another operator's wallet is
    /// answered as unknown, so no operator learns where a wallet is held.
    fn own_wallet(&self, origin: Origin, id: WalletId) -> Result<&Wallet, CommandError> {
        let wallet = self.wallet(id)?;
        match origin {
            Origin::Operator(caller) if caller != wallet.operator => {
                Err(CommandError::UnknownWallet(id))
            }
            _ => Ok(wallet),
        }
    }

    fn genesis(&mut self, origin: Origin, key: PublicKey) -> CommandResult {
        Self::require_central_bank(origin)?;
        if self.central_bank_key.is_some() {
            return Err(CommandError::CentralBankOnly);
        }
        self.central_bank_key = Some(key);
        self.deployment = DeploymentId::of_central_bank(&key);
        self.reserve_funding = self
            .ledger
            .open_account(AccountKind::ReserveFunding, OperatorId(0));
        self.issuance_account = self
            .ledger
            .open_account(AccountKind::Issuance, OperatorId(0));
        Ok(Outcome::Done)
    }

    fn create_operator(
        &mut self,
        origin: Origin,
        name: String,
        public_key: PublicKey,
    ) -> CommandResult {
        Self::require_central_bank(origin)?;
        if self.operators.len() >= OPERATORS_MAX {
            return Err(CommandError::OperatorExists(OperatorId(
                OPERATORS_MAX as u16,
            )));
        }
        let id = OperatorId(self.operators.len() as u16 + 1);
        let accounts = [
            AccountKind::OperatorReserve,
            AccountKind::IssuanceBacking,
            AccountKind::OperatorVault,
            AccountKind::BankFunding,
            AccountKind::OfflineFloat,
        ]
        .map(|kind| self.ledger.open_account(kind, id));
        self.operators
            .push(Operator::new(id, name, public_key, accounts));
        self.issuance.push(IssuanceTotals::default());
        Ok(Outcome::Operator(id))
    }

    fn fund_reserves(
        &mut self,
        origin: Origin,
        operator: OperatorId,
        amount: Amount,
        now: u64,
    ) -> CommandResult {
        Self::require_central_bank(origin)?;
        check_amount(amount)?;
        let reserve = self.operator(operator)?.reserve;
        let leg = Leg {
            debit: self.reserve_funding,
            credit: reserve,
            amount,
            kind: TransferKind::ReserveFunding,
        };
        Ok(Outcome::Transfer(self.ledger.transfer(leg, now)?))
    }

    fn issue(
        &mut self,
        origin: Origin,
        operator: OperatorId,
        amount: Amount,
        now: u64,
    ) -> CommandResult {
        Self::require_central_bank(origin)?;
        check_amount(amount)?;
        let index = self.operator_slot(Origin::CentralBank, operator)?;
        let op = &self.operators[index];
        if op.suspended {
            return Err(CommandError::OperatorSuspended(operator));
        }
        let id = issuance::issue(
            &mut self.ledger,
            &mut self.issuance[index],
            self.issuance_account,
            op,
            amount,
            now,
        )?;
        Ok(Outcome::Transfer(id))
    }

    fn redeem(
        &mut self,
        origin: Origin,
        operator: OperatorId,
        amount: Amount,
        now: u64,
    ) -> CommandResult {
        check_amount(amount)?;
        let index = self.operator_slot(origin, operator)?;
        let op = &self.operators[index];
        let id = issuance::redeem(
            &mut self.ledger,
            &mut self.issuance[index],
            self.issuance_account,
            op,
            amount,
            now,
        )?;
        Ok(Outcome::Transfer(id))
    }

    fn set_class_limits(
        &mut self,
        origin: Origin,
        operator: OperatorId,
        class: WalletClass,
        limits: ClassLimits,
    ) -> CommandResult {
        let index = self.operator_slot(origin, operator)?;
        self.operators[index].limits[class as usize - 1] = limits;
        Ok(Outcome::Done)
    }

    fn open_deposit_account(&mut self, origin: Origin, operator: OperatorId) -> CommandResult {
        self.require_operator(origin, operator)?;
        Ok(Outcome::Account(
            self.ledger
                .open_account(AccountKind::CustomerDeposit, operator),
        ))
    }

    fn cash_deposit(
        &mut self,
        origin: Origin,
        account: AccountId,
        amount: Amount,
        now: u64,
    ) -> CommandResult {
        check_amount(amount)?;
        let target = self.ledger.account(account)?;
        if target.kind != AccountKind::CustomerDeposit {
            return Err(CommandError::UnknownAccount(account));
        }
        let bank_funding = self.require_operator(origin, target.operator)?.bank_funding;
        let leg = Leg {
            debit: bank_funding,
            credit: account,
            amount,
            kind: TransferKind::CashDeposit,
        };
        Ok(Outcome::Transfer(self.ledger.transfer(leg, now)?))
    }
}

/// A keyed command's idempotency key and the digest of what it does.
#[derive(Clone, Copy, Debug)]
struct Keyed {
    key: IdempotencyKey,
    digest: CommandDigest,
}

/// Where a payment to a merchant was made: the merchant, how, at which terminal, for which order.
struct MerchantPaymentAt {
    merchant: MerchantId,
    channel: PaymentChannel,
    terminal: u16,
    order: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::KeyPair;
    use crate::command::Submission;

    /// Applies commands from `origin` directly, as replay would.
    pub(crate) fn apply(
        state: &mut StateMachine,
        origin: Origin,
        signer: &KeyPair,
        commands: &[Command],
    ) -> Vec<CommandResult> {
        let submission = state
            .validate(Submission::new(origin, commands, signer))
            .unwrap();
        let mut entry = Vec::new();
        submission.submission().encode_entry(ENTRY_MS, &mut entry);
        let mut results = Vec::new();
        state.apply_entry(&entry, &mut results).unwrap();
        results
    }

    /// The time `apply` logs its entries at.
    const ENTRY_MS: u64 = 1_795_406_400_000;

    /// The holders of `small_state`'s two wallets.
    pub(crate) fn holder_a() -> KeyPair {
        KeyPair::from_seed(b"holder a")
    }

    pub(crate) fn holder_b() -> KeyPair {
        KeyPair::from_seed(b"holder b")
    }

    /// `command` signed by `holder` for operator 1 of `state`, good at `apply`'s entries.
    pub(crate) fn signed_by(state: &StateMachine, holder: &KeyPair, command: Command) -> Command {
        let context = state.signing_context(OperatorId(1));
        command.sign(
            holder,
            &context,
            ENTRY_MS + crate::signing::SIGNATURE_WINDOW_MS_CLIENT,
        )
    }

    pub(crate) fn small_state() -> (StateMachine, WalletId, WalletId) {
        let (bank, op) = (KeyPair::from_seed(b"cb"), KeyPair::from_seed(b"op"));
        let mut state = StateMachine::default();
        let setup = [
            Command::Genesis {
                central_bank_key: bank.public_key(),
            },
            Command::CreateOperator {
                name: "Jiangnan".into(),
                public_key: op.public_key(),
            },
            Command::FundReserves {
                operator: OperatorId(1),
                amount: Amount::from_yuan(1_000),
            },
            Command::Issue {
                operator: OperatorId(1),
                amount: Amount::from_yuan(500),
            },
        ];
        assert!(apply(&mut state, Origin::CentralBank, &bank, &setup)
            .iter()
            .all(Result::is_ok));
        let wallets = [
            Command::OpenWallet {
                operator: OperatorId(1),
                phone: 13_800_000_001.into(),
                public_key: holder_a().public_key(),
            },
            Command::OpenWallet {
                operator: OperatorId(1),
                phone: 13_800_000_002.into(),
                public_key: holder_b().public_key(),
            },
            Command::OpenDepositAccount {
                operator: OperatorId(1),
            },
        ];
        let results = apply(&mut state, Origin::Operator(OperatorId(1)), &op, &wallets);
        let (Ok(Outcome::Wallet(a)), Ok(Outcome::Wallet(b)), Ok(Outcome::Account(bank_account))) =
            (results[0].clone(), results[1].clone(), results[2].clone())
        else {
            panic!("{results:?}")
        };
        let funding = [
            Command::CashDeposit {
                account: bank_account,
                amount: Amount::from_yuan(100),
            },
            signed_by(
                &state,
                &holder_a(),
                Command::BindBankAccount {
                    wallet: a,
                    account: bank_account,
                    auth: None,
                },
            ),
            signed_by(
                &state,
                &holder_a(),
                Command::Exchange {
                    wallet: a,
                    amount: Amount::from_yuan(100),
                    key: IdempotencyKey(1),
                    auth: None,
                },
            ),
        ];
        assert!(
            apply(&mut state, Origin::Operator(OperatorId(1)), &op, &funding)
                .iter()
                .all(Result::is_ok)
        );
        (state, a, b)
    }

    #[test]
    fn a_phone_or_name_in_the_clear_never_applies() {
        let (mut state, a, _) = small_state();
        let before = state.state_hash();
        // Bytes an operator's desk would never write: the commands encoded without sealing.
        let clear = [
            Command::OpenWallet {
                operator: OperatorId(1),
                phone: 13_800_000_009.into(),
                public_key: KeyPair::from_seed(b"h").public_key(),
            },
            Command::UpgradeWallet {
                wallet: a,
                to: WalletClass::Three,
                name: Some("Wang Wu".into()),
                id_number: Some("110101199003074514".into()),
                in_person: false,
            },
        ];
        let mut commands = Writer::new();
        commands.u32(clear.len() as u32);
        for command in &clear {
            command.encode(&mut commands);
        }
        let submission = Submission {
            origin: Origin::Operator(OperatorId(1)),
            commands: commands.bytes,
            signature: crate::certs::Signature([0; 64]),
        };
        let mut entry = Vec::new();
        submission.encode_entry(1_795_406_400_000, &mut entry);
        let mut results = Vec::new();
        state.apply_entry(&entry, &mut results).unwrap();
        for result in results {
            assert_eq!(result, Err(CommandError::IdentityNotSealed));
        }
        assert_eq!(state.state_hash(), before);
    }

    #[test]
    fn the_same_log_gives_the_same_state_and_snapshots_round_trip() {
        let (state, _, _) = small_state();
        let (again, _, _) = small_state();
        assert_eq!(state.state_hash(), again.state_hash());
        let decoded = StateMachine::decode_snapshot(&state.encode_snapshot()).unwrap();
        assert_eq!(decoded, state);
        assert_eq!(decoded.state_hash(), state.state_hash());
    }

    #[test]
    fn a_damaged_snapshot_is_refused() {
        let (state, _, _) = small_state();
        let bytes = state.encode_snapshot();
        assert!(StateMachine::decode_snapshot(&bytes[..bytes.len() - 1]).is_err());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(StateMachine::decode_snapshot(&trailing).is_err());
        assert!(StateMachine::decode_snapshot(b"not a snapshot").is_err());
    }

    #[test]
    fn a_snapshot_claiming_more_wallets_than_it_holds_is_refused() {
        let mut out = Writer::new();
        out.raw(SNAPSHOT_MAGIC).u64(0).u64(0).u8(0).u32(0).u32(0);
        ledger::snapshot::encode(&crate::ledger::Ledger::default(), &mut out);
        out.u64(0).u64(u64::MAX);
        assert!(StateMachine::decode_snapshot(&out.bytes).is_err());
    }

    #[test]
    fn a_snapshot_wallet_on_an_account_the_ledger_lacks_is_refused() {
        let mut out = Writer::new();
        out.raw(SNAPSHOT_MAGIC).u64(0).u64(0).u8(0).u32(0).u32(0);
        ledger::snapshot::encode(&crate::ledger::Ledger::default(), &mut out);
        out.u64(0).u64(1);
        Wallet::new(AccountId(u32::MAX - 1), OperatorId(1)).encode(&mut out);
        out.raw(&[2; 33]);
        assert!(StateMachine::decode_snapshot(&out.bytes).is_err());
    }

    #[test]
    fn the_audit_catches_a_balance_changed_outside_the_ledger() {
        let (mut state, a, _) = small_state();
        assert!(crate::audit::audit(&state).is_clean());
        let account = state.wallet(a).unwrap().account;
        state
            .ledger_mut_for_test()
            .corrupt_balance_for_test(account, Amount::from_yuan(101));
        let report = crate::audit::audit(&state);
        assert!(
            report.names(crate::audit::Check::LedgerBalances),
            "{report}"
        );
        assert!(
            report.names(crate::audit::Check::BalanceMatchesEvents),
            "{report}"
        );
        assert!(report.names(crate::audit::Check::Circulation), "{report}");
    }

    #[test]
    fn the_audit_catches_a_negative_balance() {
        let (mut state, a, _) = small_state();
        let account = state.wallet(a).unwrap().account;
        state
            .ledger_mut_for_test()
            .corrupt_balance_for_test(account, Amount::from_fen(-1));
        let report = crate::audit::audit(&state);
        assert!(
            report.names(crate::audit::Check::NoNegativeBalance),
            "{report}"
        );
    }

    #[test]
    fn a_submission_from_an_unknown_operator_or_with_a_wrong_signature_is_not_logged() {
        let (state, a, b) = small_state();
        let pay = [Command::Pay {
            payer: a,
            payee: b,
            amount: Amount::from_fen(1),
            key: IdempotencyKey(9),
            auth: None,
        }];
        let stranger = KeyPair::from_seed(b"stranger");
        let error = state
            .validate(Submission::new(
                Origin::Operator(OperatorId(1)),
                &pay,
                &stranger,
            ))
            .unwrap_err();
        assert_eq!(error.code(), "BATCH_SIGNATURE_INVALID");
        let error = state
            .validate(Submission::new(
                Origin::Operator(OperatorId(7)),
                &pay,
                &stranger,
            ))
            .unwrap_err();
        assert_eq!(error.code(), "UNKNOWN_OPERATOR");
        let mut garbled = Submission::new(
            Origin::Operator(OperatorId(1)),
            &pay,
            &KeyPair::from_seed(b"op"),
        );
        garbled.commands.push(0);
        let resigned = Submission {
            signature: KeyPair::from_seed(b"op").sign(&{
                let mut prefix = Vec::from(&b"ECNY-BATCH-v1"[..]);
                prefix.extend_from_slice(&[1, 1, 0]);
                crate::certs::sm3_parts(&[&prefix, &garbled.commands])
            }),
            ..garbled
        };
        assert_eq!(
            state.validate(resigned).unwrap_err().code(),
            "MALFORMED_BATCH"
        );
    }

    #[test]
    fn events_from_a_cursor_follow_the_stream() {
        let (state, _, _) = small_state();
        let all = state.ledger().events().len();
        assert_eq!(state.ledger().events_from(EventId(0)).len(), all);
        assert_eq!(state.ledger().events_from(EventId(all as u64 - 1)).len(), 1);
        assert!(state
            .ledger()
            .events_from(EventId(all as u64 + 5))
            .is_empty());
    }
}
