//! The deterministic state machine of the registration center and its operators: log entries in,
//! state and results out. The same log always gives the same state, which makes crash recovery a
//! replay. Time arrives inside each entry; nothing here reads a clock, a disk or a socket.

mod campaigns;
mod contracts;
mod credentials;
mod identity;

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
    Command, CommandDigest, CommandResult, Entry, HolderAuth, Origin, Outcome, Submission,
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
    se_signatures, DeviceRegistry, OperatorAccounts, RegisteredDevice, SettlementBooks,
};
use crate::operator::{Identity, IdentityLookup, Operator};
use crate::programs::contracts::Contracts;
use crate::programs::red_packets::RedPackets;
use crate::programs::LotteryError;
use crate::sealed::{
    decode_sealed_text, encode_sealed_text, PersonalText, Phone, SealTag, SealedPhone, SealedText,
};
use crate::signing::{check_window, DeploymentId, SigningContext};
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
            BindBankAccount { wallet, account } => {
                self.bind_bank_account(origin, wallet, account, now)
            }
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
            } => self.register_device(origin, operator, device, (public_key, wallet, caps), now),
            LoadDevice {
                device,
                load_seq,
                amount,
            } => self.load_device(origin, device, load_seq, amount, now),
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
            FundCampaign { campaign } => self.fund_campaign(origin, campaign, now),
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
        }
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

    /// A command that moves a holder's money (debits the wallet, spends or commits it on the
    /// holder's behalf) must carry the holder's signature: no operator's word stands in for it.
    /// The signature was verified at the center's door (`Validator`), before the log; here it
    /// must be by the wallet's registered key, name this deployment and the wallet's operator,
    /// and be inside its window at the entry's time.
    fn check_holder_auth(
        &self,
        wallet: WalletId,
        auth: &Option<HolderAuth>,
        now: u64,
    ) -> Result<(), CommandError> {
        let Some(auth) = auth else {
            return Err(CommandError::SignatureRequired { wallet });
        };
        if auth.public_key != *self.wallet_key(wallet)? {
            return Err(CommandError::SignatureInvalid);
        }
        let here = self.signing_context(self.wallet(wallet)?.operator);
        if auth.context != here {
            return Err(CommandError::SignatureWrongContext {
                signed: auth.context,
                here,
            });
        }
        check_window(auth.not_after_ms, now)
    }

    /// Runs a money-moving command under its idempotency key; its result is the transfer it made.
    fn keyed(
        &mut self,
        wallet: WalletId,
        by: Keyed,
        body: impl FnOnce(&mut Self) -> Result<EventId, CommandError>,
    ) -> CommandResult {
        // The command's first event is the next one: claim the key with it in a single probe.
        let event = self.ledger.next_event_id();
        let show = |first: u64| EventId(first).to_string();
        let first = self.claimed(wallet, by, event.0, show, |state| body(state).map(|e| e.0))?;
        Ok(Outcome::Transfer(EventId(first)))
    }

    /// One idempotency rule for every keyed command: a retry of a command already done (same
    /// key, same digest) returns its first result; the same key on a different command is
    /// refused; a refused command leaves no trace of its key. `predicted` is the id the first
    /// result will have, so the key is claimed in the same probe that looks it up.
    fn claimed(
        &mut self,
        wallet: WalletId,
        by: Keyed,
        predicted: u64,
        show: impl Fn(u64) -> String,
        body: impl FnOnce(&mut Self) -> Result<u64, CommandError>,
    ) -> Result<u64, CommandError> {
        let attempt = FirstResult {
            digest: by.digest,
            first: predicted,
        };
        match self.idempotency.claim(wallet, by.key, attempt) {
            Claim::New => {}
            Claim::Retry(first) => return Ok(first),
            Claim::Reused(first) => {
                return Err(CommandError::IdempotencyKeyReused { first: show(first) })
            }
        }
        match body(self) {
            Ok(done) => {
                assert_eq!(
                    done, predicted,
                    "a keyed command's first result was mispredicted"
                );
                Ok(done)
            }
            Err(error) => {
                self.idempotency.release(wallet, by.key);
                Err(error)
            }
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

    fn open_wallet(
        &mut self,
        origin: Origin,
        operator: OperatorId,
        phone: Phone,
        key: PublicKey,
        now: u64,
    ) -> CommandResult {
        // The front office checked the number in the clear; only its seal reaches the log.
        let Phone::Sealed(phone) = phone else {
            return Err(CommandError::IdentityNotSealed);
        };
        if !matches!(key.0[0], 2 | 3) {
            return Err(CommandError::SignatureInvalid);
        }
        let index = self.operator_slot(origin, operator)?;
        let id = Self::wallet_id_at(self.wallets.len());
        self.operators[index].register_phone(phone, id)?;
        let account = self.ledger.open_account(AccountKind::Wallet, operator);
        self.wallets.push(Wallet::new(account, operator));
        self.wallet_keys.push(key);
        self.index_wallet_account(id, account);
        let change = WalletChange::Opened {
            operator,
            class: WalletClass::Four,
        };
        self.ledger.push_wallet_event(id, change, now);
        Ok(Outcome::Wallet(id))
    }

    fn upgrade_wallet(
        &mut self,
        origin: Origin,
        id: WalletId,
        to: WalletClass,
        identity: Identity,
        now: u64,
    ) -> CommandResult {
        let wallet = self.own_wallet(origin, id)?;
        if wallet.status == WalletStatus::Closed {
            return Err(CommandError::WalletClosed(id));
        }
        let (current, has_bank, op_index) = (
            wallet.class,
            wallet.bank_account().is_some(),
            wallet
                .operator
                .slot()
                .expect("a wallet's operator is known"),
        );
        if to <= WalletClass::Two {
            self.check_identity_wallets(op_index, id, &identity)?;
        }
        self.operators[op_index].upgrade_identity(id, current, to, identity, has_bank)?;
        self.wallet_mut(id).class = to;
        self.ledger
            .push_wallet_event(id, WalletChange::ClassChanged { class: to }, now);
        Ok(Outcome::Done)
    }

    /// One identity holds at most `CLASS_TWO_WALLETS_PER_IDENTITY_MAX` open wallets of class 2
    /// or better at one operator, counted by its ID number's seal tag.
    fn check_identity_wallets(
        &self,
        op_index: usize,
        wallet: WalletId,
        update: &Identity,
    ) -> Result<(), CommandError> {
        let operator = &self.operators[op_index];
        let known = operator.identity(wallet).and_then(|i| i.id_number.as_ref());
        let Some(id_number) = update.id_number.as_ref().or(known) else {
            return Ok(());
        };
        let others = operator
            .wallets_of_id_number(&id_number.tag)
            .iter()
            .filter(|other| **other != wallet)
            .filter(|other| {
                let Ok(other) = self.wallet(**other) else {
                    return false;
                };
                other.class <= WalletClass::Two && other.status != WalletStatus::Closed
            })
            .count();
        if others >= CLASS_TWO_WALLETS_PER_IDENTITY_MAX {
            return Err(CommandError::IdentityWalletLimit {
                class: WalletClass::Two,
                max: CLASS_TWO_WALLETS_PER_IDENTITY_MAX,
            });
        }
        Ok(())
    }

    fn bind_bank_account(
        &mut self,
        origin: Origin,
        id: WalletId,
        account: AccountId,
        now: u64,
    ) -> CommandResult {
        let wallet = self.own_wallet(origin, id)?;
        wallet.ensure_active(id)?;
        let target = self.ledger.account(account)?;
        if target.kind != AccountKind::CustomerDeposit || target.operator != wallet.operator {
            return Err(CommandError::UnknownAccount(account));
        }
        self.wallet_mut(id).bind_bank_account(account);
        self.ledger
            .push_wallet_event(id, WalletChange::BankAccountBound { account }, now);
        Ok(Outcome::Done)
    }

    fn set_wallet_status(
        &mut self,
        origin: Origin,
        id: WalletId,
        status: WalletStatus,
        now: u64,
    ) -> CommandResult {
        let wallet = self.own_wallet(origin, id)?;
        if wallet.status == WalletStatus::Closed || status == WalletStatus::Closed {
            return Err(CommandError::WalletClosed(id));
        }
        self.wallet_mut(id).status = status;
        self.ledger
            .push_wallet_event(id, WalletChange::StatusChanged { status }, now);
        Ok(Outcome::Done)
    }

    fn close_wallet(&mut self, origin: Origin, id: WalletId, now: u64) -> CommandResult {
        let wallet = self.own_wallet(origin, id)?;
        if wallet.status == WalletStatus::Closed {
            return Err(CommandError::WalletClosed(id));
        }
        let account = self.ledger.account(wallet.account)?;
        if account.pending_debits.is_positive() {
            return Err(CommandError::WalletNotEmpty(id));
        }
        if let Some(campaign) = self.red_packets.running_campaign_of(id) {
            return Err(CommandError::WalletSponsorsCampaign {
                wallet: id,
                campaign,
            });
        }
        if account.balance.is_positive() {
            let bank = wallet
                .bank_account()
                .ok_or(CommandError::NoBoundBankAccount(id))?;
            let op = self.operator(wallet.operator)?;
            let amount = account.balance;
            let legs = [
                Leg {
                    debit: wallet.account,
                    credit: op.vault,
                    amount,
                    kind: TransferKind::CloseWallet,
                },
                Leg {
                    debit: op.bank_funding,
                    credit: bank,
                    amount,
                    kind: TransferKind::CloseWallet,
                },
            ];
            self.ledger.transfer_linked(&legs, now)?;
        }
        self.wallet_mut(id).status = WalletStatus::Closed;
        let change = WalletChange::StatusChanged {
            status: WalletStatus::Closed,
        };
        self.ledger.push_wallet_event(id, change, now);
        Ok(Outcome::Done)
    }

    /// An active wallet of the calling operator with its bound bank account and its operator.
    fn banked_wallet(
        &self,
        origin: Origin,
        id: WalletId,
    ) -> Result<(&Wallet, AccountId, &Operator), CommandError> {
        let wallet = self.own_wallet(origin, id)?;
        wallet.ensure_active(id)?;
        let bank = wallet
            .bank_account()
            .ok_or(CommandError::NoBoundBankAccount(id))?;
        Ok((wallet, bank, self.operator(wallet.operator)?))
    }

    fn exchange(
        &mut self,
        origin: Origin,
        id: WalletId,
        amount: Amount,
        by: Keyed,
        auth: Option<HolderAuth>,
        now: u64,
    ) -> CommandResult {
        check_amount(amount)?;
        self.own_wallet(origin, id)?;
        self.check_holder_auth(id, &auth, now)?;
        self.keyed(id, by, |state| {
            let (wallet, bank, op) = state.banked_wallet(origin, id)?;
            let balance = state.ledger.account(wallet.account)?.balance;
            wallet.check_incoming(id, op.limits_for(wallet.class), balance, amount)?;
            let vault = state.ledger.account(op.vault)?.available();
            if vault < amount {
                return Err(CommandError::VaultInsufficient {
                    operator: op.id,
                    available: vault,
                    needed: amount,
                });
            }
            let legs = [
                Leg {
                    debit: bank,
                    credit: op.bank_funding,
                    amount,
                    kind: TransferKind::Exchange,
                },
                Leg {
                    debit: op.vault,
                    credit: wallet.account,
                    amount,
                    kind: TransferKind::Exchange,
                },
            ];
            state.ledger.transfer_linked(&legs, now)
        })
    }

    fn deposit_back(
        &mut self,
        origin: Origin,
        id: WalletId,
        amount: Amount,
        by: Keyed,
        auth: Option<HolderAuth>,
        now: u64,
    ) -> CommandResult {
        check_amount(amount)?;
        self.own_wallet(origin, id)?;
        self.check_holder_auth(id, &auth, now)?;
        self.keyed(id, by, |state| {
            let (wallet, bank, op) = state.banked_wallet(origin, id)?;
            let legs = [
                Leg {
                    debit: wallet.account,
                    credit: op.vault,
                    amount,
                    kind: TransferKind::DepositBack,
                },
                Leg {
                    debit: op.bank_funding,
                    credit: bank,
                    amount,
                    kind: TransferKind::DepositBack,
                },
            ];
            state.ledger.transfer_linked(&legs, now)
        })
    }

    /// Checks everything a payment or hold from `payer` to `payee` needs, short of the balance.
    fn check_payment(
        &self,
        origin: Origin,
        payer: WalletId,
        payee: WalletId,
        amount: Amount,
        now: u64,
    ) -> Result<Leg, CommandError> {
        let from = self.own_wallet(origin, payer)?;
        from.ensure_active(payer)?;
        if payer == payee {
            return Err(CommandError::SameWallet);
        }
        let to = self.wallet(payee)?;
        to.ensure_active(payee)?;
        from.check_outgoing(
            self.operator(from.operator)?.limits_for(from.class),
            amount,
            now,
        )?;
        let payee_balance = self.ledger.account(to.account)?.balance;
        to.check_incoming(
            payee,
            self.operator(to.operator)?.limits_for(to.class),
            payee_balance,
            amount,
        )?;
        Ok(Leg {
            debit: from.account,
            credit: to.account,
            amount,
            kind: TransferKind::Payment,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn pay(
        &mut self,
        origin: Origin,
        payer: WalletId,
        payee: WalletId,
        amount: Amount,
        by: Keyed,
        auth: Option<HolderAuth>,
        now: u64,
    ) -> CommandResult {
        check_amount(amount)?;
        self.own_wallet(origin, payer)?;
        self.check_holder_auth(payer, &auth, now)?;
        self.keyed(payer, by, |state| {
            let leg = state.check_payment(origin, payer, payee, amount, now)?;
            let event = state.ledger.transfer(leg, now)?;
            state.wallet_mut(payer).record_outgoing(amount, now);
            Ok(event)
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn hold(
        &mut self,
        origin: Origin,
        payer: WalletId,
        payee: WalletId,
        amount: Amount,
        timeout_ms: u64,
        by: Keyed,
        auth: Option<HolderAuth>,
        now: u64,
    ) -> CommandResult {
        check_amount(amount)?;
        self.own_wallet(origin, payer)?;
        self.check_holder_auth(payer, &auth, now)?;
        self.keyed(payer, by, |state| {
            let mut leg = state.check_payment(origin, payer, payee, amount, now)?;
            leg.kind = TransferKind::PendingHold;
            let event = state
                .ledger
                .hold(leg, now.saturating_add(timeout_ms), now)?;
            // Limits count a hold when it is made: that is when the holder committed the money.
            state.wallet_mut(payer).record_outgoing(amount, now);
            Ok(event)
        })
    }

    fn resolve_hold(
        &mut self,
        origin: Origin,
        hold: EventId,
        post: bool,
        now: u64,
    ) -> CommandResult {
        let Some(pending) = self.ledger.pending().get(&hold.0).copied() else {
            return self.ledger.resolve(hold, post, now).map(Outcome::Transfer);
        };
        let owner = self.ledger.account(pending.debit)?.operator;
        if let Origin::Operator(caller) = origin {
            if caller != owner {
                return Err(CommandError::NotYourWallet {
                    wallet: WalletId(0),
                    owner,
                    caller,
                });
            }
        }
        Ok(Outcome::Transfer(self.ledger.resolve(hold, post, now)?))
    }

    // ----- dual offline -----

    pub fn devices(&self) -> &DeviceRegistry {
        &self.devices
    }

    fn register_device(
        &mut self,
        origin: Origin,
        operator: OperatorId,
        device: DeviceId,
        (public_key, wallet, caps): (PublicKey, Option<WalletId>, DeviceCaps),
        now: u64,
    ) -> CommandResult {
        self.require_operator(origin, operator)?;
        if let Some(wallet) = wallet {
            if self.own_wallet(origin, wallet)?.operator != operator {
                return Err(CommandError::NotYourWallet {
                    wallet,
                    owner: self.wallet(wallet)?.operator,
                    caller: operator,
                });
            }
        }
        let registered = RegisteredDevice::new(operator, wallet, public_key, caps);
        self.devices
            .register(device, registered, &mut self.ledger, now)?;
        Ok(Outcome::Done)
    }

    /// Value from the holder's wallet (or the vault, for cash at a counter) into its secure
    /// element: a movement out of the wallet like a payment, so it counts against the wallet's
    /// daily and annual limits.
    fn load_device(
        &mut self,
        origin: Origin,
        id: DeviceId,
        load_seq: u32,
        amount: Amount,
        now: u64,
    ) -> CommandResult {
        check_amount(amount)?;
        let device = self.devices.device(id)?;
        let op = self.require_operator(origin, device.operator)?;
        let (float, vault, wallet) = (op.offline_float, op.vault, device.wallet);
        if let Some(first) = self.devices.repeated_load(id, load_seq, amount)? {
            return Ok(Outcome::Transfer(first));
        }
        let source = match wallet {
            Some(wallet) => {
                let holder = self.wallet(wallet)?;
                holder.ensure_active(wallet)?;
                let limits = self.operator(holder.operator)?.limits_for(holder.class);
                holder.check_totals_out(limits, amount, now)?;
                holder.account
            }
            None => vault,
        };
        let event =
            self.devices
                .load(id, load_seq, amount, (source, float), &mut self.ledger, now)?;
        if let Some(wallet) = wallet {
            self.wallet_mut(wallet).record_outgoing(amount, now);
        }
        Ok(Outcome::Transfer(event))
    }

    /// Value back from a secure element into its holder's wallet (or the vault, for cash at a
    /// counter): a movement into the wallet, within its balance cap.
    fn unload_device(
        &mut self,
        origin: Origin,
        unload: &SignedUnload,
        device_key: &PublicKey,
        now: u64,
    ) -> CommandResult {
        let device = self.devices.device(unload.device)?;
        if device.public_key != *device_key {
            return Err(CommandError::SignatureInvalid);
        }
        let op = self.require_operator(origin, device.operator)?;
        let (float, vault, wallet) = (op.offline_float, op.vault, device.wallet);
        if let Some(first) = self.devices.repeated_unload(unload)? {
            return Ok(Outcome::Transfer(first));
        }
        let target = match wallet {
            Some(wallet) => {
                let holder = self.wallet(wallet)?;
                let balance = self.ledger.account(holder.account)?.balance;
                let limits = self.operator(holder.operator)?.limits_for(holder.class);
                holder.check_incoming(wallet, limits, balance, unload.amount)?;
                holder.account
            }
            None => vault,
        };
        let event = self
            .devices
            .unload(unload, (float, target), &mut self.ledger, now)?;
        Ok(Outcome::Transfer(event))
    }

    fn refund_at_counter(&mut self, origin: Origin, device: DeviceId, now: u64) -> CommandResult {
        let operator = self.devices.device(device)?.operator;
        let op = self.require_operator(origin, operator)?;
        let accounts = OperatorAccounts {
            vault: op.vault,
            float: op.offline_float,
        };
        let (first, _) = self
            .devices
            .refund_at_counter(device, accounts, &mut self.ledger, now)?;
        Ok(Outcome::Transfer(first))
    }

    /// The device's own operator opens a sync: the nonce its card attests over.
    fn begin_sync(&mut self, origin: Origin, device: DeviceId, now: u64) -> CommandResult {
        let operator = self.devices.device(device)?.operator;
        self.require_operator(origin, operator)?;
        Ok(Outcome::SyncNonce(self.devices.begin_sync(device, now)?))
    }

    fn sync_offline(
        &mut self,
        origin: Origin,
        sync: &AttestedSync,
        device_key: &PublicKey,
        now: u64,
    ) -> CommandResult {
        let operator = self.devices.device(sync.attestation.device)?.operator;
        self.require_operator(origin, operator)?;
        self.devices.check_sync(sync, device_key)?;
        let operators = &self.operators;
        let accounts = |id: OperatorId| {
            let op = &operators[id.slot().expect("a device's operator is known")];
            OperatorAccounts {
                vault: op.vault,
                float: op.offline_float,
            }
        };
        let wallets = &self.wallets;
        let wallet_account = |id: WalletId| wallets.get(id.slot()?).map(|w| w.account);
        let books = SettlementBooks {
            operators: &accounts,
            wallets: &wallet_account,
        };
        let report = self.devices.settle(sync, &books, &mut self.ledger, now);
        Ok(Outcome::Synced(report))
    }

    // ----- acquiring and sub-wallets -----

    pub fn acquiring(&self) -> &Acquiring {
        &self.acquiring
    }

    pub fn sub_wallets(&self) -> &SubWallets {
        &self.sub_wallets
    }

    /// The merchant, checked to belong to the calling operator.
    fn own_merchant(&self, origin: Origin, id: MerchantId) -> Result<&Merchant, CommandError> {
        let merchant = self.acquiring.merchant(id)?;
        match origin {
            Origin::Operator(caller) if caller != merchant.operator => {
                Err(CommandError::NotYourMerchant {
                    merchant: id,
                    owner: merchant.operator,
                    caller,
                })
            }
            _ => Ok(merchant),
        }
    }

    fn onboard_merchant(
        &mut self,
        origin: Origin,
        operator: OperatorId,
        wallet: WalletId,
        name: String,
        (mcc, region): (Mcc, u32),
    ) -> CommandResult {
        self.require_operator(origin, operator)?;
        let settles_into = self.own_wallet(Origin::Operator(operator), wallet)?;
        settles_into.ensure_active(wallet)?;
        // A merchant's takings outgrow an anonymous wallet's cap in a day, and its bank account
        // is where they settle: class 2 or better.
        if settles_into.class > WalletClass::Two {
            return Err(CommandError::MerchantWalletUnverified {
                wallet,
                class: settles_into.class,
            });
        }
        let id = self
            .acquiring
            .onboard(operator, wallet, name, mcc, region)?;
        Ok(Outcome::Merchant(id))
    }

    fn add_terminal(
        &mut self,
        origin: Origin,
        merchant: MerchantId,
        kind: TerminalKind,
    ) -> CommandResult {
        self.own_merchant(origin, merchant)?;
        let number = self.acquiring.add_terminal(merchant, kind)?;
        Ok(Outcome::Terminal(number))
    }

    fn create_order(&mut self, origin: Origin, order: Order, now: u64) -> CommandResult {
        check_amount(order.amount)?;
        self.own_merchant(origin, order.merchant)?;
        if order.expires_at_ms <= now {
            return Err(CommandError::OrderExpired {
                reference: order.reference,
            });
        }
        self.acquiring.create_order(order)?;
        Ok(Outcome::Done)
    }

    /// Which channel a payment to a merchant came by, checked against its order and terminal.
    fn payment_channel(
        &self,
        at: &MerchantPaymentAt,
        amount: Amount,
        now: u64,
    ) -> Result<PaymentChannel, CommandError> {
        let merchant = self.acquiring.merchant(at.merchant)?;
        let terminal = merchant.terminal(at.terminal)?;
        match (&at.order, at.channel) {
            (Some(reference), PaymentChannel::DynamicQr | PaymentChannel::TapZone) => {
                let by_order =
                    self.acquiring
                        .check_order_payment(at.merchant, reference, amount, now)?;
                // A tap zone may carry an order too; a courier's order is always cash on delivery.
                Ok(match (by_order, at.channel) {
                    (PaymentChannel::CashOnDelivery, _) => PaymentChannel::CashOnDelivery,
                    (_, channel) => channel,
                })
            }
            (Some(reference), PaymentChannel::CashOnDelivery) => {
                match self
                    .acquiring
                    .check_order_payment(at.merchant, reference, amount, now)?
                {
                    PaymentChannel::CashOnDelivery => Ok(PaymentChannel::CashOnDelivery),
                    _ => Err(CommandError::ChannelMismatch(
                        "the order was not presented by a courier for cash on delivery",
                    )),
                }
            }
            (Some(_), _) => Err(CommandError::ChannelMismatch(
                "an order is paid by its dynamic QR, a tap zone or at the door",
            )),
            (None, PaymentChannel::PaymentCode) => match terminal {
                Some(TerminalKind::ScanGun | TerminalKind::Pos) => Ok(PaymentChannel::PaymentCode),
                _ => Err(CommandError::ChannelMismatch(
                    "a payment code is read by a merchant's scan gun or till",
                )),
            },
            (None, channel @ (PaymentChannel::StaticQr | PaymentChannel::TapZone)) => Ok(channel),
            (None, _) => Err(CommandError::ChannelMismatch(
                "a dynamic QR or cash-on-delivery payment names its order",
            )),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn pay_merchant(
        &mut self,
        origin: Origin,
        payer: WalletId,
        at: MerchantPaymentAt,
        amount: Amount,
        by: Keyed,
        auth: Option<HolderAuth>,
        now: u64,
    ) -> CommandResult {
        check_amount(amount)?;
        if at.channel == PaymentChannel::PaymentCode {
            return Err(CommandError::ChannelMismatch(
                "a payment code is charged by the till that read it, once (ChargePaymentCode)",
            ));
        }
        self.own_wallet(origin, payer)?;
        self.check_holder_auth(payer, &auth, now)?;
        let payee = self.acquiring.merchant(at.merchant)?.wallet;
        self.keyed(payer, by, |state| {
            let channel = state.payment_channel(&at, amount, now)?;
            // An order's payment belongs to the terminal that presented the order.
            let terminal = match &at.order {
                Some(reference) => state.acquiring.order(at.merchant, reference)?.terminal,
                None => at.terminal,
            };
            let leg = state.check_payment(origin, payer, payee, amount, now)?;
            let (event, packets) = state.post_merchant_payment(payer, at.merchant, leg, now)?;
            // Limits count the whole payment, packets included: they bound what a wallet pays.
            state.wallet_mut(payer).record_outgoing(amount, now);
            state.record_packet_spends(event, at.merchant, channel, &packets, now);
            state.acquiring.record_payment(MerchantPayment {
                transfer: event,
                merchant: at.merchant,
                payer,
                amount,
                refunded: Amount::ZERO,
                channel,
                terminal,
                at_ms: now,
                order: at.order,
                sub_wallet: None,
            });
            Ok(event)
        })
    }

    /// A till's charge of a wallet's payment code: the code's step must still be live at the
    /// entry's time and later than the wallet's last charged one, the amount within the
    /// operator's password-free cap; then it is a merchant payment like any other.
    #[allow(clippy::too_many_arguments)]
    fn charge_payment_code(
        &mut self,
        origin: Origin,
        payer: WalletId,
        at: MerchantPaymentAt,
        amount: Amount,
        code_step: u64,
        by: Keyed,
        now: u64,
    ) -> CommandResult {
        check_amount(amount)?;
        let operator = self.own_wallet(origin, payer)?.operator;
        let payee = self.acquiring.merchant(at.merchant)?.wallet;
        self.keyed(payer, by, |state| {
            state.payment_channel(&at, amount, now)?;
            payment_code::check_live(code_step, now).map_err(CommandError::PaymentCode)?;
            state
                .code_marks
                .check(payer, code_step)
                .map_err(CommandError::PaymentCode)?;
            let cap = state.operator(operator)?.code_payment_cap;
            if amount > cap {
                return Err(CommandError::LimitPasswordFree { amount, cap });
            }
            let leg = state.check_payment(origin, payer, payee, amount, now)?;
            let (event, packets) = state.post_merchant_payment(payer, at.merchant, leg, now)?;
            state.wallet_mut(payer).record_outgoing(amount, now);
            state.code_marks.mark(payer, code_step);
            let channel = PaymentChannel::PaymentCode;
            state.record_packet_spends(event, at.merchant, channel, &packets, now);
            state.acquiring.record_payment(MerchantPayment {
                transfer: event,
                merchant: at.merchant,
                payer,
                amount,
                refunded: Amount::ZERO,
                channel,
                terminal: at.terminal,
                at_ms: now,
                order: None,
                sub_wallet: None,
            });
            Ok(event)
        })
    }

    fn set_code_payment_cap(
        &mut self,
        origin: Origin,
        operator: OperatorId,
        cap: Amount,
    ) -> CommandResult {
        check_amount(cap)?;
        let index = self.operator_slot(origin, operator)?;
        self.operators[index].code_payment_cap = cap;
        Ok(Outcome::Done)
    }

    fn refund(
        &mut self,
        origin: Origin,
        payment: EventId,
        amount: Amount,
        by: Keyed,
        now: u64,
    ) -> CommandResult {
        check_amount(amount)?;
        let paid = self.acquiring.payment(payment)?;
        let payer = paid.payer;
        let merchant_wallet = self.own_merchant(origin, paid.merchant)?.wallet;
        self.keyed(merchant_wallet, by, |state| {
            state.acquiring.check_refund(payment, amount)?;
            let from = state.wallet(merchant_wallet)?;
            from.ensure_active(merchant_wallet)?;
            let to = state.wallet(payer)?;
            to.ensure_active(payer)?;
            let paid = state.acquiring.payment(payment)?;
            // A payment that spent red packets refunds its packets' part to them, not the wallet.
            let split =
                state
                    .red_packets
                    .plan_refund(payment, (paid.amount, paid.refunded), amount, now);
            let to_wallet = split.as_ref().map_or(amount, |split| split.to_wallet);
            if to_wallet.is_positive() {
                let payer_balance = state.ledger.account(to.account)?.balance;
                to.check_incoming(
                    payer,
                    state.operator(to.operator)?.limits_for(to.class),
                    payer_balance,
                    to_wallet,
                )?;
            }
            let event = match &split {
                None => {
                    let leg = Leg {
                        debit: from.account,
                        credit: to.account,
                        amount,
                        kind: TransferKind::Refund,
                    };
                    state.ledger.transfer(leg, now)?
                }
                Some(split) => {
                    let legs = state.refund_legs(from.account, to.account, split)?;
                    state.ledger.transfer_linked(&legs, now)?
                }
            };
            if let Some(split) = &split {
                state.red_packets.record_refund(split);
            }
            state.acquiring.record_refund(MerchantRefund {
                transfer: event,
                payment,
                amount,
                at_ms: now,
            });
            Ok(event)
        })
    }

    fn open_sub_wallet(
        &mut self,
        origin: Origin,
        wallet: WalletId,
        merchant: MerchantId,
        limits: SubWalletLimits,
        auth: Option<HolderAuth>,
        now: u64,
    ) -> CommandResult {
        self.own_wallet(origin, wallet)?.ensure_active(wallet)?;
        self.check_holder_auth(wallet, &auth, now)?;
        self.acquiring.merchant(merchant)?;
        let id = self.sub_wallets.open(wallet, merchant, limits)?;
        Ok(Outcome::SubWallet(id))
    }

    fn set_sub_wallet(
        &mut self,
        origin: Origin,
        (id, limits, open): (SubWalletId, SubWalletLimits, bool),
        auth: Option<HolderAuth>,
        now: u64,
    ) -> CommandResult {
        let sub = self.sub_wallets.get(id)?;
        let wallet = sub.wallet;
        self.own_wallet(origin, wallet)?;
        self.check_holder_auth(wallet, &auth, now)?;
        // Closing is final: a merchant that was cut off is never quietly reconnected.
        if !sub.open {
            return Err(CommandError::SubWalletClosed(id));
        }
        let sub = self.sub_wallets.get_mut(id)?;
        if open {
            limits.check()?;
            sub.limits = limits;
        } else {
            sub.open = false;
        }
        Ok(Outcome::Done)
    }

    #[allow(clippy::too_many_arguments)]
    fn charge_sub_wallet(
        &mut self,
        origin: Origin,
        id: SubWalletId,
        merchant: MerchantId,
        amount: Amount,
        order: Option<String>,
        by: Keyed,
        now: u64,
    ) -> CommandResult {
        check_amount(amount)?;
        let wallet = self.sub_wallets.get(id)?.wallet;
        self.own_wallet(origin, wallet)?;
        let payee = self.acquiring.merchant(merchant)?.wallet;
        self.keyed(wallet, by, |state| {
            state
                .sub_wallets
                .get(id)?
                .check_charge(merchant, amount, now)?;
            if let Some(reference) = &order {
                state
                    .acquiring
                    .check_order_payment(merchant, reference, amount, now)?;
            }
            let leg = state.check_payment(origin, wallet, payee, amount, now)?;
            let (event, packets) = state.post_merchant_payment(wallet, merchant, leg, now)?;
            state.wallet_mut(wallet).record_outgoing(amount, now);
            state.record_packet_spends(event, merchant, PaymentChannel::SubWallet, &packets, now);
            state.sub_wallets.get_mut(id)?.record_charge(amount, now);
            state.acquiring.record_payment(MerchantPayment {
                transfer: event,
                merchant,
                payer: wallet,
                amount,
                refunded: Amount::ZERO,
                channel: PaymentChannel::SubWallet,
                terminal: 0,
                at_ms: now,
                order,
                sub_wallet: Some(id),
            });
            Ok(event)
        })
    }

    // ----- snapshots and the state hash -----

    pub fn encode_snapshot(&self) -> Vec<u8> {
        let mut out =
            Writer::with_capacity(64 + self.ledger.events().len() * 48 + self.wallets.len() * 80);
        out.raw(SNAPSHOT_MAGIC)
            .u64(self.last_timestamp_ms)
            .u64(self.entries_applied);
        match &self.central_bank_key {
            Some(key) => out.u8(1).raw(&key.0),
            None => out.u8(0),
        };
        out.u32(self.reserve_funding.0).u32(self.issuance_account.0);
        ledger::snapshot::encode(&self.ledger, &mut out);
        self.encode_operators(&mut out);
        out.u64(self.wallets.len() as u64);
        for (wallet, key) in self.wallets.iter().zip(&self.wallet_keys) {
            wallet.encode(&mut out);
            out.raw(&key.0);
        }
        let keys = self.idempotency.sorted();
        out.u64(keys.len() as u64);
        for ((wallet, key), first) in keys {
            out.u32(wallet.0)
                .u128(key.0)
                .raw(&first.digest)
                .u64(first.first);
        }
        self.code_marks.encode(&mut out);
        self.devices.encode(&mut out);
        self.acquiring.encode(&mut out);
        self.sub_wallets.encode(&mut out);
        self.contracts.encode(&mut out);
        self.red_packets.encode(&mut out);
        self.encode_identity_lookups(&mut out);
        self.credentials.encode(&mut out);
        out.bytes
    }

    fn encode_operators(&self, out: &mut Writer) {
        out.u64(self.operators.len() as u64);
        for (op, totals) in self.operators.iter().zip(&self.issuance) {
            out.str(&op.name).raw(&op.public_key.0);
            for account in op.accounts() {
                out.u32(account.0);
            }
            for limits in &op.limits {
                limits.encode(out);
            }
            out.i64(op.code_payment_cap.fen());
            out.i64(totals.issued.fen()).i64(totals.redeemed.fen());
            let phones = op.phone_entries();
            out.u64(phones.len() as u64);
            for (phone, wallet) in phones {
                out.raw(&phone.tag).raw(&phone.ciphertext).u32(wallet.0);
            }
            let identities = op.identity_entries();
            out.u64(identities.len() as u64);
            for (wallet, identity) in identities {
                out.u32(wallet.0);
                for text in [&identity.name, &identity.id_number] {
                    match text {
                        Some(sealed) => {
                            encode_sealed_text(sealed, out.u8(1));
                        }
                        None => {
                            out.u8(0);
                        }
                    }
                }
                out.u8(u8::from(identity.verified_in_person));
            }
        }
    }

    pub fn decode_snapshot(bytes: &[u8]) -> Result<StateMachine, DecodeError> {
        let mut input = Reader::new(bytes);
        if input.take(8, "snapshot magic")? != SNAPSHOT_MAGIC {
            return Err(DecodeError {
                what: "snapshot magic",
                offset: 0,
            });
        }
        let mut state = StateMachine {
            last_timestamp_ms: input.u64("timestamp")?,
            entries_applied: input.u64("entries")?,
            ..Default::default()
        };
        if input.bool("central bank key flag")? {
            let key = PublicKey(input.array("central bank key")?);
            state.central_bank_key = Some(key);
            state.deployment = DeploymentId::of_central_bank(&key);
        }
        state.reserve_funding = AccountId(input.u32("reserve funding")?);
        state.issuance_account = AccountId(input.u32("issuance account")?);
        state.ledger = ledger::snapshot::decode(&mut input)?;
        state.decode_operators(&mut input)?;
        let count = input.u64("wallet count")? as usize;
        // Every wallet carries its key: reserve no more than the bytes left could hold.
        let fit = count.min(input.remaining() / std::mem::size_of::<PublicKey>());
        state.wallets.reserve(fit);
        state.wallet_keys.reserve(fit);
        for index in 0..count {
            let at = input.offset();
            let wallet = Wallet::decode(&mut input)?;
            // The account index sizes a table: only the ledger's own accounts are believed.
            if state.ledger.account(wallet.account).is_err() {
                return Err(DecodeError {
                    what: "wallet account",
                    offset: at,
                });
            }
            state.index_wallet_account(Self::wallet_id_at(index), wallet.account);
            state.wallets.push(wallet);
            state
                .wallet_keys
                .push(PublicKey(input.array("wallet key")?));
        }
        let count = input.u64("idempotency count")? as usize;
        for _ in 0..count {
            let key = (
                WalletId(input.u32("wallet")?),
                IdempotencyKey(input.u128("key")?),
            );
            let first = FirstResult {
                digest: input.array("command digest")?,
                first: input.u64("first result")?,
            };
            state.idempotency.insert(key.0, key.1, first);
        }
        state.code_marks = CodeMarks::decode(&mut input)?;
        state.devices = DeviceRegistry::decode(&mut input)?;
        state.acquiring = Acquiring::decode(&mut input)?;
        state.sub_wallets = SubWallets::decode(&mut input)?;
        state.contracts = Contracts::decode(&mut input)?;
        state.red_packets = RedPackets::decode(&mut input)?;
        state.identity_lookups = Self::decode_identity_lookups(&mut input)?;
        state.credentials = crate::parties::CredentialBook::decode(&mut input)?;
        if !input.is_empty() {
            return Err(DecodeError {
                what: "trailing snapshot bytes",
                offset: input.offset(),
            });
        }
        Ok(state)
    }

    fn decode_operators(&mut self, input: &mut Reader<'_>) -> Result<(), DecodeError> {
        let count = input.u64("operator count")? as usize;
        for index in 0..count {
            let name = input.string("operator name")?;
            let key = PublicKey(input.array("operator key")?);
            let mut accounts = [AccountId(0); 5];
            for account in accounts.iter_mut() {
                *account = AccountId(input.u32("operator account")?);
            }
            let mut op = Operator::new(OperatorId(index as u16 + 1), name, key, accounts);
            for limits in op.limits.iter_mut() {
                *limits = ClassLimits::decode(input)?;
            }
            op.code_payment_cap = Amount::from_fen(input.i64("code payment cap")?);
            let totals = IssuanceTotals {
                issued: Amount::from_fen(input.i64("issued")?),
                redeemed: Amount::from_fen(input.i64("redeemed")?),
            };
            let phones = (0..input.u64("phone count")?)
                .map(|_| {
                    let phone = SealedPhone {
                        tag: input.array("phone tag")?,
                        ciphertext: input.array("sealed phone")?,
                    };
                    Ok((phone, WalletId(input.u32("phone wallet")?)))
                })
                .collect::<Result<Vec<_>, DecodeError>>()?;
            let identities = (0..input.u64("identity count")?)
                .map(|_| {
                    let wallet = WalletId(input.u32("identity wallet")?);
                    let mut sealed = || -> Result<Option<SealedText>, DecodeError> {
                        Ok(match input.bool("sealed text present")? {
                            true => Some(decode_sealed_text(input)?),
                            false => None,
                        })
                    };
                    let name = sealed()?;
                    let id_number = sealed()?;
                    Ok((
                        wallet,
                        Identity {
                            name,
                            id_number,
                            verified_in_person: input.bool("in person")?,
                        },
                    ))
                })
                .collect::<Result<Vec<_>, DecodeError>>()?;
            op.restore_directory(phones, identities);
            self.operators.push(op);
            self.issuance.push(totals);
        }
        Ok(())
    }

    /// SM3 of the canonical snapshot less its log position (entries applied, last time): equal
    /// states have equal hashes whatever the map orders, and a refused command leaves it as it was.
    pub fn state_hash(&self) -> [u8; 32] {
        sm3(&self.encode_snapshot()[SNAPSHOT_POSITION_END..])
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

/// A submission whose origin signature verified and whose commands decode: the only kind the
/// node logs. Checked off the state machine's thread, since hashing a batch costs more than
/// applying it; the keyed commands' idempotency digests are computed there too.
#[derive(Debug)]
pub struct Validated {
    submission: Submission,
    digests: Vec<Option<CommandDigest>>,
}

impl Validated {
    pub fn submission(&self) -> &Submission {
        &self.submission
    }

    /// Each command's idempotency digest, if it is keyed.
    pub fn digests(&self) -> &[Option<CommandDigest>] {
        &self.digests
    }
}

/// Stateless checks before the log: the origin is known, its signature verifies (one per batch,
/// never per online payment), the commands decode, and every fact about offline value carries
/// the signature of the secure element it speaks for (a sync's attestation, the payer's
/// signature on each record a payee reports, an unload): no operator's word stands in for those.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Validator {
    central_bank: Option<PublicKey>,
    operators: Vec<PublicKey>,
}

impl Validator {
    pub fn knows_operators(&self) -> usize {
        self.operators.len()
    }

    pub fn validate(&self, submission: Submission) -> Result<Validated, CommandError> {
        let key = match submission.origin {
            Origin::CentralBank => match &self.central_bank {
                Some(key) => *key,
                None => genesis_key(&submission)?,
            },
            Origin::Operator(id) => *id
                .slot()
                .and_then(|slot| self.operators.get(slot))
                .ok_or(CommandError::UnknownOperator(id))?,
        };
        submission.verify(&key)?;
        let mut digests = Vec::new();
        let mut offline = Vec::new();
        let mut holder_signed = Vec::new();
        crate::command::check_commands_with(&submission.commands, |command| {
            digests.push(command.idempotency_key().map(|_| command.digest()));
            if matches!(
                command,
                Command::SyncOffline { .. } | Command::UnloadDevice { .. }
            ) {
                offline.push(command);
            } else if let (Some(auth), Some(message)) = (command.auth(), command.signed_message()) {
                holder_signed.push((*auth, message));
            }
        })
        .map_err(|e| CommandError::MalformedBatch(e.to_string()))?;
        verify_se_signatures(&offline)?;
        verify_holder_signatures(&holder_signed)?;
        Ok(Validated {
            submission,
            digests,
        })
    }
}

/// Verifies the secure-element signatures of offline commands, on every core.
fn verify_se_signatures(commands: &[Command]) -> Result<(), CommandError> {
    if commands.is_empty() {
        return Ok(());
    }
    let mut signed = Vec::new();
    for command in commands {
        signed.extend(se_signatures(command)?);
    }
    let items: Vec<SignedItem<'_>> = signed
        .iter()
        .map(|item| SignedItem {
            key: &item.key,
            message: &item.digest,
            signature: &item.signature,
        })
        .collect();
    if verify_all_parallel(&items, 0).iter().any(Result::is_err) {
        return Err(CommandError::SignatureInvalid);
    }
    Ok(())
}

/// Verifies every holder's signature a batch carries, on every core: an operator that lets one
/// through that its holder never made (its own word dressed as the holder's) gets its whole batch
/// refused, so nothing it forged reaches the log. Never repeated at replay.
fn verify_holder_signatures(signed: &[(HolderAuth, Vec<u8>)]) -> Result<(), CommandError> {
    if signed.is_empty() {
        return Ok(());
    }
    let items: Vec<SignedItem<'_>> = signed
        .iter()
        .map(|(auth, message)| SignedItem {
            key: &auth.public_key,
            message,
            signature: &auth.signature,
        })
        .collect();
    if verify_all_parallel(&items, 0).iter().any(Result::is_err) {
        return Err(CommandError::SignatureInvalid);
    }
    Ok(())
}

/// The genesis submission is self-signed by the key it installs.
fn genesis_key(submission: &Submission) -> Result<PublicKey, CommandError> {
    match submission.decode_commands().ok().as_deref() {
        Some([Command::Genesis { central_bank_key }, ..]) => Ok(*central_bank_key),
        _ => Err(CommandError::CentralBankOnly),
    }
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
            Command::BindBankAccount {
                wallet: a,
                account: bank_account,
            },
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
