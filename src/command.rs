//! Messages into the state machine: commands, the submissions that carry them (a batch signed
//! once by an operator or by the central bank), and their results. Plain data with a byte
//! encoding; the rules that check them live next to the state they check against.

use crate::amount::Amount;
use crate::certs::device::DeviceCaps;
use crate::certs::{sm3_parts, KeyPair, PublicKey, Signature};
use crate::channels::acquiring::{PaymentChannel, TerminalKind};
use crate::channels::emvco::Mcc;
use crate::codec::{DecodeError, Reader, Writer, STRING_BYTES_MAX};
use crate::error::CommandError;
use crate::ids::{
    AccountId, CampaignId, ContractId, DeviceId, EventId, IdempotencyKey, IdentityLookupId,
    MerchantId, OperatorId, StaffId, SubWalletId, WalletId,
};
use crate::offline::messages::{AttestedSync, EntryRole, Nonce, SignedUnload, Wire};
use crate::offline::settlement::{decode_caps, encode_caps, SyncReport};
use crate::parties::{decode_subject, encode_subject, CredentialSubject, StaffRole};
use crate::programs::campaign::CampaignTerms;
use crate::programs::contracts::Template;
use crate::programs::lottery::Seed;
use crate::sealed::{
    decode_phone, decode_text, encode_phone, encode_text, Field, IdentityKey, PersonalText, Phone,
};
use crate::signing::{DeploymentId, SigningContext, SIGNATURE_WINDOW_MS_MAX};
use crate::wallet::sub_wallet::SubWalletLimits;
use crate::wallet::{ClassLimits, WalletClass, WalletStatus};

/// Most commands one submission may carry: bounds a log entry and the center's work per batch.
pub const SUBMISSION_COMMANDS_MAX: usize = 65_536;
/// Encoding version of a submission; bumped when the format changes (2: holders' signatures carry
/// their context and window; payment-code charges and the password-free cap; 3: attested
/// offline syncs over a center nonce, phones, names and ID numbers sealed, staff and
/// credentials, the counter's one-step bank account; 4: the holder signs a bank binding, a card
/// bound to the wallet and each load from it, and a sponsor its campaign's funding).
const SUBMISSION_VERSION: u8 = 4;
const BATCH_DOMAIN: &[u8] = b"ECNY-BATCH-v1";
/// Opens the bytes a holder signs; see `signing` for the layout.
pub const COMMAND_DOMAIN: &[u8] = b"ECNY-COMMAND-v2";
/// A filled signature envelope: flag, key, signature, deployment, operator, window's end.
const AUTH_ENVELOPE_BYTES: usize = 1 + 33 + 64 + 16 + 2 + 8;
/// Bytes of a keyed command's idempotency digest: SM3 truncated, small enough for the index.
pub const COMMAND_DIGEST_BYTES: usize = 16;

/// What a keyed command does, for telling a retry from another command under the same key: the
/// first 16 bytes of SM3 over its body (its signing bytes without the signature's envelope, so a
/// retry signed again with a fresh window is still the same command).
pub type CommandDigest = [u8; COMMAND_DIGEST_BYTES];

/// A wallet holder's signature over a money-moving command, with the key that made it and what
/// it is bound to: the deployment and operator, and the last instant it is good. The operator
/// tier verifies the signature; the state machine checks the key is the wallet's own, the context
/// its own and the window open at the entry's time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HolderAuth {
    pub public_key: PublicKey,
    pub signature: Signature,
    pub context: SigningContext,
    pub not_after_ms: u64,
}

/// Refuses a window that has closed at `now_ms`, or that reaches further than the longest one.
pub fn check_window(not_after_ms: u64, now_ms: u64) -> Result<(), CommandError> {
    if now_ms > not_after_ms {
        return Err(CommandError::SignatureExpired {
            not_after_ms,
            now_ms,
        });
    }
    if not_after_ms - now_ms > SIGNATURE_WINDOW_MS_MAX {
        return Err(CommandError::SignatureWindowTooLong {
            not_after_ms,
            now_ms,
        });
    }
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// The first command of every log: the central bank's key.
    Genesis {
        central_bank_key: PublicKey,
    },
    CreateOperator {
        name: String,
        public_key: PublicKey,
    },
    /// An operator brings reserves into its account at the central bank.
    FundReserves {
        operator: OperatorId,
        amount: Amount,
    },
    /// The central bank issues e-CNY to an operator against its reserves.
    Issue {
        operator: OperatorId,
        amount: Amount,
    },
    /// An operator returns e-CNY and gets its reserves back.
    Redeem {
        operator: OperatorId,
        amount: Amount,
    },
    SetClassLimits {
        operator: OperatorId,
        class: WalletClass,
        limits: ClassLimits,
    },
    /// The operator's bank core opens a customer deposit account.
    OpenDepositAccount {
        operator: OperatorId,
    },
    CashDeposit {
        account: AccountId,
        amount: Amount,
    },
    /// A class-4 wallet for a phone number (sealed in the log, see `sealed`).
    OpenWallet {
        operator: OperatorId,
        phone: Phone,
        public_key: PublicKey,
    },
    /// The holder's name and ID number, each sealed in the log; the front office has checked
    /// them in the clear (`check_personal_fields`).
    UpgradeWallet {
        wallet: WalletId,
        to: WalletClass,
        name: Option<PersonalText>,
        id_number: Option<PersonalText>,
        in_person: bool,
    },
    /// The account the wallet's money goes back to (deposits back, closing): the holder signs
    /// it, so no operator can steer a holder's money into an account of its choosing.
    BindBankAccount {
        wallet: WalletId,
        account: AccountId,
        auth: Option<HolderAuth>,
    },
    SetWalletStatus {
        wallet: WalletId,
        status: WalletStatus,
    },
    /// Closes a wallet; its balance goes back to the bound bank account.
    CloseWallet {
        wallet: WalletId,
    },
    /// Bank deposits into e-CNY.
    Exchange {
        wallet: WalletId,
        amount: Amount,
        key: IdempotencyKey,
        auth: Option<HolderAuth>,
    },
    /// e-CNY back into bank deposits.
    DepositBack {
        wallet: WalletId,
        amount: Amount,
        key: IdempotencyKey,
        auth: Option<HolderAuth>,
    },
    Pay {
        payer: WalletId,
        payee: WalletId,
        amount: Amount,
        key: IdempotencyKey,
        auth: Option<HolderAuth>,
    },
    /// Two-phase payment, phase one: hold the amount until posted, voided or timed out.
    Hold {
        payer: WalletId,
        payee: WalletId,
        amount: Amount,
        timeout_ms: u64,
        key: IdempotencyKey,
        auth: Option<HolderAuth>,
    },
    ResolveHold {
        hold: EventId,
        post: bool,
    },
    /// An operator registers a secure element it issued, bound to a wallet or (a visitor card)
    /// to none. A card bound to a wallet draws on the wallet's money, so its holder signs the
    /// binding; a visitor card holds only cash the operator took at its counter.
    RegisterDevice {
        operator: OperatorId,
        device: DeviceId,
        public_key: PublicKey,
        wallet: Option<WalletId>,
        caps: DeviceCaps,
        auth: Option<HolderAuth>,
    },
    /// Value into a secure element: from its wallet (signed by the wallet's holder), or from the
    /// vault against cash at a counter. `load_seq` numbers the operator's signed load order that
    /// the SE will accept once.
    LoadDevice {
        device: DeviceId,
        load_seq: u32,
        amount: Amount,
        auth: Option<HolderAuth>,
    },
    /// A secure element back online asks for a sync: the center answers a fresh nonce that the
    /// card's attestation must carry.
    BeginSync {
        device: DeviceId,
    },
    /// What a secure element did offline, as it attests it over the center's nonce: its
    /// counters, balance and every record and unload it keeps. The center verifies the
    /// attestation under `device_key` and the payer's signature on every record received, and
    /// checks that `device_key` is the device's registered key.
    SyncOffline {
        sync: AttestedSync,
        device_key: PublicKey,
    },
    /// Value back from a secure element, as its signed unload record says; the operator tier
    /// checks the signature under `device_key`, the center that it is the device's own key.
    UnloadDevice {
        unload: SignedUnload,
        device_key: PublicKey,
    },
    /// An operator signs up a merchant that settles into one of its verified wallets.
    OnboardMerchant {
        operator: OperatorId,
        wallet: WalletId,
        name: String,
        mcc: Mcc,
        /// GB/T 2260 administrative division code.
        region: u32,
    },
    AddTerminal {
        merchant: MerchantId,
        kind: TerminalKind,
    },
    /// A merchant presents an order (a dynamic QR): one amount, paid once, until it expires.
    CreateOrder {
        merchant: MerchantId,
        reference: String,
        amount: Amount,
        expires_at_ms: u64,
        terminal: u16,
        cash_on_delivery: bool,
    },
    /// A holder pays a merchant: by its printed QR, an order's QR, its tap zone, or a payment
    /// code (unsigned: the operator vouches, having redeemed the code for this wallet).
    PayMerchant {
        payer: WalletId,
        merchant: MerchantId,
        amount: Amount,
        channel: PaymentChannel,
        terminal: u16,
        order: Option<String>,
        key: IdempotencyKey,
        auth: Option<HolderAuth>,
    },
    /// A merchant gives back all or part of a payment, to the wallet that paid it.
    Refund {
        payment: EventId,
        amount: Amount,
        key: IdempotencyKey,
    },
    /// A holder pushes a sub-wallet to a merchant app.
    OpenSubWallet {
        wallet: WalletId,
        merchant: MerchantId,
        limits: SubWalletLimits,
        auth: Option<HolderAuth>,
    },
    /// The holder changes a sub-wallet's limits, or closes it (`open: false`).
    SetSubWallet {
        sub_wallet: SubWalletId,
        limits: SubWalletLimits,
        open: bool,
        auth: Option<HolderAuth>,
    },
    /// A merchant app charges the sub-wallet pushed to it.
    ChargeSubWallet {
        sub_wallet: SubWalletId,
        merchant: MerchantId,
        amount: Amount,
        order: Option<String>,
        key: IdempotencyKey,
    },
    /// A payer opens a smart contract from a template; escrow and prepaid fund it at once.
    OpenContract {
        payer: WalletId,
        payee: WalletId,
        template: Template,
        purpose: String,
        key: IdempotencyKey,
        auth: Option<HolderAuth>,
    },
    /// The payer confirms delivery: the escrow, or `units` lessons of a prepaid term.
    ConfirmContract {
        contract: ContractId,
        units: u32,
        key: IdempotencyKey,
        auth: Option<HolderAuth>,
    },
    /// A party ends a contract; what it still holds goes back to the payer.
    CancelContract {
        contract: ContractId,
        by_payee: bool,
        auth: Option<HolderAuth>,
    },
    /// A till or scan gun read a wallet's one-time payment code. The wallet's operator redeemed
    /// the code (its mac) for `payer` at `code_step` and vouches for it: no holder signature. The
    /// center takes each wallet's codes once, in step order, up to the operator's password-free
    /// cap.
    ChargePaymentCode {
        payer: WalletId,
        merchant: MerchantId,
        terminal: u16,
        amount: Amount,
        /// The 30-second step the code was made for (Unix seconds / 30).
        code_step: u64,
        key: IdempotencyKey,
    },
    /// The most one payment-code charge may take from the operator's wallets without the
    /// holder's confirmation.
    SetCodePaymentCap {
        operator: OperatorId,
        cap: Amount,
    },
    /// The sponsor's operator publishes a red-packet campaign, with the sponsor's commitment to
    /// its lottery seed, for the sponsor's wallet. `terms.id` is the next campaign id; sending the
    /// same terms again answers the same campaign.
    CreateCampaign {
        terms: CampaignTerms,
    },
    /// The whole budget from the sponsor's wallet into the campaign's pool, signed by the
    /// sponsor's wallet holder.
    FundCampaign {
        campaign: CampaignId,
        auth: Option<HolderAuth>,
    },
    /// A wallet registers for a campaign's lottery, inside its registration window; its
    /// operator submits it.
    RegisterForCampaign {
        campaign: CampaignId,
        wallet: WalletId,
        offline_trial: bool,
    },
    /// After registration closes, the sponsor reveals its seed; the registration center checks
    /// it against the commitment, runs the draw over the registrations and hands out the packets.
    DrawCampaign {
        campaign: CampaignId,
        seed: Seed,
    },
    /// A visitor card's bearer is paid out at the issuing operator's counter what the card is
    /// owed: payments it made that their payees can no longer credit.
    RefundAtCounter {
        device: DeviceId,
    },
    /// A wallet's operator links the wallet to its holder, for a stated legal reason; logged.
    Deanonymize {
        wallet: WalletId,
        reason: String,
    },
    /// An operator's administrator registers a staff member with one role.
    AddStaff {
        operator: OperatorId,
        role: StaffRole,
        label: String,
    },
    /// An operator revokes a staff member's credential for good, or replaces a merchant's or
    /// terminal's token (the old one stops working).
    RevokeCredential {
        subject: CredentialSubject,
    },
    /// At the counter, in one step: a deposit account opened with the holder's cash and bound to
    /// the wallet. Retried with its key, it answers the first account.
    OpenBankAccountWithCash {
        wallet: WalletId,
        cash: Amount,
        key: IdempotencyKey,
    },
    /// The central bank suspends an operator (its submissions refused, but for what lets its
    /// holders take their money out and lets it redeem), or reinstates it.
    SetOperatorSuspended {
        operator: OperatorId,
        suspended: bool,
    },
    /// The issuing operator blocks a secure element on its holder's report (lost, stolen): it
    /// loads and unloads nothing more, and the next revocation list names it to every terminal.
    BlockDevice {
        device: DeviceId,
    },
}

/// What a command did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Operator(OperatorId),
    Account(AccountId),
    Wallet(WalletId),
    Transfer(EventId),
    Synced(SyncReport),
    /// The nonce a secure element attests its sync over.
    SyncNonce(Nonce),
    Merchant(MerchantId),
    /// A terminal's number at its merchant.
    Terminal(u16),
    SubWallet(SubWalletId),
    Contract(ContractId),
    Campaign(CampaignId),
    /// A campaign's draw: how many packets went to winners.
    Drawn {
        campaign: CampaignId,
        winners: u32,
    },
    /// A logged de-anonymization; the operator reads the identity with this id.
    IdentityLookup(IdentityLookupId),
    Staff(StaffId),
    /// A bank account opened at the counter, with the cash deposit that funded it.
    BankAccount {
        account: AccountId,
        deposit: EventId,
    },
}

pub type CommandResult = Result<Outcome, CommandError>;

/// Who signed a submission.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    CentralBank,
    Operator(OperatorId),
}

impl Command {
    /// Bytes a wallet holder signs for `context` until `not_after_ms`: the domain, the context,
    /// the window's end, then the command's body (layout in `signing`).
    pub fn signing_bytes(&self, context: &SigningContext, not_after_ms: u64) -> Vec<u8> {
        let mut out = Writer::with_capacity(128);
        out.raw(COMMAND_DOMAIN)
            .raw(&context.deployment.0)
            .u16(context.operator.0)
            .u64(not_after_ms);
        self.encode_body(&mut out);
        out.bytes
    }

    /// The bytes the command's own signature is over, if it carries one.
    pub fn signed_message(&self) -> Option<Vec<u8>> {
        self.auth()
            .map(|auth| self.signing_bytes(&auth.context, auth.not_after_ms))
    }

    /// The command's tag and fields without the signature envelope (which commands that can be
    /// signed encode last).
    pub fn encode_body(&self, out: &mut Writer) {
        self.encode(out);
        if self.can_be_signed() {
            let envelope = match self.auth() {
                Some(_) => AUTH_ENVELOPE_BYTES,
                None => 1,
            };
            out.bytes.truncate(out.bytes.len() - envelope);
        }
    }

    /// The idempotency digest of a keyed command (see [`CommandDigest`]).
    pub fn digest(&self) -> CommandDigest {
        let mut body = Writer::with_capacity(64);
        self.encode_body(&mut body);
        let full = crate::certs::sm3(&body.bytes);
        let mut digest = [0u8; COMMAND_DIGEST_BYTES];
        digest.copy_from_slice(&full[..COMMAND_DIGEST_BYTES]);
        digest
    }

    /// The client's idempotency key of a keyed command.
    pub fn idempotency_key(&self) -> Option<IdempotencyKey> {
        match self {
            Command::Exchange { key, .. }
            | Command::DepositBack { key, .. }
            | Command::Pay { key, .. }
            | Command::Hold { key, .. }
            | Command::PayMerchant { key, .. }
            | Command::Refund { key, .. }
            | Command::ChargeSubWallet { key, .. }
            | Command::OpenContract { key, .. }
            | Command::ConfirmContract { key, .. }
            | Command::ChargePaymentCode { key, .. }
            | Command::OpenBankAccountWithCash { key, .. } => Some(*key),
            _ => None,
        }
    }

    /// What a suspended operator may still submit: its holders' money going back to their bank
    /// accounts, a freeze or unfreeze, and its own redemption; nothing that takes on new money.
    pub fn allowed_while_suspended(&self) -> bool {
        matches!(
            self,
            Command::DepositBack { .. }
                | Command::CloseWallet { .. }
                | Command::SetWalletStatus { .. }
                | Command::Redeem { .. }
        )
    }

    /// Whether the registration center books this command only on its holder's signature: every
    /// command that debits a holder's wallet, spends or commits its money, or changes what a
    /// merchant may take from it: exactly the commands with a signature envelope. An exchange
    /// debits the deposit account the operator says is the holder's, so it is signed too.
    pub fn needs_holder_signature(&self) -> bool {
        self.can_be_signed()
    }

    /// The wallet whose holder signs this command, when the command names it; `None` for a
    /// command no holder signs, and for sub-wallet changes and contract steps, whose wallet the
    /// state knows (`StateMachine::holder_signer`).
    pub fn named_signer(&self) -> Option<WalletId> {
        match self {
            Command::Exchange { wallet, .. }
            | Command::DepositBack { wallet, .. }
            | Command::OpenSubWallet { wallet, .. }
            | Command::BindBankAccount { wallet, .. } => Some(*wallet),
            Command::RegisterDevice { wallet, .. } => *wallet,
            Command::Pay { payer, .. }
            | Command::Hold { payer, .. }
            | Command::PayMerchant { payer, .. }
            | Command::OpenContract { payer, .. } => Some(*payer),
            _ => None,
        }
    }

    /// Whether the command has a holder's signature envelope, filled or not.
    fn can_be_signed(&self) -> bool {
        matches!(
            self,
            Command::Exchange { .. }
                | Command::DepositBack { .. }
                | Command::Pay { .. }
                | Command::Hold { .. }
                | Command::PayMerchant { .. }
                | Command::OpenSubWallet { .. }
                | Command::SetSubWallet { .. }
                | Command::OpenContract { .. }
                | Command::ConfirmContract { .. }
                | Command::CancelContract { .. }
                | Command::BindBankAccount { .. }
                | Command::RegisterDevice { .. }
                | Command::LoadDevice { .. }
                | Command::FundCampaign { .. }
        )
    }

    pub fn auth(&self) -> Option<&HolderAuth> {
        match self {
            Command::Exchange { auth, .. }
            | Command::DepositBack { auth, .. }
            | Command::Pay { auth, .. }
            | Command::Hold { auth, .. }
            | Command::PayMerchant { auth, .. }
            | Command::OpenSubWallet { auth, .. }
            | Command::SetSubWallet { auth, .. }
            | Command::OpenContract { auth, .. }
            | Command::ConfirmContract { auth, .. }
            | Command::CancelContract { auth, .. }
            | Command::BindBankAccount { auth, .. }
            | Command::RegisterDevice { auth, .. }
            | Command::LoadDevice { auth, .. }
            | Command::FundCampaign { auth, .. } => auth.as_ref(),
            _ => None,
        }
    }

    fn set_auth(&mut self, new: Option<HolderAuth>) {
        match self {
            Command::Exchange { auth, .. }
            | Command::DepositBack { auth, .. }
            | Command::Pay { auth, .. }
            | Command::Hold { auth, .. }
            | Command::PayMerchant { auth, .. }
            | Command::OpenSubWallet { auth, .. }
            | Command::SetSubWallet { auth, .. }
            | Command::OpenContract { auth, .. }
            | Command::ConfirmContract { auth, .. }
            | Command::CancelContract { auth, .. }
            | Command::BindBankAccount { auth, .. }
            | Command::RegisterDevice { auth, .. }
            | Command::LoadDevice { auth, .. }
            | Command::FundCampaign { auth, .. } => *auth = new,
            _ => {}
        }
    }

    /// Every text field is short enough for the log's encoding; a longer one is refused here,
    /// before anything signs or encodes the command.
    pub fn check_text_fields(&self) -> Result<(), CommandError> {
        use Command::*;
        let texts: Vec<(&'static str, &str)> = match self {
            CreateOperator { name, .. } => vec![("operator name", name)],
            UpgradeWallet {
                name, id_number, ..
            } => [("name", name), ("ID number", id_number)]
                .into_iter()
                .filter_map(|(field, text)| {
                    text.as_ref().and_then(|t| t.clear()).map(|t| (field, t))
                })
                .collect(),
            OnboardMerchant { name, .. } => vec![("merchant name", name)],
            CreateOrder { reference, .. } => vec![("order reference", reference)],
            PayMerchant { order, .. } | ChargeSubWallet { order, .. } => order
                .as_deref()
                .map(|t| ("order reference", t))
                .into_iter()
                .collect(),
            OpenContract { purpose, .. } => vec![("contract purpose", purpose)],
            CreateCampaign { terms } => vec![
                ("campaign name", terms.name.as_str()),
                ("sponsor name", terms.sponsor.name.as_str()),
            ],
            Deanonymize { reason, .. } => vec![("legal reason", reason)],
            AddStaff { label, .. } => vec![("staff label", label)],
            _ => Vec::new(),
        };
        match texts
            .into_iter()
            .find(|(_, text)| text.len() > STRING_BYTES_MAX)
        {
            Some((field, text)) => Err(CommandError::TextTooLong {
                field,
                bytes: text.len(),
                max: STRING_BYTES_MAX,
            }),
            None => Ok(()),
        }
    }

    /// A holder's phone, name and ID number as the front office must check them before they are
    /// sealed (after that no one but the operator can read them): a mainland mobile number, a
    /// name of printable text, a GB 11643 resident ID number.
    pub fn check_personal_fields(&self) -> Result<(), CommandError> {
        match self {
            Command::OpenWallet {
                phone: Phone::Clear(phone),
                ..
            } if !(10_000_000_000..20_000_000_000).contains(phone) => {
                Err(CommandError::MalformedPhone(phone.to_string()))
            }
            Command::UpgradeWallet {
                to,
                name,
                id_number,
                ..
            } => {
                if let Some(name) = name.as_ref().and_then(PersonalText::clear) {
                    if name.trim().is_empty() || name.chars().any(char::is_control) {
                        return Err(CommandError::KycIncomplete {
                            to: *to,
                            missing: "the holder's real name",
                        });
                    }
                }
                match id_number.as_ref().and_then(PersonalText::clear) {
                    Some(id) => crate::wallet::check_id_number(id),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// This command with every personal field sealed under `key`, if it carries one in the
    /// clear; `None` when there is nothing to seal.
    pub fn sealed(&self, key: impl FnOnce() -> IdentityKey) -> Option<Command> {
        match self {
            Command::OpenWallet {
                operator,
                phone: phone @ Phone::Clear(_),
                public_key,
            } => Some(Command::OpenWallet {
                operator: *operator,
                phone: key().seal_phone_field(phone),
                public_key: *public_key,
            }),
            Command::UpgradeWallet {
                wallet,
                to,
                name,
                id_number,
                in_person,
            } if [name, id_number]
                .iter()
                .any(|text| matches!(text, Some(PersonalText::Clear(_)))) =>
            {
                let key = key();
                let seal = |field, text: &Option<PersonalText>| {
                    text.as_ref().map(|text| key.seal_text_field(field, text))
                };
                Some(Command::UpgradeWallet {
                    wallet: *wallet,
                    to: *to,
                    name: seal(Field::Name, name),
                    id_number: seal(Field::IdNumber, id_number),
                    in_person: *in_person,
                })
            }
            _ => None,
        }
    }

    /// Signs this command with the holder's key for `context`, good until `not_after_ms`.
    pub fn sign(mut self, key: &KeyPair, context: &SigningContext, not_after_ms: u64) -> Command {
        let signature = key.sign(&self.signing_bytes(context, not_after_ms));
        self.set_auth(Some(HolderAuth {
            public_key: key.public_key(),
            signature,
            context: *context,
            not_after_ms,
        }));
        self
    }

    /// This command carrying a signature made elsewhere (a request's fields, bound to its
    /// context by the operator that received it).
    pub fn with_auth(mut self, auth: HolderAuth) -> Command {
        self.set_auth(Some(auth));
        self
    }

    /// Verifies the holder's signature, if any, over the context and window it names. Stateless:
    /// whether the key is the wallet's own, the context this one and the window open is checked
    /// by the state machine.
    pub fn verify_auth(&self) -> Result<(), CommandError> {
        match (self.auth(), self.signed_message()) {
            (Some(auth), Some(message)) => auth
                .public_key
                .verify(&message, &auth.signature)
                .map_err(|_| CommandError::SignatureInvalid),
            _ => Ok(()),
        }
    }
}

/// One secure-element signature a command carries: the key, the digest signed, the signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeSigned {
    pub key: PublicKey,
    pub digest: [u8; 32],
    pub signature: Signature,
}

/// Every secure-element signature `command` carries, for the center's door and the operator
/// tier to verify without state: a sync's attestation under the reporting device's key and the
/// payer's signature on each record the device received; an unload's signature. A sync whose
/// entries are not the ones its attestation binds is refused here. Whether each key is the
/// registered one is the state machine's check.
pub fn se_signatures(command: &Command) -> Result<Vec<SeSigned>, CommandError> {
    match command {
        Command::SyncOffline { sync, device_key } => {
            let attestation = &sync.attestation;
            if !sync.entries_match() {
                return Err(CommandError::SyncNotAttested(attestation.device));
            }
            let received = sync
                .log
                .iter()
                .filter(|entry| entry.role == EntryRole::Received)
                .map(|entry| SeSigned {
                    key: entry.peer_key,
                    digest: entry.signed.record.digest(),
                    signature: entry.signed.signature,
                });
            let own = SeSigned {
                key: *device_key,
                digest: attestation.digest(),
                signature: attestation.signature,
            };
            Ok(std::iter::once(own).chain(received).collect())
        }
        Command::UnloadDevice { unload, device_key } => Ok(vec![SeSigned {
            key: *device_key,
            digest: unload.digest(),
            signature: unload.signature,
        }]),
        _ => Ok(Vec::new()),
    }
}

/// A batch of commands signed once by its origin: what an operator hands the registration center.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submission {
    pub origin: Origin,
    /// Encoded commands (count, then each command); kept encoded so signing, logging and replay
    /// never re-encode.
    pub commands: Vec<u8>,
    pub signature: Signature,
}

impl Submission {
    /// Encodes and signs `commands`; every holder's phone, name and ID number is sealed first
    /// under the signer's identity key (`sealed`), so none is ever encoded in the clear.
    pub fn new(origin: Origin, commands: &[Command], signer: &KeyPair) -> Submission {
        let mut out = Writer::with_capacity(commands.len() * 64 + 4);
        out.u32(commands.len() as u32);
        let mut identity_key: Option<IdentityKey> = None;
        for command in commands {
            let key = || {
                identity_key
                    .get_or_insert_with(|| IdentityKey::of_operator(signer))
                    .clone()
            };
            match command.sealed(key) {
                Some(sealed) => sealed.encode(&mut out),
                None => command.encode(&mut out),
            }
        }
        let digest = batch_digest(origin, &out.bytes);
        Submission {
            origin,
            signature: signer.sign(&digest),
            commands: out.bytes,
        }
    }

    pub fn verify(&self, key: &PublicKey) -> Result<(), CommandError> {
        key.verify(&batch_digest(self.origin, &self.commands), &self.signature)
            .map_err(|_| CommandError::BatchSignatureInvalid)
    }

    pub fn decode_commands(&self) -> Result<Vec<Command>, DecodeError> {
        decode_commands(&self.commands)
    }

    /// The log entry: version, time assigned by the center, origin, signature, commands.
    pub fn encode_entry(&self, timestamp_ms: u64, out: &mut Vec<u8>) {
        let mut writer = Writer {
            bytes: std::mem::take(out),
        };
        writer.u8(SUBMISSION_VERSION).u64(timestamp_ms);
        encode_origin(self.origin, &mut writer);
        writer.raw(&self.signature.0).raw(&self.commands);
        *out = writer.bytes;
    }
}

fn batch_digest(origin: Origin, commands: &[u8]) -> [u8; 32] {
    let mut prefix = Writer::new();
    prefix.raw(BATCH_DOMAIN);
    encode_origin(origin, &mut prefix);
    sm3_parts(&[&prefix.bytes, commands])
}

fn encode_origin(origin: Origin, out: &mut Writer) {
    match origin {
        Origin::CentralBank => out.u8(0).u16(0),
        Origin::Operator(id) => out.u8(1).u16(id.0),
    };
}

/// A decoded log entry; commands are decoded lazily by `commands()` so replay does not allocate.
pub struct Entry<'a> {
    pub timestamp_ms: u64,
    pub origin: Origin,
    pub signature: Signature,
    pub commands: &'a [u8],
}

impl<'a> Entry<'a> {
    pub fn decode(payload: &'a [u8]) -> Result<Entry<'a>, DecodeError> {
        let mut input = Reader::new(payload);
        let version = input.u8("entry version")?;
        if version != SUBMISSION_VERSION {
            return Err(DecodeError {
                what: "entry version",
                offset: 0,
            });
        }
        let timestamp_ms = input.u64("entry timestamp")?;
        let origin = match (input.u8("origin")?, input.u16("origin operator")?) {
            (0, _) => Origin::CentralBank,
            (1, id) => Origin::Operator(OperatorId(id)),
            _ => {
                return Err(DecodeError {
                    what: "origin",
                    offset: 9,
                })
            }
        };
        let signature = Signature(input.array("batch signature")?);
        let commands = input.take(input.remaining(), "commands")?;
        Ok(Entry {
            timestamp_ms,
            origin,
            signature,
            commands,
        })
    }

    pub fn commands(&self) -> Result<CommandIter<'a>, DecodeError> {
        let mut input = Reader::new(self.commands);
        let count = input.u32("command count")? as usize;
        if count > SUBMISSION_COMMANDS_MAX {
            return Err(DecodeError {
                what: "command count",
                offset: 0,
            });
        }
        Ok(CommandIter { input, left: count })
    }
}

pub struct CommandIter<'a> {
    input: Reader<'a>,
    left: usize,
}

impl Iterator for CommandIter<'_> {
    type Item = Result<Command, DecodeError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        Some(Command::decode(&mut self.input))
    }
}

/// Checks that encoded commands decode completely, without keeping them.
pub fn check_commands(bytes: &[u8]) -> Result<usize, DecodeError> {
    check_commands_with(bytes, |_| {})
}

/// Checks that encoded commands decode completely, handing each to `visit`.
pub fn check_commands_with(
    bytes: &[u8],
    mut visit: impl FnMut(Command),
) -> Result<usize, DecodeError> {
    let mut input = Reader::new(bytes);
    let count = input.u32("command count")? as usize;
    if count > SUBMISSION_COMMANDS_MAX {
        return Err(DecodeError {
            what: "command count",
            offset: 0,
        });
    }
    for _ in 0..count {
        visit(Command::decode(&mut input)?);
    }
    if !input.is_empty() {
        return Err(DecodeError {
            what: "trailing bytes after commands",
            offset: input.offset(),
        });
    }
    Ok(count)
}

pub fn decode_commands(bytes: &[u8]) -> Result<Vec<Command>, DecodeError> {
    let mut input = Reader::new(bytes);
    let count = input.u32("command count")? as usize;
    if count > SUBMISSION_COMMANDS_MAX {
        return Err(DecodeError {
            what: "command count",
            offset: 0,
        });
    }
    let commands = (0..count)
        .map(|_| Command::decode(&mut input))
        .collect::<Result<Vec<_>, _>>()?;
    if !input.is_empty() {
        return Err(DecodeError {
            what: "trailing bytes after commands",
            offset: input.offset(),
        });
    }
    Ok(commands)
}

mod tag {
    pub const GENESIS: u8 = 1;
    pub const CREATE_OPERATOR: u8 = 2;
    pub const FUND_RESERVES: u8 = 3;
    pub const ISSUE: u8 = 4;
    pub const REDEEM: u8 = 5;
    pub const SET_CLASS_LIMITS: u8 = 6;
    pub const OPEN_DEPOSIT_ACCOUNT: u8 = 7;
    pub const CASH_DEPOSIT: u8 = 8;
    pub const OPEN_WALLET: u8 = 9;
    pub const UPGRADE_WALLET: u8 = 10;
    pub const BIND_BANK_ACCOUNT: u8 = 11;
    pub const SET_WALLET_STATUS: u8 = 12;
    pub const CLOSE_WALLET: u8 = 13;
    pub const EXCHANGE: u8 = 14;
    pub const DEPOSIT_BACK: u8 = 15;
    pub const PAY: u8 = 16;
    pub const HOLD: u8 = 17;
    pub const RESOLVE_HOLD: u8 = 18;
    pub const REGISTER_DEVICE: u8 = 19;
    pub const LOAD_DEVICE: u8 = 20;
    pub const SYNC_OFFLINE: u8 = 21;
    pub const UNLOAD_DEVICE: u8 = 22;
    pub const ONBOARD_MERCHANT: u8 = 23;
    pub const ADD_TERMINAL: u8 = 24;
    pub const CREATE_ORDER: u8 = 25;
    pub const PAY_MERCHANT: u8 = 26;
    pub const REFUND: u8 = 27;
    pub const OPEN_SUB_WALLET: u8 = 28;
    pub const SET_SUB_WALLET: u8 = 29;
    pub const CHARGE_SUB_WALLET: u8 = 30;
    pub const OPEN_CONTRACT: u8 = 31;
    pub const CONFIRM_CONTRACT: u8 = 32;
    pub const CANCEL_CONTRACT: u8 = 33;
    pub const CREATE_CAMPAIGN: u8 = 34;
    pub const FUND_CAMPAIGN: u8 = 35;
    pub const REGISTER_FOR_CAMPAIGN: u8 = 36;
    pub const DRAW_CAMPAIGN: u8 = 37;
    pub const DEANONYMIZE: u8 = 38;
    pub const REFUND_AT_COUNTER: u8 = 39;
    pub const CHARGE_PAYMENT_CODE: u8 = 40;
    pub const SET_CODE_PAYMENT_CAP: u8 = 41;
    pub const BEGIN_SYNC: u8 = 42;
    // Parties and the counter: tags from 64 on.
    pub const ADD_STAFF: u8 = 64;
    pub const REVOKE_CREDENTIAL: u8 = 65;
    pub const OPEN_BANK_ACCOUNT_WITH_CASH: u8 = 66;
    pub const SET_OPERATOR_SUSPENDED: u8 = 67;
    pub const BLOCK_DEVICE: u8 = 68;
}

fn decode_optional_text(input: &mut Reader<'_>) -> Result<Option<PersonalText>, DecodeError> {
    Ok(match input.bool("personal text present")? {
        true => Some(decode_text(input)?),
        false => None,
    })
}

fn encode_sub_wallet_limits(limits: &SubWalletLimits, out: &mut Writer) {
    out.i64(limits.per_payment.fen()).i64(limits.daily.fen());
}

fn decode_sub_wallet_limits(input: &mut Reader<'_>) -> Result<SubWalletLimits, DecodeError> {
    Ok(SubWalletLimits {
        per_payment: Amount::from_fen(input.i64("per-payment limit")?),
        daily: Amount::from_fen(input.i64("daily limit")?),
    })
}

/// The signature envelope, last in every command that can carry one: a flag, then the key, the
/// signature, the context and the window's end.
fn encode_auth(auth: &Option<HolderAuth>, out: &mut Writer) {
    match auth {
        Some(auth) => out
            .u8(1)
            .raw(&auth.public_key.0)
            .raw(&auth.signature.0)
            .raw(&auth.context.deployment.0)
            .u16(auth.context.operator.0)
            .u64(auth.not_after_ms),
        None => out.u8(0),
    };
}

fn decode_auth(input: &mut Reader<'_>) -> Result<Option<HolderAuth>, DecodeError> {
    if !input.bool("auth flag")? {
        return Ok(None);
    }
    Ok(Some(HolderAuth {
        public_key: PublicKey(input.array("holder public key")?),
        signature: Signature(input.array("holder signature")?),
        context: SigningContext {
            deployment: DeploymentId(input.array("signed deployment")?),
            operator: OperatorId(input.u16("signed operator")?),
        },
        not_after_ms: input.u64("signature not after")?,
    }))
}

impl Command {
    pub fn encode(&self, out: &mut Writer) {
        use Command::*;
        match self {
            Genesis { central_bank_key } => out.u8(tag::GENESIS).raw(&central_bank_key.0),
            CreateOperator { name, public_key } => {
                out.u8(tag::CREATE_OPERATOR).str(name).raw(&public_key.0)
            }
            FundReserves { operator, amount } => {
                out.u8(tag::FUND_RESERVES).u16(operator.0).i64(amount.fen())
            }
            Issue { operator, amount } => out.u8(tag::ISSUE).u16(operator.0).i64(amount.fen()),
            Redeem { operator, amount } => out.u8(tag::REDEEM).u16(operator.0).i64(amount.fen()),
            SetClassLimits {
                operator,
                class,
                limits,
            } => {
                out.u8(tag::SET_CLASS_LIMITS)
                    .u16(operator.0)
                    .u8(*class as u8);
                limits.encode(out);
                out
            }
            OpenDepositAccount { operator } => out.u8(tag::OPEN_DEPOSIT_ACCOUNT).u16(operator.0),
            CashDeposit { account, amount } => {
                out.u8(tag::CASH_DEPOSIT).u32(account.0).i64(amount.fen())
            }
            OpenWallet {
                operator,
                phone,
                public_key,
            } => {
                out.u8(tag::OPEN_WALLET).u16(operator.0);
                encode_phone(phone, out);
                out.raw(&public_key.0)
            }
            UpgradeWallet {
                wallet,
                to,
                name,
                id_number,
                in_person,
            } => {
                out.u8(tag::UPGRADE_WALLET).u32(wallet.0).u8(*to as u8);
                for text in [name, id_number] {
                    match text {
                        Some(text) => encode_text(text, out.u8(1)),
                        None => {
                            out.u8(0);
                        }
                    }
                }
                out.u8(u8::from(*in_person))
            }
            BindBankAccount {
                wallet,
                account,
                auth,
            } => {
                out.u8(tag::BIND_BANK_ACCOUNT).u32(wallet.0).u32(account.0);
                encode_auth(auth, out);
                out
            }
            SetWalletStatus { wallet, status } => out
                .u8(tag::SET_WALLET_STATUS)
                .u32(wallet.0)
                .u8(*status as u8),
            CloseWallet { wallet } => out.u8(tag::CLOSE_WALLET).u32(wallet.0),
            Exchange {
                wallet,
                amount,
                key,
                auth,
            } => {
                out.u8(tag::EXCHANGE)
                    .u32(wallet.0)
                    .i64(amount.fen())
                    .u128(key.0);
                encode_auth(auth, out);
                out
            }
            DepositBack {
                wallet,
                amount,
                key,
                auth,
            } => {
                out.u8(tag::DEPOSIT_BACK)
                    .u32(wallet.0)
                    .i64(amount.fen())
                    .u128(key.0);
                encode_auth(auth, out);
                out
            }
            Pay {
                payer,
                payee,
                amount,
                key,
                auth,
            } => {
                out.u8(tag::PAY)
                    .u32(payer.0)
                    .u32(payee.0)
                    .i64(amount.fen())
                    .u128(key.0);
                encode_auth(auth, out);
                out
            }
            Hold {
                payer,
                payee,
                amount,
                timeout_ms,
                key,
                auth,
            } => {
                out.u8(tag::HOLD)
                    .u32(payer.0)
                    .u32(payee.0)
                    .i64(amount.fen())
                    .u64(*timeout_ms)
                    .u128(key.0);
                encode_auth(auth, out);
                out
            }
            ResolveHold { hold, post } => out.u8(tag::RESOLVE_HOLD).u64(hold.0).u8(u8::from(*post)),
            RegisterDevice {
                operator,
                device,
                public_key,
                wallet,
                caps,
                auth,
            } => {
                out.u8(tag::REGISTER_DEVICE)
                    .u16(operator.0)
                    .u64(device.0)
                    .raw(&public_key.0);
                out.u32(wallet.map_or(0, |w| w.0));
                encode_caps(caps, out);
                encode_auth(auth, out);
                out
            }
            LoadDevice {
                device,
                load_seq,
                amount,
                auth,
            } => {
                out.u8(tag::LOAD_DEVICE)
                    .u64(device.0)
                    .u32(*load_seq)
                    .i64(amount.fen());
                encode_auth(auth, out);
                out
            }
            UnloadDevice { unload, device_key } => {
                out.u8(tag::UNLOAD_DEVICE);
                unload.encode_into(out);
                out.raw(&device_key.0)
            }
            BeginSync { device } => out.u8(tag::BEGIN_SYNC).u64(device.0),
            SyncOffline { sync, device_key } => {
                out.u8(tag::SYNC_OFFLINE).raw(&device_key.0);
                sync.encode_into(out);
                out
            }
            OnboardMerchant {
                operator,
                wallet,
                name,
                mcc,
                region,
            } => out
                .u8(tag::ONBOARD_MERCHANT)
                .u16(operator.0)
                .u32(wallet.0)
                .str(name)
                .u16(mcc.code())
                .u32(*region),
            AddTerminal { merchant, kind } => {
                out.u8(tag::ADD_TERMINAL).u32(merchant.0).u8(*kind as u8)
            }
            CreateOrder {
                merchant,
                reference,
                amount,
                expires_at_ms,
                terminal,
                cash_on_delivery,
            } => out
                .u8(tag::CREATE_ORDER)
                .u32(merchant.0)
                .str(reference)
                .i64(amount.fen())
                .u64(*expires_at_ms)
                .u16(*terminal)
                .u8(u8::from(*cash_on_delivery)),
            PayMerchant {
                payer,
                merchant,
                amount,
                channel,
                terminal,
                order,
                key,
                auth,
            } => {
                out.u8(tag::PAY_MERCHANT)
                    .u32(payer.0)
                    .u32(merchant.0)
                    .i64(amount.fen())
                    .u8(*channel as u8)
                    .u16(*terminal)
                    .opt_str(order.as_deref())
                    .u128(key.0);
                encode_auth(auth, out);
                out
            }
            Refund {
                payment,
                amount,
                key,
            } => out
                .u8(tag::REFUND)
                .u64(payment.0)
                .i64(amount.fen())
                .u128(key.0),
            OpenSubWallet {
                wallet,
                merchant,
                limits,
                auth,
            } => {
                out.u8(tag::OPEN_SUB_WALLET).u32(wallet.0).u32(merchant.0);
                encode_sub_wallet_limits(limits, out);
                encode_auth(auth, out);
                out
            }
            SetSubWallet {
                sub_wallet,
                limits,
                open,
                auth,
            } => {
                out.u8(tag::SET_SUB_WALLET).u32(sub_wallet.0);
                encode_sub_wallet_limits(limits, out);
                out.u8(u8::from(*open));
                encode_auth(auth, out);
                out
            }
            ChargeSubWallet {
                sub_wallet,
                merchant,
                amount,
                order,
                key,
            } => out
                .u8(tag::CHARGE_SUB_WALLET)
                .u32(sub_wallet.0)
                .u32(merchant.0)
                .i64(amount.fen())
                .opt_str(order.as_deref())
                .u128(key.0),
            OpenContract {
                payer,
                payee,
                template,
                purpose,
                key,
                auth,
            } => {
                out.u8(tag::OPEN_CONTRACT).u32(payer.0).u32(payee.0);
                template.encode(out);
                out.str(purpose).u128(key.0);
                encode_auth(auth, out);
                out
            }
            ConfirmContract {
                contract,
                units,
                key,
                auth,
            } => {
                out.u8(tag::CONFIRM_CONTRACT)
                    .u32(contract.0)
                    .u32(*units)
                    .u128(key.0);
                encode_auth(auth, out);
                out
            }
            CancelContract {
                contract,
                by_payee,
                auth,
            } => {
                out.u8(tag::CANCEL_CONTRACT)
                    .u32(contract.0)
                    .u8(u8::from(*by_payee));
                encode_auth(auth, out);
                out
            }
            CreateCampaign { terms } => {
                out.u8(tag::CREATE_CAMPAIGN);
                terms.encode(out);
                out
            }
            FundCampaign { campaign, auth } => {
                out.u8(tag::FUND_CAMPAIGN).u32(campaign.0);
                encode_auth(auth, out);
                out
            }
            RegisterForCampaign {
                campaign,
                wallet,
                offline_trial,
            } => out
                .u8(tag::REGISTER_FOR_CAMPAIGN)
                .u32(campaign.0)
                .u32(wallet.0)
                .u8(u8::from(*offline_trial)),
            DrawCampaign { campaign, seed } => out
                .u8(tag::DRAW_CAMPAIGN)
                .u32(campaign.0)
                .raw(seed.as_bytes()),
            Deanonymize { wallet, reason } => out.u8(tag::DEANONYMIZE).u32(wallet.0).str(reason),
            RefundAtCounter { device } => out.u8(tag::REFUND_AT_COUNTER).u64(device.0),
            ChargePaymentCode {
                payer,
                merchant,
                terminal,
                amount,
                code_step,
                key,
            } => out
                .u8(tag::CHARGE_PAYMENT_CODE)
                .u32(payer.0)
                .u32(merchant.0)
                .u16(*terminal)
                .i64(amount.fen())
                .u64(*code_step)
                .u128(key.0),
            SetCodePaymentCap { operator, cap } => out
                .u8(tag::SET_CODE_PAYMENT_CAP)
                .u16(operator.0)
                .i64(cap.fen()),
            AddStaff {
                operator,
                role,
                label,
            } => out
                .u8(tag::ADD_STAFF)
                .u16(operator.0)
                .u8(*role as u8)
                .str(label),
            RevokeCredential { subject } => {
                out.u8(tag::REVOKE_CREDENTIAL);
                encode_subject(*subject, out);
                out
            }
            OpenBankAccountWithCash { wallet, cash, key } => out
                .u8(tag::OPEN_BANK_ACCOUNT_WITH_CASH)
                .u32(wallet.0)
                .i64(cash.fen())
                .u128(key.0),
            SetOperatorSuspended {
                operator,
                suspended,
            } => out
                .u8(tag::SET_OPERATOR_SUSPENDED)
                .u16(operator.0)
                .u8(u8::from(*suspended)),
            BlockDevice { device } => out.u8(tag::BLOCK_DEVICE).u64(device.0),
        };
    }

    pub fn decode(input: &mut Reader<'_>) -> Result<Command, DecodeError> {
        use Command::*;
        let start = input.offset();
        let amount = |input: &mut Reader<'_>| input.i64("amount").map(Amount::from_fen);
        let key = |input: &mut Reader<'_>| input.u128("idempotency key").map(IdempotencyKey);
        let command = match input.u8("command tag")? {
            tag::GENESIS => Genesis {
                central_bank_key: PublicKey(input.array("central bank key")?),
            },
            tag::CREATE_OPERATOR => CreateOperator {
                name: input.string("operator name")?,
                public_key: PublicKey(input.array("operator key")?),
            },
            tag::FUND_RESERVES => FundReserves {
                operator: OperatorId(input.u16("operator")?),
                amount: amount(input)?,
            },
            tag::ISSUE => Issue {
                operator: OperatorId(input.u16("operator")?),
                amount: amount(input)?,
            },
            tag::REDEEM => Redeem {
                operator: OperatorId(input.u16("operator")?),
                amount: amount(input)?,
            },
            tag::SET_CLASS_LIMITS => SetClassLimits {
                operator: OperatorId(input.u16("operator")?),
                class: WalletClass::from_u8(input.u8("class")?).ok_or(DecodeError {
                    what: "class",
                    offset: start,
                })?,
                limits: ClassLimits::decode(input)?,
            },
            tag::OPEN_DEPOSIT_ACCOUNT => OpenDepositAccount {
                operator: OperatorId(input.u16("operator")?),
            },
            tag::CASH_DEPOSIT => CashDeposit {
                account: AccountId(input.u32("account")?),
                amount: amount(input)?,
            },
            tag::OPEN_WALLET => OpenWallet {
                operator: OperatorId(input.u16("operator")?),
                phone: decode_phone(input)?,
                public_key: PublicKey(input.array("wallet key")?),
            },
            tag::UPGRADE_WALLET => UpgradeWallet {
                wallet: WalletId(input.u32("wallet")?),
                to: WalletClass::from_u8(input.u8("class")?).ok_or(DecodeError {
                    what: "class",
                    offset: start,
                })?,
                name: decode_optional_text(input)?,
                id_number: decode_optional_text(input)?,
                in_person: input.bool("in person")?,
            },
            tag::BIND_BANK_ACCOUNT => BindBankAccount {
                wallet: WalletId(input.u32("wallet")?),
                account: AccountId(input.u32("account")?),
                auth: decode_auth(input)?,
            },
            tag::SET_WALLET_STATUS => SetWalletStatus {
                wallet: WalletId(input.u32("wallet")?),
                status: WalletStatus::from_u8(input.u8("status")?).ok_or(DecodeError {
                    what: "status",
                    offset: start,
                })?,
            },
            tag::CLOSE_WALLET => CloseWallet {
                wallet: WalletId(input.u32("wallet")?),
            },
            tag::EXCHANGE => Exchange {
                wallet: WalletId(input.u32("wallet")?),
                amount: amount(input)?,
                key: key(input)?,
                auth: decode_auth(input)?,
            },
            tag::DEPOSIT_BACK => DepositBack {
                wallet: WalletId(input.u32("wallet")?),
                amount: amount(input)?,
                key: key(input)?,
                auth: decode_auth(input)?,
            },
            tag::PAY => Pay {
                payer: WalletId(input.u32("payer")?),
                payee: WalletId(input.u32("payee")?),
                amount: amount(input)?,
                key: key(input)?,
                auth: decode_auth(input)?,
            },
            tag::HOLD => Hold {
                payer: WalletId(input.u32("payer")?),
                payee: WalletId(input.u32("payee")?),
                amount: amount(input)?,
                timeout_ms: input.u64("timeout")?,
                key: key(input)?,
                auth: decode_auth(input)?,
            },
            tag::RESOLVE_HOLD => ResolveHold {
                hold: EventId(input.u64("hold")?),
                post: input.bool("post")?,
            },
            tag::REGISTER_DEVICE => RegisterDevice {
                operator: OperatorId(input.u16("operator")?),
                device: DeviceId(input.u64("device")?),
                public_key: PublicKey(input.array("device key")?),
                wallet: Some(input.u32("device wallet")?)
                    .filter(|w| *w != 0)
                    .map(WalletId),
                caps: decode_caps(input)?,
                auth: decode_auth(input)?,
            },
            tag::LOAD_DEVICE => LoadDevice {
                device: DeviceId(input.u64("device")?),
                load_seq: input.u32("load seq")?,
                amount: amount(input)?,
                auth: decode_auth(input)?,
            },
            tag::UNLOAD_DEVICE => UnloadDevice {
                unload: SignedUnload::decode_from(input)?,
                device_key: PublicKey(input.array("device key")?),
            },
            tag::BEGIN_SYNC => BeginSync {
                device: DeviceId(input.u64("device")?),
            },
            tag::SYNC_OFFLINE => SyncOffline {
                device_key: PublicKey(input.array("device key")?),
                sync: AttestedSync::decode_from(input)?,
            },
            tag::ONBOARD_MERCHANT => OnboardMerchant {
                operator: OperatorId(input.u16("operator")?),
                wallet: WalletId(input.u32("merchant wallet")?),
                name: input.string("merchant name")?,
                mcc: Mcc::new(input.u16("mcc")?).ok_or(DecodeError {
                    what: "mcc",
                    offset: start,
                })?,
                region: input.u32("region")?,
            },
            tag::ADD_TERMINAL => AddTerminal {
                merchant: MerchantId(input.u32("merchant")?),
                kind: TerminalKind::from_u8(input.u8("terminal kind")?).ok_or(DecodeError {
                    what: "terminal kind",
                    offset: start,
                })?,
            },
            tag::CREATE_ORDER => CreateOrder {
                merchant: MerchantId(input.u32("merchant")?),
                reference: input.string("order reference")?,
                amount: amount(input)?,
                expires_at_ms: input.u64("order expiry")?,
                terminal: input.u16("terminal")?,
                cash_on_delivery: input.bool("cash on delivery")?,
            },
            tag::PAY_MERCHANT => PayMerchant {
                payer: WalletId(input.u32("payer")?),
                merchant: MerchantId(input.u32("merchant")?),
                amount: amount(input)?,
                channel: PaymentChannel::from_u8(input.u8("channel")?).ok_or(DecodeError {
                    what: "channel",
                    offset: start,
                })?,
                terminal: input.u16("terminal")?,
                order: input.opt_string("order reference")?,
                key: key(input)?,
                auth: decode_auth(input)?,
            },
            tag::REFUND => Refund {
                payment: EventId(input.u64("refunded payment")?),
                amount: amount(input)?,
                key: key(input)?,
            },
            tag::OPEN_SUB_WALLET => OpenSubWallet {
                wallet: WalletId(input.u32("wallet")?),
                merchant: MerchantId(input.u32("merchant")?),
                limits: decode_sub_wallet_limits(input)?,
                auth: decode_auth(input)?,
            },
            tag::SET_SUB_WALLET => SetSubWallet {
                sub_wallet: SubWalletId(input.u32("sub-wallet")?),
                limits: decode_sub_wallet_limits(input)?,
                open: input.bool("sub-wallet open")?,
                auth: decode_auth(input)?,
            },
            tag::CHARGE_SUB_WALLET => ChargeSubWallet {
                sub_wallet: SubWalletId(input.u32("sub-wallet")?),
                merchant: MerchantId(input.u32("merchant")?),
                amount: amount(input)?,
                order: input.opt_string("order reference")?,
                key: key(input)?,
            },
            tag::OPEN_CONTRACT => OpenContract {
                payer: WalletId(input.u32("payer")?),
                payee: WalletId(input.u32("payee")?),
                template: Template::decode(input)?,
                purpose: input.string("purpose")?,
                key: key(input)?,
                auth: decode_auth(input)?,
            },
            tag::CONFIRM_CONTRACT => ConfirmContract {
                contract: ContractId(input.u32("contract")?),
                units: input.u32("units")?,
                key: key(input)?,
                auth: decode_auth(input)?,
            },
            tag::CANCEL_CONTRACT => CancelContract {
                contract: ContractId(input.u32("contract")?),
                by_payee: input.bool("by payee")?,
                auth: decode_auth(input)?,
            },
            tag::CREATE_CAMPAIGN => CreateCampaign {
                terms: CampaignTerms::decode(input)?,
            },
            tag::FUND_CAMPAIGN => FundCampaign {
                campaign: CampaignId(input.u32("campaign")?),
                auth: decode_auth(input)?,
            },
            tag::REGISTER_FOR_CAMPAIGN => RegisterForCampaign {
                campaign: CampaignId(input.u32("campaign")?),
                wallet: WalletId(input.u32("wallet")?),
                offline_trial: input.bool("offline trial")?,
            },
            tag::DRAW_CAMPAIGN => DrawCampaign {
                campaign: CampaignId(input.u32("campaign")?),
                seed: Seed::from_bytes(input.array("seed")?),
            },
            tag::DEANONYMIZE => Deanonymize {
                wallet: WalletId(input.u32("wallet")?),
                reason: input.string("reason")?,
            },
            tag::REFUND_AT_COUNTER => RefundAtCounter {
                device: DeviceId(input.u64("device")?),
            },
            tag::CHARGE_PAYMENT_CODE => ChargePaymentCode {
                payer: WalletId(input.u32("payer")?),
                merchant: MerchantId(input.u32("merchant")?),
                terminal: input.u16("terminal")?,
                amount: amount(input)?,
                code_step: input.u64("code step")?,
                key: key(input)?,
            },
            tag::SET_CODE_PAYMENT_CAP => SetCodePaymentCap {
                operator: OperatorId(input.u16("operator")?),
                cap: amount(input)?,
            },
            tag::ADD_STAFF => AddStaff {
                operator: OperatorId(input.u16("operator")?),
                role: StaffRole::from_u8(input.u8("staff role")?).ok_or(DecodeError {
                    what: "staff role",
                    offset: start,
                })?,
                label: input.string("staff label")?,
            },
            tag::REVOKE_CREDENTIAL => RevokeCredential {
                subject: decode_subject(input)?,
            },
            tag::OPEN_BANK_ACCOUNT_WITH_CASH => OpenBankAccountWithCash {
                wallet: WalletId(input.u32("wallet")?),
                cash: amount(input)?,
                key: key(input)?,
            },
            tag::SET_OPERATOR_SUSPENDED => SetOperatorSuspended {
                operator: OperatorId(input.u16("operator")?),
                suspended: input.bool("suspended")?,
            },
            tag::BLOCK_DEVICE => BlockDevice {
                device: DeviceId(input.u64("device")?),
            },
            _ => {
                return Err(DecodeError {
                    what: "command tag",
                    offset: start,
                })
            }
        };
        Ok(command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 2026-11-23 12:05 Beijing time.
    const NOT_AFTER_MS: u64 = 1_795_406_700_000;

    fn context() -> SigningContext {
        SigningContext {
            deployment: DeploymentId([7; 16]),
            operator: OperatorId(1),
        }
    }

    #[test]
    fn a_window_is_good_until_its_end_and_never_longer_than_the_most() {
        let now = 1_795_406_400_000;
        assert_eq!(check_window(now, now), Ok(()));
        assert_eq!(check_window(now + SIGNATURE_WINDOW_MS_MAX, now), Ok(()));
        let late = check_window(now - 1, now).unwrap_err();
        assert_eq!(late.code(), "SIGNATURE_EXPIRED");
        let long = check_window(now + SIGNATURE_WINDOW_MS_MAX + 1, now).unwrap_err();
        assert_eq!(long.code(), "SIGNATURE_WINDOW_TOO_LONG");
    }

    fn sample_commands() -> Vec<Command> {
        let key = KeyPair::from_seed(b"holder");
        vec![
            Command::Genesis {
                central_bank_key: key.public_key(),
            },
            Command::CreateOperator {
                name: "Bank of Suzhou".into(),
                public_key: key.public_key(),
            },
            Command::SetClassLimits {
                operator: OperatorId(1),
                class: WalletClass::Four,
                limits: ClassLimits::default_for(WalletClass::Four),
            },
            Command::OpenWallet {
                operator: OperatorId(1),
                phone: 13_800_138_000.into(),
                public_key: key.public_key(),
            },
            Command::UpgradeWallet {
                wallet: WalletId(3),
                to: WalletClass::Three,
                name: Some("李雷".into()),
                id_number: Some("11010519491231002X".into()),
                in_person: false,
            },
            Command::Pay {
                payer: WalletId(1),
                payee: WalletId(2),
                amount: Amount::from_fen(6660),
                key: IdempotencyKey(7),
                auth: None,
            }
            .sign(&key, &context(), NOT_AFTER_MS),
            Command::Hold {
                payer: WalletId(1),
                payee: WalletId(2),
                amount: Amount::from_fen(1),
                timeout_ms: 5,
                key: IdempotencyKey(8),
                auth: None,
            },
            Command::ResolveHold {
                hold: EventId(9),
                post: true,
            },
            Command::OnboardMerchant {
                operator: OperatorId(1),
                wallet: WalletId(2),
                name: "Pingjiang Snacks".into(),
                mcc: Mcc::new(5814).unwrap(),
                region: 320500,
            },
            Command::AddTerminal {
                merchant: MerchantId(1),
                kind: TerminalKind::Courier,
            },
            Command::CreateOrder {
                merchant: MerchantId(1),
                reference: "COD-7".into(),
                amount: Amount::from_fen(6_660),
                expires_at_ms: 99,
                terminal: 1,
                cash_on_delivery: true,
            },
            Command::PayMerchant {
                payer: WalletId(1),
                merchant: MerchantId(1),
                amount: Amount::from_fen(6_660),
                channel: PaymentChannel::CashOnDelivery,
                terminal: 1,
                order: Some("COD-7".into()),
                key: IdempotencyKey(11),
                auth: None,
            }
            .sign(&key, &context(), NOT_AFTER_MS),
            Command::Refund {
                payment: EventId(4),
                amount: Amount::from_fen(60),
                key: IdempotencyKey(12),
            },
            Command::OpenSubWallet {
                wallet: WalletId(1),
                merchant: MerchantId(1),
                limits: SubWalletLimits {
                    per_payment: Amount::from_fen(100),
                    daily: Amount::from_fen(500),
                },
                auth: None,
            }
            .sign(&key, &context(), NOT_AFTER_MS),
            Command::SetSubWallet {
                sub_wallet: SubWalletId(1),
                limits: SubWalletLimits {
                    per_payment: Amount::from_fen(10),
                    daily: Amount::from_fen(50),
                },
                open: false,
                auth: None,
            }
            .sign(&key, &context(), NOT_AFTER_MS),
            Command::ChargeSubWallet {
                sub_wallet: SubWalletId(1),
                merchant: MerchantId(1),
                amount: Amount::from_fen(10),
                order: None,
                key: IdempotencyKey(13),
            },
            Command::OpenContract {
                payer: WalletId(1),
                payee: WalletId(2),
                template: Template::Recurring {
                    amount: Amount::from_fen(800_000),
                    first_ms: 5,
                    every_ms: 60_000,
                    count: 12,
                },
                purpose: "wages".into(),
                key: IdempotencyKey(14),
                auth: None,
            }
            .sign(&key, &context(), NOT_AFTER_MS),
            Command::ConfirmContract {
                contract: ContractId(1),
                units: 3,
                key: IdempotencyKey(15),
                auth: None,
            }
            .sign(&key, &context(), NOT_AFTER_MS),
            Command::CancelContract {
                contract: ContractId(1),
                by_payee: true,
                auth: None,
            }
            .sign(&key, &context(), NOT_AFTER_MS),
            Command::RefundAtCounter {
                device: DeviceId(60),
            },
            Command::CreateCampaign {
                terms: CampaignTerms::suzhou_pilot(
                    100_000,
                    Seed::from_bytes([7; 32]).commitment(),
                    crate::programs::Window {
                        opens_at_ms: 1,
                        closes_at_ms: 2,
                    },
                    crate::programs::Window {
                        opens_at_ms: 3,
                        closes_at_ms: 4,
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
                seed: Seed::from_bytes([7; 32]),
            },
            Command::Deanonymize {
                wallet: WalletId(5),
                reason: "court order (2026) Su 05 Xing Zhong 117".into(),
            },
            Command::ChargePaymentCode {
                payer: WalletId(5),
                merchant: MerchantId(1),
                terminal: 3,
                amount: Amount::from_fen(1_800),
                code_step: 59_846_880,
                key: IdempotencyKey(16),
            },
            Command::SetCodePaymentCap {
                operator: OperatorId(1),
                cap: Amount::from_yuan(500),
            },
            Command::AddStaff {
                operator: OperatorId(1),
                role: StaffRole::KycOfficer,
                label: "Guanqian branch, desk 3".into(),
            },
            Command::RevokeCredential {
                subject: CredentialSubject::Terminal {
                    merchant: MerchantId(1),
                    terminal: 2,
                },
            },
            Command::OpenBankAccountWithCash {
                wallet: WalletId(5),
                cash: Amount::from_fen(500_000),
                key: IdempotencyKey(16),
            },
            Command::SetOperatorSuspended {
                operator: OperatorId(2),
                suspended: true,
            },
        ]
    }

    #[test]
    fn commands_round_trip_through_a_signed_submission() {
        let operator = KeyPair::from_seed(b"operator");
        let commands = sample_commands();
        let submission = Submission::new(Origin::Operator(OperatorId(1)), &commands, &operator);
        submission.verify(&operator.public_key()).unwrap();
        // What reaches the log is every personal field sealed, and nothing else changed.
        let identity_key = IdentityKey::of_operator(&operator);
        let commands: Vec<Command> = commands
            .iter()
            .map(|c| {
                c.sealed(|| identity_key.clone())
                    .unwrap_or_else(|| c.clone())
            })
            .collect();
        assert!(commands
            .iter()
            .all(|c| c.sealed(|| identity_key.clone()).is_none()));
        assert_eq!(submission.decode_commands().unwrap(), commands);
        let mut entry = Vec::new();
        submission.encode_entry(42, &mut entry);
        let decoded = Entry::decode(&entry).unwrap();
        assert_eq!(decoded.timestamp_ms, 42);
        assert_eq!(decoded.origin, Origin::Operator(OperatorId(1)));
        let replayed: Vec<Command> = decoded.commands().unwrap().map(Result::unwrap).collect();
        assert_eq!(replayed, commands);
    }

    #[test]
    fn a_tampered_batch_or_command_fails_its_signature() {
        let operator = KeyPair::from_seed(b"operator");
        let mut submission = Submission::new(
            Origin::Operator(OperatorId(1)),
            &sample_commands(),
            &operator,
        );
        let last = submission.commands.len() - 1;
        submission.commands[last] ^= 1;
        assert_eq!(
            submission
                .verify(&operator.public_key())
                .unwrap_err()
                .code(),
            "BATCH_SIGNATURE_INVALID"
        );
        let other = KeyPair::from_seed(b"someone else");
        let submission = Submission::new(Origin::CentralBank, &sample_commands(), &other);
        assert!(submission.verify(&operator.public_key()).is_err());

        let pay = sample_commands().remove(5);
        pay.verify_auth().unwrap();
        let Command::Pay {
            payer,
            payee,
            key,
            auth,
            ..
        } = pay
        else {
            unreachable!()
        };
        let raised = Command::Pay {
            payer,
            payee,
            amount: Amount::from_fen(666_000),
            key,
            auth,
        };
        assert_eq!(
            raised.verify_auth().unwrap_err().code(),
            "SIGNATURE_INVALID"
        );
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_commands(&bytes);
            if let Ok(entry) = Entry::decode(&bytes) {
                if let Ok(commands) = entry.commands() {
                    for command in commands.take(100) {
                        let _ = command;
                    }
                }
            }
        }

        #[test]
        fn truncating_an_encoded_command_is_an_error_not_a_panic(cut in 0usize..100) {
            let mut out = Writer::new();
            out.u32(1);
            sample_commands()[5].encode(&mut out);
            let cut = cut.min(out.bytes.len() - 1);
            prop_assert!(decode_commands(&out.bytes[..cut]).is_err());
        }
    }
}
