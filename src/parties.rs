//! Who may do what: the parties of DESIGN.md ("Parties"), the credentials each holds, and the one
//! table that says, for every operation of the API and every kind of party, whether it is allowed
//! or which stable code refuses it.
//!
//! | party | credential |
//! |---|---|
//! | central bank | `DIR/keys/central-bank.token` |
//! | operator staff | one per person: `ST000001.<mac>` with a role (teller, KYC officer, compliance officer, administrator); an operator's administrator also holds `DIR/keys/OPxx.token` |
//! | holder | the wallet's SM2 key: a signature on each money-moving command, or a session `W0000000001.<expiry>.<mac>` from a signed challenge for reads |
//! | merchant, terminal | `M00000001.<mac>`, `M00000001-T0002.<mac>`; a terminal only what its kind may do |
//!
//! The table decides by the kind of party; whether the wallet, merchant or operator an operation
//! names is the caller's own is checked next to the state (`server::gateway`), and answers a
//! foreign wallet as unknown. Staff records and revocations are commands in the log
//! (`CredentialBook`), so a revocation survives a restart; tokens are HMAC-SM3 of the name and its
//! generation under the server's secret, so no secret enters the log.

use std::collections::BTreeMap;
use std::fmt;

use crate::channels::acquiring::TerminalKind;
use crate::codec::{DecodeError, Reader, Writer};
use crate::error::CommandError;
use crate::ids::{MerchantId, OperatorId, StaffId, WalletId};

/// Staff members one operator may register: a large bank's branches, with room to spare.
pub const STAFF_PER_OPERATOR_MAX: usize = 100_000;
/// Longest label of a staff credential (a desk or badge number, never a customer's data).
pub const STAFF_LABEL_BYTES_MAX: usize = 64;

/// What a member of an operator's staff may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum StaffRole {
    /// At the counter: opens wallets and bank accounts with the holder's cash.
    Teller = 1,
    /// Verifies identities, in person for class 1.
    KycOfficer = 2,
    /// Alone may link a wallet to a person, with a legal reason.
    ComplianceOfficer = 3,
    /// Registers staff, onboards merchants, revokes credentials.
    Administrator = 4,
}

impl StaffRole {
    pub const ALL: [StaffRole; 4] = [
        StaffRole::Teller,
        StaffRole::KycOfficer,
        StaffRole::ComplianceOfficer,
        StaffRole::Administrator,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Teller => "teller",
            StaffRole::KycOfficer => "kyc_officer",
            StaffRole::ComplianceOfficer => "compliance_officer",
            StaffRole::Administrator => "administrator",
        }
    }

    pub fn parse(text: &str) -> Option<StaffRole> {
        StaffRole::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
    }

    pub fn from_u8(value: u8) -> Option<StaffRole> {
        StaffRole::ALL.into_iter().find(|role| *role as u8 == value)
    }
}

impl fmt::Display for StaffRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller: who presented which credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Party {
    CentralBank,
    Staff {
        operator: OperatorId,
        staff: StaffId,
        role: StaffRole,
    },
    /// A holder with a session for this wallet.
    Holder(WalletId),
    Merchant(MerchantId),
    /// A merchant's terminal, by its number at the merchant.
    Terminal {
        merchant: MerchantId,
        terminal: u16,
    },
    /// No credential: only public operations, and what a holder's signature authorises.
    Anonymous,
}

impl Party {
    /// The merchant this caller speaks for, if it is a merchant or one of its terminals.
    pub fn merchant(self) -> Option<MerchantId> {
        match self {
            Party::Merchant(id) | Party::Terminal { merchant: id, .. } => Some(id),
            _ => None,
        }
    }

    /// The operator whose staff this caller is.
    pub fn staff_operator(self) -> Option<OperatorId> {
        match self {
            Party::Staff { operator, .. } => Some(operator),
            _ => None,
        }
    }

    /// Its kind, for the table; a terminal's kind is known only from its merchant's record.
    pub fn kind(self, terminal_kind: Option<TerminalKind>) -> Option<PartyKind> {
        Some(match self {
            Party::CentralBank => PartyKind::CentralBank,
            Party::Staff { role, .. } => PartyKind::Staff(role),
            Party::Holder(_) => PartyKind::Holder,
            Party::Merchant(_) => PartyKind::Merchant,
            Party::Terminal { .. } => PartyKind::Terminal(terminal_kind?),
            Party::Anonymous => PartyKind::Anonymous,
        })
    }
}

/// The kinds of party the table has a column for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PartyKind {
    CentralBank,
    Staff(StaffRole),
    Holder,
    Merchant,
    Terminal(TerminalKind),
    Anonymous,
}

impl PartyKind {
    pub const ALL: [PartyKind; 12] = [
        PartyKind::CentralBank,
        PartyKind::Staff(StaffRole::Teller),
        PartyKind::Staff(StaffRole::KycOfficer),
        PartyKind::Staff(StaffRole::ComplianceOfficer),
        PartyKind::Staff(StaffRole::Administrator),
        PartyKind::Holder,
        PartyKind::Merchant,
        PartyKind::Terminal(TerminalKind::Pos),
        PartyKind::Terminal(TerminalKind::ScanGun),
        PartyKind::Terminal(TerminalKind::Courier),
        PartyKind::Terminal(TerminalKind::OnlineShop),
        PartyKind::Anonymous,
    ];

    fn bit(self) -> u16 {
        match self {
            PartyKind::CentralBank => CB,
            PartyKind::Staff(StaffRole::Teller) => TELLER,
            PartyKind::Staff(StaffRole::KycOfficer) => KYC,
            PartyKind::Staff(StaffRole::ComplianceOfficer) => COMPLIANCE,
            PartyKind::Staff(StaffRole::Administrator) => ADMIN,
            PartyKind::Holder => HOLDER,
            PartyKind::Merchant => MERCHANT,
            PartyKind::Terminal(TerminalKind::Pos) => POS,
            PartyKind::Terminal(TerminalKind::ScanGun) => SCAN_GUN,
            PartyKind::Terminal(TerminalKind::Courier) => COURIER,
            PartyKind::Terminal(TerminalKind::OnlineShop) => ONLINE_SHOP,
            PartyKind::Anonymous => ANONYMOUS,
        }
    }

    pub fn name(self) -> String {
        match self {
            PartyKind::CentralBank => "central bank".into(),
            PartyKind::Staff(role) => role.as_str().replace('_', " "),
            PartyKind::Holder => "holder".into(),
            PartyKind::Merchant => "merchant".into(),
            PartyKind::Terminal(kind) => format!("{} terminal", kind.as_str()),
            PartyKind::Anonymous => "anonymous".into(),
        }
    }
}

// One bit per column of the table.
const CB: u16 = 1 << 0;
const TELLER: u16 = 1 << 1;
const KYC: u16 = 1 << 2;
const COMPLIANCE: u16 = 1 << 3;
const ADMIN: u16 = 1 << 4;
const HOLDER: u16 = 1 << 5;
const MERCHANT: u16 = 1 << 6;
const POS: u16 = 1 << 7;
const SCAN_GUN: u16 = 1 << 8;
const COURIER: u16 = 1 << 9;
const ONLINE_SHOP: u16 = 1 << 10;
const ANONYMOUS: u16 = 1 << 11;
const STAFF: u16 = TELLER | KYC | COMPLIANCE | ADMIN;
const TERMINALS: u16 = POS | SCAN_GUN | COURIER | ONLINE_SHOP;
const EVERYONE: u16 = (1 << 12) - 1;
/// A holder's signed command: the signature is the authority, with or without a session; no
/// other party may submit it, even carrying the holder's signature.
const SIGNED_BY_HOLDER: u16 = HOLDER | ANONYMOUS;

/// Every operation of the HTTP API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    Health,
    Ready,
    Metrics,
    OpenApi,
    Docs,
    ReadLimits,
    SetCodePaymentCap,
    CreateChallenge,
    OpenSession,
    OpenWallet,
    ReadWallet,
    Pay,
    ReadContext,
    ReadTransfer,
    Audit,
    AddStaff,
    ListStaff,
    RevokeStaff,
    OnboardMerchant,
    ReadMerchant,
    ReplaceMerchantToken,
    AddTerminal,
    ReplaceTerminalToken,
    ReadPrintedQr,
    ReadOrderQr,
    ReadTapZone,
    CreateOrder,
    ReadOrder,
    ChargeCode,
    ListMerchantSubWallets,
    ChargeSubWallet,
    Refund,
    ListPayments,
    ReadSettlement,
    PayRequest,
    ReadPaymentCode,
    ListWalletSubWallets,
    OpenSubWallet,
    SetSubWallet,
    OpenContract,
    ReadContract,
    ConfirmContract,
    CancelContract,
    OpenBankAccount,
    UpgradeWallet,
    Exchange,
    Deanonymize,
    ReadDeanonymizations,
    AdmitOperator,
    FundReserves,
    Issue,
    Redeem,
    SuspendOperator,
    ReadCirculation,
    DepositBack,
    ReadHistory,
    FreezeWallet,
    UnfreezeWallet,
    CloseWallet,
    LookupPhone,
    ReadStatistics,
    ListAlerts,
    ReadStatement,
    IssueDevice,
    ReadDevice,
    LoadDevice,
    UnloadDevice,
    BeginSync,
    SyncDevice,
    BlockDevice,
    ReadRevocations,
    CreateCampaign,
    ReadCampaign,
    FundCampaign,
    RegisterForCampaign,
    ReadRegistrations,
    DrawCampaign,
    ReadDraw,
    ReadRedemption,
    ReadNotices,
    ReadPackets,
}

impl Operation {
    pub const ALL: [Operation; 81] = {
        use Operation::*;
        [
            Health,
            Ready,
            Metrics,
            OpenApi,
            Docs,
            ReadLimits,
            SetCodePaymentCap,
            CreateChallenge,
            OpenSession,
            OpenWallet,
            ReadWallet,
            Pay,
            ReadContext,
            ReadTransfer,
            Audit,
            AddStaff,
            ListStaff,
            RevokeStaff,
            OnboardMerchant,
            ReadMerchant,
            ReplaceMerchantToken,
            AddTerminal,
            ReplaceTerminalToken,
            ReadPrintedQr,
            ReadOrderQr,
            ReadTapZone,
            CreateOrder,
            ReadOrder,
            ChargeCode,
            ListMerchantSubWallets,
            ChargeSubWallet,
            Refund,
            ListPayments,
            ReadSettlement,
            PayRequest,
            ReadPaymentCode,
            ListWalletSubWallets,
            OpenSubWallet,
            SetSubWallet,
            OpenContract,
            ReadContract,
            ConfirmContract,
            CancelContract,
            OpenBankAccount,
            UpgradeWallet,
            Exchange,
            Deanonymize,
            ReadDeanonymizations,
            AdmitOperator,
            FundReserves,
            Issue,
            Redeem,
            SuspendOperator,
            ReadCirculation,
            DepositBack,
            ReadHistory,
            FreezeWallet,
            UnfreezeWallet,
            CloseWallet,
            LookupPhone,
            ReadStatistics,
            ListAlerts,
            ReadStatement,
            IssueDevice,
            ReadDevice,
            LoadDevice,
            UnloadDevice,
            BeginSync,
            SyncDevice,
            BlockDevice,
            ReadRevocations,
            CreateCampaign,
            ReadCampaign,
            FundCampaign,
            RegisterForCampaign,
            ReadRegistrations,
            DrawCampaign,
            ReadDraw,
            ReadRedemption,
            ReadNotices,
            ReadPackets,
        ]
    };

    /// The table: which kinds of party may call each operation.
    fn grants(self) -> u16 {
        use Operation::*;
        match self {
            Health | Ready | Metrics | OpenApi | Docs | ReadLimits => EVERYONE,
            CreateChallenge | OpenSession => EVERYONE,
            // What every signature names: public, like the document.
            ReadContext => EVERYONE,
            // Its parties only; which transfer is whose is checked next to the ledger.
            ReadTransfer => CB | STAFF | HOLDER | MERCHANT,
            // A phone number and a key make a class-4 wallet: the app opens it with a signature
            // by the new key, or a teller at the counter.
            OpenWallet => SIGNED_BY_HOLDER | TELLER,
            ReadWallet => HOLDER | STAFF | CB,
            Pay | PayRequest | Exchange => SIGNED_BY_HOLDER,
            OpenSubWallet | SetSubWallet => SIGNED_BY_HOLDER,
            OpenContract | ConfirmContract | CancelContract => SIGNED_BY_HOLDER,
            Audit => CB,
            AddStaff | ListStaff | RevokeStaff | OnboardMerchant => ADMIN,
            // How much a payment code takes without the holder's confirmation: the operator's
            // policy, its administrator's to set.
            SetCodePaymentCap => ADMIN,
            ReadMerchant | ReadOrderQr | ReadOrder => STAFF | MERCHANT | TERMINALS,
            ReplaceMerchantToken | AddTerminal | ReplaceTerminalToken => ADMIN | MERCHANT,
            ReadPrintedQr | ReadTapZone => EVERYONE,
            CreateOrder => MERCHANT | POS | COURIER | ONLINE_SHOP,
            ChargeCode => POS | SCAN_GUN,
            ListMerchantSubWallets | ChargeSubWallet => MERCHANT | ONLINE_SHOP,
            Refund => MERCHANT,
            ListPayments | ReadSettlement => MERCHANT | STAFF,
            // The code is the holder's consent to a password-free payment: the holder's alone.
            ReadPaymentCode => HOLDER,
            ListWalletSubWallets => HOLDER | STAFF,
            ReadContract => CB | STAFF | HOLDER,
            OpenBankAccount => TELLER,
            // A holder upgrades remotely as far as remote KYC allows; class 1 is in person.
            UpgradeWallet => KYC | HOLDER,
            Deanonymize => COMPLIANCE,
            ReadDeanonymizations => CB | COMPLIANCE,
            // The central bank's own: who operates, and how much e-CNY each holds against what.
            AdmitOperator | FundReserves | Issue | Redeem | SuspendOperator | ReadCirculation => CB,
            DepositBack | CloseWallet => SIGNED_BY_HOLDER,
            ReadHistory => HOLDER | STAFF | CB,
            // A lost phone: the holder freezes with the key from another device, or calls the
            // bank. Unfreezing is at the counter, identity checked: whoever found the phone may
            // hold the key.
            FreezeWallet => SIGNED_BY_HOLDER | TELLER,
            UnfreezeWallet => TELLER,
            // Whose wallet a phone number opens, to pay it: a holder's own look-up, counted.
            LookupPhone => HOLDER,
            // The analysis center: the regulator's whole of it, pseudonymous; an operator's own
            // figures to its administrator and its compliance officer, its own alerts to the
            // officer who works them.
            ReadStatistics => CB | COMPLIANCE | ADMIN,
            ListAlerts => CB | COMPLIANCE,
            // A statement of a wallet: its holder, its operator's staff, the regulator.
            ReadStatement => CB | STAFF | HOLDER,
            // A teller hands the card over; the holder's signature binds it to a wallet.
            IssueDevice => TELLER,
            ReadDevice => CB | STAFF | HOLDER,
            // A wallet's card is loaded as its holder signs, and unloaded as the card signs,
            // into that wallet only; a visitor card's cash passes over a teller's counter.
            LoadDevice | UnloadDevice => SIGNED_BY_HOLDER | TELLER,
            // The card's attestation over the center's nonce proves the records; whoever relays
            // it is the card's holder, its operator's staff, or the merchant a terminal card serves.
            BeginSync | SyncDevice => HOLDER | STAFF | MERCHANT | TERMINALS,
            // The holder reports a card lost at the counter or by phone; the operator blocks it.
            BlockDevice => TELLER | ADMIN,
            // Signed by the central bank, so any terminal may fetch it from anywhere.
            ReadRevocations => EVERYONE,
            // The sponsor's operator publishes and draws a campaign; its administrator acts for
            // the sponsor, whose own signature alone moves the budget.
            CreateCampaign | DrawCampaign => ADMIN,
            FundCampaign | RegisterForCampaign => SIGNED_BY_HOLDER,
            // Published for anyone to check the draw: terms, commitment, list, seed and winners.
            ReadCampaign | ReadRegistrations | ReadDraw => EVERYONE,
            ReadRedemption => CB | STAFF,
            ReadNotices => STAFF,
            ReadPackets => HOLDER | STAFF,
        }
    }

    /// Whether this kind of party may call it, or the code that refuses it.
    pub fn decide(self, kind: PartyKind) -> Result<(), Denial> {
        let grants = self.grants();
        if grants & kind.bit() != 0 {
            return Ok(());
        }
        let only = |group: u16| grants & !group == 0;
        Err(match kind {
            PartyKind::Anonymous => Denial::Unauthenticated,
            PartyKind::Staff(_) if grants & STAFF != 0 => Denial::RoleNotAllowed,
            PartyKind::Terminal(_) if grants & (MERCHANT | TERMINALS) != 0 => {
                Denial::TerminalNotAllowed
            }
            _ if grants == CB => Denial::CentralBankOnly,
            // A merchant's own token is not a till: codes are read at the counter's terminals.
            PartyKind::Merchant if only(TERMINALS) => Denial::TerminalOnly,
            _ if only(SIGNED_BY_HOLDER) => Denial::HolderOnly,
            _ if only(STAFF) => Denial::StaffOnly,
            _ if only(MERCHANT | TERMINALS) => Denial::MerchantOnly,
            _ => Denial::PartyNotAllowed,
        })
    }

    /// Whether some terminal kinds may call it and others not: only then does a terminal's kind
    /// need looking up.
    pub fn admits_terminals(self) -> bool {
        let some = self.grants() & TERMINALS;
        some != 0 && some != TERMINALS
    }

    /// Decides for a caller; a terminal's kind is looked up (`terminal_kind`) only when the
    /// operation admits some terminals.
    pub fn authorize(
        self,
        party: Party,
        terminal_kind: impl FnOnce() -> Option<TerminalKind>,
    ) -> Result<(), Denial> {
        let kinds = [
            TerminalKind::Pos,
            TerminalKind::ScanGun,
            TerminalKind::Courier,
            TerminalKind::OnlineShop,
        ];
        let uniform = kinds.iter().all(|kind| {
            self.decide(PartyKind::Terminal(*kind)) == self.decide(PartyKind::Terminal(kinds[0]))
        });
        let kind = match party {
            Party::Terminal { .. } if uniform => {
                // Every kind answers the same: no need to look the terminal up.
                PartyKind::Terminal(TerminalKind::Pos)
            }
            Party::Terminal { .. } => match terminal_kind() {
                Some(kind) => PartyKind::Terminal(kind),
                None => return Err(Denial::UnknownTerminal),
            },
            other => other.kind(None).expect("not a terminal"),
        };
        self.decide(kind)
    }

    /// The method and path the router serves it at.
    pub fn route(self) -> (&'static str, &'static str) {
        use Operation::*;
        match self {
            Health => ("GET", "/healthz"),
            Ready => ("GET", "/readyz"),
            Metrics => ("GET", "/metrics"),
            OpenApi => ("GET", "/openapi.json"),
            Docs => ("GET", "/docs"),
            ReadLimits => ("GET", "/v1/operators/{op}/limits"),
            SetCodePaymentCap => ("PUT", "/v1/operators/{op}/code-payment-cap"),
            CreateChallenge => ("POST", "/v1/sessions/challenges"),
            OpenSession => ("POST", "/v1/sessions"),
            OpenWallet => ("POST", "/v1/operators/{op}/wallets"),
            ReadWallet => ("GET", "/v1/wallets/{id}"),
            Pay => ("POST", "/v1/payments"),
            ReadContext => ("GET", "/v1/context"),
            ReadTransfer => ("GET", "/v1/transfers/{id}"),
            Audit => ("GET", "/v1/audit"),
            AddStaff => ("POST", "/v1/operators/{op}/staff"),
            ListStaff => ("GET", "/v1/operators/{op}/staff"),
            RevokeStaff => ("POST", "/v1/operators/{op}/staff/{s}/revoke"),
            OnboardMerchant => ("POST", "/v1/operators/{op}/merchants"),
            ReadMerchant => ("GET", "/v1/merchants/{m}"),
            ReplaceMerchantToken => ("POST", "/v1/merchants/{m}/token"),
            AddTerminal => ("POST", "/v1/merchants/{m}/terminals"),
            ReplaceTerminalToken => ("POST", "/v1/merchants/{m}/terminals/{t}/token"),
            ReadPrintedQr | ReadOrderQr => ("GET", "/v1/merchants/{m}/qr"),
            ReadTapZone => ("GET", "/v1/merchants/{m}/tap-zone"),
            CreateOrder => ("POST", "/v1/merchants/{m}/orders"),
            ReadOrder => ("GET", "/v1/merchants/{m}/orders/{reference}"),
            ChargeCode => ("POST", "/v1/merchants/{m}/code-payments"),
            ListMerchantSubWallets => ("GET", "/v1/merchants/{m}/sub-wallets"),
            ChargeSubWallet => ("POST", "/v1/merchants/{m}/sub-wallet-charges"),
            Refund => ("POST", "/v1/merchants/{m}/refunds"),
            ListPayments => ("GET", "/v1/merchants/{m}/payments"),
            ReadSettlement => ("GET", "/v1/merchants/{m}/settlement"),
            PayRequest => ("POST", "/v1/request-payments"),
            ReadPaymentCode => ("GET", "/v1/wallets/{id}/payment-code"),
            ListWalletSubWallets => ("GET", "/v1/wallets/{id}/sub-wallets"),
            OpenSubWallet => ("POST", "/v1/wallets/{id}/sub-wallets"),
            SetSubWallet => ("PUT", "/v1/sub-wallets/{sw}"),
            OpenContract => ("POST", "/v1/contracts"),
            ReadContract => ("GET", "/v1/contracts/{id}"),
            ConfirmContract => ("POST", "/v1/contracts/{id}/confirm"),
            CancelContract => ("POST", "/v1/contracts/{id}/cancel"),
            OpenBankAccount => ("POST", "/v1/wallets/{id}/bank-account"),
            UpgradeWallet => ("POST", "/v1/wallets/{id}/kyc"),
            Exchange => ("POST", "/v1/wallets/{id}/exchange"),
            Deanonymize => ("POST", "/v1/wallets/{id}/deanonymize"),
            ReadDeanonymizations => ("GET", "/v1/deanonymizations"),
            AdmitOperator => ("POST", "/v1/operators"),
            FundReserves => ("POST", "/v1/operators/{op}/reserves"),
            Issue => ("POST", "/v1/operators/{op}/issuance"),
            Redeem => ("POST", "/v1/operators/{op}/redemption"),
            SuspendOperator => ("PUT", "/v1/operators/{op}/suspension"),
            ReadCirculation => ("GET", "/v1/circulation"),
            DepositBack => ("POST", "/v1/wallets/{id}/deposit-back"),
            ReadHistory => ("GET", "/v1/wallets/{id}/history"),
            FreezeWallet => ("POST", "/v1/wallets/{id}/freeze"),
            UnfreezeWallet => ("POST", "/v1/wallets/{id}/unfreeze"),
            CloseWallet => ("POST", "/v1/wallets/{id}/close"),
            LookupPhone => ("POST", "/v1/wallets/{id}/phone-lookups"),
            ReadStatistics => ("GET", "/v1/analytics/statistics"),
            ListAlerts => ("GET", "/v1/analytics/alerts"),
            ReadStatement => ("GET", "/v1/wallets/{id}/statement"),
            IssueDevice => ("POST", "/v1/operators/{op}/devices"),
            ReadDevice => ("GET", "/v1/devices/{d}"),
            LoadDevice => ("POST", "/v1/devices/{d}/loads"),
            UnloadDevice => ("POST", "/v1/devices/{d}/unloads"),
            BeginSync => ("POST", "/v1/devices/{d}/sync-nonce"),
            SyncDevice => ("POST", "/v1/devices/{d}/syncs"),
            BlockDevice => ("POST", "/v1/devices/{d}/block"),
            ReadRevocations => ("GET", "/v1/revocations"),
            CreateCampaign => ("POST", "/v1/campaigns"),
            ReadCampaign => ("GET", "/v1/campaigns/{c}"),
            FundCampaign => ("POST", "/v1/campaigns/{c}/funding"),
            RegisterForCampaign => ("POST", "/v1/campaigns/{c}/registrations"),
            ReadRegistrations => ("GET", "/v1/campaigns/{c}/registrations"),
            DrawCampaign => ("POST", "/v1/campaigns/{c}/draw"),
            ReadDraw => ("GET", "/v1/campaigns/{c}/draw"),
            ReadRedemption => ("GET", "/v1/campaigns/{c}/redemption"),
            ReadNotices => ("GET", "/v1/campaigns/{c}/notices"),
            ReadPackets => ("GET", "/v1/wallets/{id}/packets"),
        }
    }

    /// The operation served at a route; where two share one (a printed or an order's QR), the
    /// more permissive, which the handler narrows.
    pub fn at(method: &str, path: &str) -> Option<Operation> {
        Operation::ALL
            .into_iter()
            .find(|op| op.route() == (method, path))
    }

    /// Every code the table can refuse this operation with.
    pub fn denial_codes(self) -> Vec<&'static str> {
        let mut codes: Vec<&'static str> = PartyKind::ALL
            .into_iter()
            .filter_map(|kind| self.decide(kind).err().map(Denial::code))
            .collect();
        if self.admits_terminals() {
            codes.push(Denial::UnknownTerminal.code());
        }
        codes.sort_unstable();
        codes.dedup();
        codes
    }
}

/// Why the table refuses a caller; each has a stable code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    /// No credential, where one is needed (401).
    Unauthenticated,
    CentralBankOnly,
    /// Only the holder, by a signature or a session.
    HolderOnly,
    StaffOnly,
    /// Staff, but not in a role that may.
    RoleNotAllowed,
    MerchantOnly,
    /// A terminal of a kind that may not.
    TerminalNotAllowed,
    /// Only some of the merchant's terminals may, not the merchant's own token.
    TerminalOnly,
    /// A terminal token whose number its merchant never registered.
    UnknownTerminal,
    PartyNotAllowed,
}

impl Denial {
    pub fn code(self) -> &'static str {
        match self {
            Denial::Unauthenticated => "UNAUTHENTICATED",
            Denial::CentralBankOnly => "CENTRAL_BANK_ONLY",
            Denial::HolderOnly => "HOLDER_ONLY",
            Denial::StaffOnly => "STAFF_ONLY",
            Denial::RoleNotAllowed => "ROLE_NOT_ALLOWED",
            Denial::MerchantOnly => "MERCHANT_ONLY",
            Denial::TerminalNotAllowed => "TERMINAL_NOT_ALLOWED",
            Denial::TerminalOnly => "TERMINAL_ONLY",
            Denial::UnknownTerminal => "UNKNOWN_TERMINAL",
            Denial::PartyNotAllowed => "PARTY_NOT_ALLOWED",
        }
    }

    /// 401 when a credential is missing, 403 when the one presented may not.
    pub fn is_unauthenticated(self) -> bool {
        self == Denial::Unauthenticated
    }

    pub fn detail(self, operation: Operation) -> String {
        let (method, path) = operation.route();
        let who = match self {
            Denial::Unauthenticated => "send `Authorization: Bearer <token>`: a staff, merchant, terminal or central-bank token, or a holder's session",
            Denial::CentralBankOnly => "only the central bank may",
            Denial::HolderOnly => "only the holder may, by signing the command with the wallet's key (or with the holder's session)",
            Denial::StaffOnly => "only the operator's staff may",
            Denial::RoleNotAllowed => "staff in another role may; this credential's role may not",
            Denial::MerchantOnly => "only the merchant or its terminals may",
            Denial::TerminalNotAllowed => "this kind of terminal may not",
            Denial::TerminalOnly => "only the merchant's terminals of a kind that may (a till or scan gun), not the merchant's own token",
            Denial::UnknownTerminal => "the merchant has no terminal of this number",
            Denial::PartyNotAllowed => "this kind of party may not",
        };
        format!("{method} {path}: {who}")
    }
}

/// One staff member's credential as the log records it: no person's name, only a label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaffRecord {
    pub id: StaffId,
    pub operator: OperatorId,
    pub role: StaffRole,
    pub label: String,
    pub revoked: bool,
}

/// A credential an administrator (or a merchant, for its terminals) can revoke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CredentialSubject {
    /// For good: the staff member's token stops working and none replaces it.
    Staff(StaffId),
    /// The token is replaced: the old one stops working, a new one is answered.
    Merchant(MerchantId),
    Terminal {
        merchant: MerchantId,
        terminal: u16,
    },
}

/// Staff records and credential generations, kept by the state machine from the log. A
/// merchant's or terminal's token is derived from its name and generation, so bumping the
/// generation revokes the old token and makes the next one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CredentialBook {
    staff: Vec<StaffRecord>,
    generations: BTreeMap<CredentialSubject, u32>,
}

impl CredentialBook {
    pub fn staff(&self, id: StaffId) -> Result<&StaffRecord, CommandError> {
        id.index()
            .checked_sub(1)
            .and_then(|i| self.staff.get(i))
            .ok_or(CommandError::UnknownStaff(id))
    }

    pub fn staff_of(&self, operator: OperatorId) -> impl Iterator<Item = &StaffRecord> {
        self.staff.iter().filter(move |s| s.operator == operator)
    }

    /// How many times the subject's token was replaced; 0 for the first.
    pub fn generation(&self, subject: CredentialSubject) -> u32 {
        self.generations.get(&subject).copied().unwrap_or(0)
    }

    pub fn add_staff(
        &mut self,
        operator: OperatorId,
        role: StaffRole,
        label: String,
    ) -> Result<StaffId, CommandError> {
        if label.trim().is_empty()
            || label.len() > STAFF_LABEL_BYTES_MAX
            || label.chars().any(char::is_control)
        {
            return Err(CommandError::StaffLabelInvalid {
                max: STAFF_LABEL_BYTES_MAX,
            });
        }
        if self.staff_of(operator).count() >= STAFF_PER_OPERATOR_MAX {
            return Err(CommandError::StaffLimitReached {
                max: STAFF_PER_OPERATOR_MAX,
            });
        }
        let id = StaffId(self.staff.len() as u32 + 1);
        self.staff.push(StaffRecord {
            id,
            operator,
            role,
            label,
            revoked: false,
        });
        Ok(id)
    }

    /// Revokes the subject's current token; the caller has checked it may.
    pub fn revoke(&mut self, subject: CredentialSubject) -> Result<(), CommandError> {
        if let CredentialSubject::Staff(id) = subject {
            let record = &mut self.staff[id.index() - 1];
            if record.revoked {
                return Err(CommandError::CredentialRevoked);
            }
            record.revoked = true;
        }
        *self.generations.entry(subject).or_insert(0) += 1;
        Ok(())
    }

    pub fn encode(&self, out: &mut Writer) {
        out.u32(self.staff.len() as u32);
        for record in &self.staff {
            out.u16(record.operator.0)
                .u8(record.role as u8)
                .str(&record.label)
                .u8(u8::from(record.revoked));
        }
        out.u32(self.generations.len() as u32);
        for (subject, generation) in &self.generations {
            encode_subject(*subject, out);
            out.u32(*generation);
        }
    }

    pub fn decode(input: &mut Reader<'_>) -> Result<CredentialBook, DecodeError> {
        let start = input.offset();
        let mut book = CredentialBook::default();
        for index in 0..input.u32("staff count")? {
            let operator = OperatorId(input.u16("staff operator")?);
            let role = StaffRole::from_u8(input.u8("staff role")?).ok_or(DecodeError {
                what: "staff role",
                offset: start,
            })?;
            book.staff.push(StaffRecord {
                id: StaffId(index + 1),
                operator,
                role,
                label: input.string("staff label")?,
                revoked: input.bool("staff revoked")?,
            });
        }
        for _ in 0..input.u32("credential generations")? {
            let subject = decode_subject(input)?;
            book.generations
                .insert(subject, input.u32("credential generation")?);
        }
        Ok(book)
    }
}

/// Domain of the bytes a holder signs to open a session.
const SESSION_DOMAIN: &[u8] = b"ECNY-SESSION-v1";

/// What a holder signs to open a session: `ECNY-SESSION-v1`, the wallet number as a u32
/// little-endian, the challenge's length as a u16 little-endian, and the challenge's ASCII bytes.
pub fn session_signing_bytes(wallet: WalletId, challenge: &str) -> Vec<u8> {
    let mut out = Writer::with_capacity(SESSION_DOMAIN.len() + 6 + challenge.len());
    out.raw(SESSION_DOMAIN).u32(wallet.0).str(challenge);
    out.bytes
}

pub fn encode_subject(subject: CredentialSubject, out: &mut Writer) {
    match subject {
        CredentialSubject::Staff(id) => out.u8(1).u32(id.0),
        CredentialSubject::Merchant(id) => out.u8(2).u32(id.0),
        CredentialSubject::Terminal { merchant, terminal } => {
            out.u8(3).u32(merchant.0).u16(terminal)
        }
    };
}

pub fn decode_subject(input: &mut Reader<'_>) -> Result<CredentialSubject, DecodeError> {
    let start = input.offset();
    Ok(match input.u8("credential kind")? {
        1 => CredentialSubject::Staff(StaffId(input.u32("staff")?)),
        2 => CredentialSubject::Merchant(MerchantId(input.u32("merchant")?)),
        3 => CredentialSubject::Terminal {
            merchant: MerchantId(input.u32("merchant")?),
            terminal: input.u16("terminal")?,
        },
        _ => {
            return Err(DecodeError {
                what: "credential kind",
                offset: start,
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_one_route_and_every_party_an_answer() {
        let mut routes: Vec<_> = Operation::ALL.iter().map(|op| op.route()).collect();
        routes.sort_unstable();
        routes.dedup();
        // The printed and an order's QR share one route.
        assert_eq!(routes.len(), Operation::ALL.len() - 1);
        for op in Operation::ALL {
            assert_eq!(
                Operation::at(op.route().0, op.route().1).map(|o| o.route()),
                Some(op.route())
            );
            for kind in PartyKind::ALL {
                let _ = op.decide(kind);
            }
        }
    }

    #[test]
    fn money_moves_only_by_the_holders_signature_and_identity_only_to_compliance() {
        for kind in PartyKind::ALL {
            let holderish = matches!(kind, PartyKind::Holder | PartyKind::Anonymous);
            for op in [Operation::Pay, Operation::Exchange, Operation::PayRequest] {
                assert_eq!(op.decide(kind).is_ok(), holderish, "{op:?} {kind:?}");
            }
            let compliance = kind == PartyKind::Staff(StaffRole::ComplianceOfficer);
            assert_eq!(Operation::Deanonymize.decide(kind).is_ok(), compliance);
            assert_eq!(
                Operation::ReadPaymentCode.decide(kind).is_ok(),
                kind == PartyKind::Holder
            );
        }
        assert_eq!(
            Operation::Pay.decide(PartyKind::Merchant),
            Err(Denial::HolderOnly)
        );
        assert_eq!(
            Operation::OpenBankAccount.decide(PartyKind::Staff(StaffRole::KycOfficer)),
            Err(Denial::RoleNotAllowed)
        );
        assert_eq!(
            Operation::ChargeCode.decide(PartyKind::Terminal(TerminalKind::Courier)),
            Err(Denial::TerminalNotAllowed)
        );
        assert_eq!(
            Operation::Audit.decide(PartyKind::Anonymous),
            Err(Denial::Unauthenticated)
        );
        assert_eq!(
            Operation::Audit.decide(PartyKind::Holder),
            Err(Denial::CentralBankOnly)
        );
    }

    #[test]
    fn revoking_a_staff_credential_is_final_and_replacing_a_terminal_token_counts() {
        let mut book = CredentialBook::default();
        let teller = book
            .add_staff(OperatorId(1), StaffRole::Teller, "desk 1".into())
            .unwrap();
        assert_eq!(teller, StaffId(1));
        assert!(book
            .add_staff(OperatorId(1), StaffRole::Teller, " ".into())
            .is_err());
        book.revoke(CredentialSubject::Staff(teller)).unwrap();
        assert_eq!(
            book.revoke(CredentialSubject::Staff(teller)),
            Err(CommandError::CredentialRevoked)
        );
        let till = CredentialSubject::Terminal {
            merchant: MerchantId(1),
            terminal: 2,
        };
        book.revoke(till).unwrap();
        book.revoke(till).unwrap();
        assert_eq!(book.generation(till), 2);
        let mut out = Writer::new();
        book.encode(&mut out);
        let decoded = CredentialBook::decode(&mut Reader::new(&out.bytes)).unwrap();
        assert_eq!(decoded, book);
    }
}
