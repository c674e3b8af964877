//! Checks before the log, off the state machine's thread: the batch's origin and signature, that
//! its commands decode, and every signature a holder or a secure element made that the batch
//! carries, verified on every core.

use super::*;

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
    pub(super) central_bank: Option<PublicKey>,
    pub(super) operators: Vec<PublicKey>,
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
