//! De-anonymization: the only way to link a pseudonymous wallet to a person. The wallet's
//! operator alone may ask, with a legal reason; the state machine logs every request (operator,
//! wallet, reason, time) and the log survives replay. The identity itself never enters the log:
//! the operator reads it from its own directory with the logged request's id, and the central
//! bank and the analysis center see only who looked and why.

use super::*;
use crate::ids::IdentityLookupId;
use crate::operator::{check_deanonymization_reason, DisclosedIdentity, IdentityLookup};

impl StateMachine {
    /// Every de-anonymization so far, oldest first: who looked, at which wallet, why, when.
    pub fn deanonymization_log(&self) -> &[IdentityLookup] {
        &self.identity_lookups
    }

    pub(super) fn deanonymize(
        &mut self,
        origin: Origin,
        wallet: WalletId,
        reason: String,
        now: u64,
    ) -> CommandResult {
        let owner = self.wallet(wallet)?.operator;
        match origin {
            Origin::CentralBank => {
                return Err(CommandError::IdentityAtOperatorOnly { wallet, owner });
            }
            // Another operator hears of the wallet as of none: it learns nothing of where it is.
            Origin::Operator(caller) if caller != owner => {
                return Err(CommandError::UnknownWallet(wallet));
            }
            Origin::Operator(_) => {}
        }
        check_deanonymization_reason(&reason)?;
        let id = IdentityLookupId(self.identity_lookups.len() as u32 + 1);
        self.identity_lookups.push(IdentityLookup {
            id,
            operator: owner,
            wallet,
            reason,
            at_ms: now,
        });
        Ok(Outcome::IdentityLookup(id))
    }

    /// The identity a logged de-anonymization disclosed, for the operator that made it only:
    /// the phone number, name and ID number it holds for the wallet.
    pub fn disclosed_identity(
        &self,
        caller: Origin,
        lookup: IdentityLookupId,
    ) -> Result<DisclosedIdentity, CommandError> {
        let entry = lookup
            .slot()
            .and_then(|slot| self.identity_lookups.get(slot))
            .ok_or(CommandError::UnknownIdentityLookup(lookup))?;
        let (wallet, owner) = (entry.wallet, entry.operator);
        match caller {
            Origin::Operator(operator) if operator == owner => {}
            Origin::Operator(_) => return Err(CommandError::UnknownIdentityLookup(lookup)),
            Origin::CentralBank => {
                return Err(CommandError::IdentityAtOperatorOnly { wallet, owner })
            }
        }
        let operator = self.operator(owner)?;
        Ok(DisclosedIdentity {
            lookup,
            wallet,
            phone: operator.phone_of(wallet),
            identity: operator.identity(wallet).cloned().unwrap_or_default(),
        })
    }

    pub(super) fn encode_identity_lookups(&self, out: &mut Writer) {
        out.u32(self.identity_lookups.len() as u32);
        for lookup in &self.identity_lookups {
            out.u16(lookup.operator.0)
                .u32(lookup.wallet.0)
                .str(&lookup.reason)
                .u64(lookup.at_ms);
        }
    }

    pub(super) fn decode_identity_lookups(
        input: &mut Reader<'_>,
    ) -> Result<Vec<IdentityLookup>, DecodeError> {
        (0..input.u32("de-anonymization count")?)
            .map(|index| {
                Ok(IdentityLookup {
                    id: IdentityLookupId(index + 1),
                    operator: OperatorId(input.u16("de-anonymization operator")?),
                    wallet: WalletId(input.u32("de-anonymization wallet")?),
                    reason: input.string("de-anonymization reason")?,
                    at_ms: input.u64("de-anonymization time")?,
                })
            })
            .collect()
    }
}
