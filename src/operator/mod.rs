//! Designated operators: each runs a vault of e-CNY, a bank core of customer deposit accounts,
//! and its customers' identities (the only place a wallet is linked to a person). The operator
//! tier also verifies its customers' signatures, on all cores, and hands the registration center
//! batches it signs once.

pub mod front_office;

use std::collections::HashMap;

use foldhash::fast::RandomState;

use crate::amount::Amount;
use crate::certs::{verify_all_parallel, KeyPair, PublicKey, SignedItem};
use crate::command::{se_signatures, SeSigned};
use crate::command::{Command, Origin, Submission};
use crate::error::CommandError;
use crate::ids::{AccountId, IdentityLookupId, OperatorId, WalletId};
use crate::sealed::{Field, IdentityKey, SealBroken, SealTag, SealedPhone, SealedText};
use crate::wallet::{ClassLimits, WalletClass};

/// Most cash one deposit at the counter takes: the threshold at which cash transactions are
/// reported as large-value (50,000 yuan); more goes through the branch's large-cash procedure,
/// not the teller's one-step opening.
pub const COUNTER_CASH_DEPOSIT_MAX: Amount = Amount::from_yuan(50_000);

/// Longest legal reason a de-anonymization may state, in bytes: a court order's or case file's
/// reference and the statute, well inside one log field.
pub const DEANONYMIZATION_REASON_BYTES_MAX: usize = 200;

/// What the operator knows of a holder beyond the phone number (classes 3 to 1), sealed under
/// the operator's identity key (`sealed`): the state machine keeps it without reading it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Identity {
    pub name: Option<SealedText>,
    pub id_number: Option<SealedText>,
    pub verified_in_person: bool,
}

/// One de-anonymization as the state machine logs it: which operator looked, at which wallet,
/// why and when — never what it found. The central bank and the analysis center read this log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityLookup {
    pub id: IdentityLookupId,
    pub operator: OperatorId,
    pub wallet: WalletId,
    pub reason: String,
    pub at_ms: u64,
}

/// What a logged de-anonymization discloses to the wallet's operator, from its own directory:
/// sealed, for the operator's key to open (`opened`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisclosedIdentity {
    pub lookup: IdentityLookupId,
    pub wallet: WalletId,
    pub phone: Option<SealedPhone>,
    pub identity: Identity,
}

/// A disclosed identity opened by its operator's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClearIdentity {
    pub lookup: IdentityLookupId,
    pub wallet: WalletId,
    pub phone: Option<u64>,
    pub name: Option<String>,
    pub id_number: Option<String>,
    pub verified_in_person: bool,
}

impl DisclosedIdentity {
    /// Opens every sealed field with the operator's key; a seal that does not open is refused.
    pub fn opened(&self, key: &IdentityKey) -> Result<ClearIdentity, SealBroken> {
        let text = |field, sealed: &Option<SealedText>| {
            sealed
                .as_ref()
                .map(|sealed| key.open_text(field, sealed))
                .transpose()
        };
        Ok(ClearIdentity {
            lookup: self.lookup,
            wallet: self.wallet,
            phone: self.phone.as_ref().map(|p| key.open_phone(p)).transpose()?,
            name: text(Field::Name, &self.identity.name)?,
            id_number: text(Field::IdNumber, &self.identity.id_number)?,
            verified_in_person: self.identity.verified_in_person,
        })
    }
}

/// A legal reason is stated (not blank), fits the log, and is printable text.
pub fn check_deanonymization_reason(reason: &str) -> Result<(), CommandError> {
    if reason.trim().is_empty()
        || reason.len() > DEANONYMIZATION_REASON_BYTES_MAX
        || reason.chars().any(char::is_control)
    {
        return Err(CommandError::DeanonymizationReasonInvalid {
            max: DEANONYMIZATION_REASON_BYTES_MAX,
        });
    }
    Ok(())
}

#[derive(Clone, Debug)]
pub struct Operator {
    pub id: OperatorId,
    pub name: String,
    pub public_key: PublicKey,
    /// Reserves ledger: its reserve account at the central bank.
    pub reserve: AccountId,
    /// Reserves ledger: what it gave up for e-CNY.
    pub backing: AccountId,
    /// e-CNY ledger: its vault.
    pub vault: AccountId,
    /// Deposits ledger: its deposit liabilities.
    pub bank_funding: AccountId,
    /// e-CNY ledger: value held offline in the secure elements it issued.
    pub offline_float: AccountId,
    pub limits: [ClassLimits; 4],
    /// The most one payment-code charge takes from its wallets without the holder's confirmation.
    pub code_payment_cap: Amount,
    /// Suspended by the central bank (`SetOperatorSuspended`).
    pub suspended: bool,
    /// Each wallet by its phone's seal tag, with the sealed number.
    phones: HashMap<SealTag, (WalletId, [u8; 8]), RandomState>,
    identities: HashMap<WalletId, Identity, RandomState>,
    /// The wallets each ID number (by its seal tag) is recorded for; derived from `identities`.
    wallets_by_id_number: HashMap<SealTag, Vec<WalletId>, RandomState>,
}

impl PartialEq for Operator {
    fn eq(&self, other: &Operator) -> bool {
        self.id == other.id
            && self.name == other.name
            && self.public_key == other.public_key
            && [self.reserve, self.backing, self.vault, self.bank_funding]
                == [
                    other.reserve,
                    other.backing,
                    other.vault,
                    other.bank_funding,
                ]
            && self.limits == other.limits
            && self.code_payment_cap == other.code_payment_cap
            && self.suspended == other.suspended
            && self.phones == other.phones
            && self.identities == other.identities
    }
}

impl Operator {
    pub fn new(
        id: OperatorId,
        name: String,
        public_key: PublicKey,
        accounts: [AccountId; 5],
    ) -> Operator {
        let [reserve, backing, vault, bank_funding, offline_float] = accounts;
        Operator {
            id,
            name,
            public_key,
            reserve,
            backing,
            vault,
            bank_funding,
            offline_float,
            limits: ClassLimits::defaults(),
            code_payment_cap: crate::channels::payment_code::PASSWORD_FREE_CAP_DEFAULT,
            suspended: false,
            phones: HashMap::default(),
            identities: HashMap::default(),
            wallets_by_id_number: HashMap::default(),
        }
    }

    /// Its five accounts, in the order `new` takes them.
    pub fn accounts(&self) -> [AccountId; 5] {
        [
            self.reserve,
            self.backing,
            self.vault,
            self.bank_funding,
            self.offline_float,
        ]
    }

    pub fn limits_for(&self, class: WalletClass) -> &ClassLimits {
        &self.limits[class as usize - 1]
    }

    /// The wallet opened with the phone whose seal tag this is (`IdentityKey::phone_tag`).
    pub fn wallet_by_phone(&self, tag: &SealTag) -> Option<WalletId> {
        self.phones.get(tag).map(|(wallet, _)| *wallet)
    }

    pub fn customers(&self) -> usize {
        self.phones.len()
    }

    pub fn register_phone(
        &mut self,
        phone: SealedPhone,
        wallet: WalletId,
    ) -> Result<(), CommandError> {
        if self.phones.contains_key(&phone.tag) {
            return Err(CommandError::PhoneTaken);
        }
        self.phones.insert(phone.tag, (wallet, phone.ciphertext));
        Ok(())
    }

    /// The wallets whose recorded ID number has this seal tag.
    pub fn wallets_of_id_number(&self, tag: &SealTag) -> &[WalletId] {
        self.wallets_by_id_number
            .get(tag)
            .map_or(&[], Vec::as_slice)
    }

    pub fn identity(&self, wallet: WalletId) -> Option<&Identity> {
        self.identities.get(&wallet)
    }

    /// The phone number a wallet was opened with. A scan of the directory: only a logged
    /// de-anonymization asks, and a reverse index would cost every wallet memory.
    pub fn phone_of(&self, wallet: WalletId) -> Option<SealedPhone> {
        self.phones
            .iter()
            .find(|(_, (owner, _))| *owner == wallet)
            .map(|(tag, (_, ciphertext))| SealedPhone {
                tag: *tag,
                ciphertext: *ciphertext,
            })
    }

    /// Checks the KYC data for an upgrade and records it; `has_bank_account` says whether the
    /// wallet has a bound bank account.
    pub fn upgrade_identity(
        &mut self,
        wallet: WalletId,
        current: WalletClass,
        to: WalletClass,
        update: Identity,
        has_bank_account: bool,
    ) -> Result<(), CommandError> {
        if to >= current {
            return Err(CommandError::ClassNotAnUpgrade { current });
        }
        let known = self.identities.get(&wallet).cloned().unwrap_or_default();
        let merged = Identity {
            name: update.name.or(known.name),
            id_number: update.id_number.or(known.id_number),
            verified_in_person: update.verified_in_person || known.verified_in_person,
        };
        // The front office checked the name and the ID number in the clear, before sealing.
        let missing = |missing| Err(CommandError::KycIncomplete { to, missing });
        if merged.name.is_none() {
            return missing("the holder's real name");
        }
        if merged.id_number.is_none() {
            return missing("an 18-character resident ID number");
        }
        if to <= WalletClass::Two && !has_bank_account {
            return missing("a bound bank account");
        }
        if to == WalletClass::One && !merged.verified_in_person {
            return missing("verification in person at a branch");
        }
        self.record_identity(wallet, merged);
        Ok(())
    }

    fn record_identity(&mut self, wallet: WalletId, identity: Identity) {
        if let Some(old) = self
            .identities
            .get(&wallet)
            .and_then(|i| i.id_number.clone())
        {
            if let Some(wallets) = self.wallets_by_id_number.get_mut(&old.tag) {
                wallets.retain(|w| *w != wallet);
            }
        }
        if let Some(id) = &identity.id_number {
            self.wallets_by_id_number
                .entry(id.tag)
                .or_default()
                .push(wallet);
        }
        self.identities.insert(wallet, identity);
    }

    pub(crate) fn phone_entries(&self) -> Vec<(SealedPhone, WalletId)> {
        let mut entries: Vec<_> = self
            .phones
            .iter()
            .map(|(tag, (wallet, ciphertext))| {
                let phone = SealedPhone {
                    tag: *tag,
                    ciphertext: *ciphertext,
                };
                (phone, *wallet)
            })
            .collect();
        entries.sort_unstable_by_key(|(phone, _)| phone.tag);
        entries
    }

    pub(crate) fn identity_entries(&self) -> Vec<(WalletId, &Identity)> {
        let mut entries: Vec<_> = self.identities.iter().map(|(w, i)| (*w, i)).collect();
        entries.sort_unstable_by_key(|(w, _)| *w);
        entries
    }

    pub(crate) fn restore_directory(
        &mut self,
        phones: Vec<(SealedPhone, WalletId)>,
        identities: Vec<(WalletId, Identity)>,
    ) {
        self.phones = phones
            .into_iter()
            .map(|(phone, wallet)| (phone.tag, (wallet, phone.ciphertext)))
            .collect();
        for (wallet, identity) in identities {
            self.record_identity(wallet, identity);
        }
    }
}

/// The secure elements' signatures each offline command carries (attestation, records received,
/// unload); a sync whose entries are not the attested ones is refused here.
fn se_signatures_of(
    commands: &[Command],
    refused: &mut [Option<CommandError>],
) -> Vec<Vec<SeSigned>> {
    commands
        .iter()
        .zip(refused.iter_mut())
        .map(|(command, refused)| match se_signatures(command) {
            Ok(signed) => signed,
            Err(error) => {
                refused.get_or_insert(error);
                Vec::new()
            }
        })
        .collect()
}

/// The operator tier's signing desk: verifies holders' signatures on every core, drops what fails,
/// and signs the rest once as a batch for the registration center.
pub struct BatchDesk {
    pub operator: OperatorId,
    key: KeyPair,
    threads: usize,
}

/// A batch ready for the center, and the positions of the commands refused before it.
pub struct PreparedBatch {
    pub submission: Submission,
    /// Index into the input of each command kept in the submission.
    pub kept: Vec<usize>,
    pub refused: Vec<(usize, CommandError)>,
}

impl BatchDesk {
    /// `threads` = 0 uses every core.
    pub fn new(operator: OperatorId, key: KeyPair, threads: usize) -> BatchDesk {
        BatchDesk {
            operator,
            key,
            threads,
        }
    }

    /// The key this operator seals its holders' identities under.
    pub fn identity_key(&self) -> IdentityKey {
        IdentityKey::of_operator(&self.key)
    }

    pub fn prepare(&self, commands: &[Command]) -> PreparedBatch {
        // A text field too long to encode, or a phone, name or ID number that fails its check
        // (which only the clear form allows), is refused before anything encodes the command.
        let mut refused_first: Vec<Option<CommandError>> = commands
            .iter()
            .map(|c| {
                c.check_text_fields()
                    .and_then(|()| c.check_personal_fields())
                    .err()
            })
            .collect();
        let messages: Vec<Option<Vec<u8>>> = commands
            .iter()
            .zip(&refused_first)
            .map(|(c, refused)| match refused {
                None => c.signed_message(),
                Some(_) => None,
            })
            .collect();
        let se_signed = se_signatures_of(commands, &mut refused_first);
        let mut items = Vec::with_capacity(commands.len());
        let mut signed_positions = Vec::with_capacity(commands.len());
        for (position, (command, message)) in commands.iter().zip(&messages).enumerate() {
            if refused_first[position].is_some() {
                continue;
            }
            if let (Some(auth), Some(message)) = (command.auth(), message) {
                items.push(SignedItem {
                    key: &auth.public_key,
                    message,
                    signature: &auth.signature,
                });
                signed_positions.push(position);
            }
            for signed in &se_signed[position] {
                items.push(SignedItem {
                    key: &signed.key,
                    message: &signed.digest,
                    signature: &signed.signature,
                });
                signed_positions.push(position);
            }
        }
        let verdicts = verify_all_parallel(&items, self.threads);
        let mut bad = vec![false; commands.len()];
        for (position, verdict) in signed_positions.iter().zip(verdicts) {
            bad[*position] |= verdict.is_err();
        }
        let (mut kept, mut refused, mut good) = (Vec::new(), Vec::new(), Vec::new());
        for (position, command) in commands.iter().enumerate() {
            if let Some(error) = &refused_first[position] {
                refused.push((position, error.clone()));
            } else if bad[position] {
                refused.push((position, CommandError::SignatureInvalid));
            } else {
                kept.push(position);
                good.push(command.clone());
            }
        }
        let submission = Submission::new(Origin::Operator(self.operator), &good, &self.key);
        PreparedBatch {
            submission,
            kept,
            refused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amount::Amount;
    use crate::command::decode_commands;
    use crate::ids::IdempotencyKey;

    #[test]
    fn the_desk_drops_bad_signatures_and_keeps_the_rest_in_order() {
        let holder = KeyPair::from_seed(b"holder");
        let desk = BatchDesk::new(OperatorId(1), KeyPair::from_seed(b"op"), 2);
        let context = crate::signing::SigningContext {
            deployment: crate::signing::DeploymentId([7; 16]),
            operator: OperatorId(1),
        };
        let sign = |command: Command| command.sign(&holder, &context, 60_000);
        let pay = |fen: i64| Command::Pay {
            payer: WalletId(1),
            payee: WalletId(2),
            amount: Amount::from_fen(fen),
            key: IdempotencyKey(fen as u128),
            auth: None,
        };
        let Command::Pay { auth, .. } = sign(pay(5)) else {
            unreachable!()
        };
        let tampered = Command::Pay {
            payer: WalletId(1),
            payee: WalletId(2),
            amount: Amount::from_fen(6),
            key: IdempotencyKey(5),
            auth,
        };
        let commands = vec![sign(pay(1)), tampered, pay(3), sign(pay(4))];
        let prepared = desk.prepare(&commands);
        assert_eq!(prepared.kept, vec![0, 2, 3]);
        assert_eq!(prepared.refused.len(), 1);
        assert_eq!(prepared.refused[0].0, 1);
        assert_eq!(prepared.refused[0].1.code(), "SIGNATURE_INVALID");
        prepared
            .submission
            .verify(&KeyPair::from_seed(b"op").public_key())
            .unwrap();
        let kept = decode_commands(&prepared.submission.commands).unwrap();
        assert_eq!(
            kept,
            vec![
                commands[0].clone(),
                commands[2].clone(),
                commands[3].clone()
            ]
        );
    }
}
