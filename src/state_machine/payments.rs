//! Payments between wallets: the holder's signature each needs, the idempotency rule every
//! keyed command follows, and one- and two-phase payments.

use super::*;

impl StateMachine {
    /// A command that moves a holder's money (debits the wallet, spends or commits it on the
    /// holder's behalf) must carry the holder's signature: no operator's word stands in for it.
    /// The signature was verified at the center's door (`Validator`), before the log; here it
    /// must be by the wallet's registered key, name this deployment and the wallet's operator,
    /// and be inside its window at the entry's time.
    pub(super) fn check_holder_auth(
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

    /// What every holder-signed movement of a wallet's money checks first: a positive amount, a
    /// wallet of the calling operator's, and the holder's signature on it.
    pub(super) fn check_holder_movement(
        &self,
        origin: Origin,
        wallet: WalletId,
        amount: Amount,
        auth: &Option<HolderAuth>,
        now: u64,
    ) -> Result<(), CommandError> {
        check_amount(amount)?;
        self.own_wallet(origin, wallet)?;
        self.check_holder_auth(wallet, auth, now)
    }

    /// Runs a money-moving command under its idempotency key; its result is the transfer it made.
    pub(super) fn keyed(
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
    pub(super) fn claimed(
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

    /// Checks everything a payment or hold from `payer` to `payee` needs, short of the balance.
    pub(super) fn check_payment(
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
    pub(super) fn pay(
        &mut self,
        origin: Origin,
        payer: WalletId,
        payee: WalletId,
        amount: Amount,
        by: Keyed,
        auth: Option<HolderAuth>,
        now: u64,
    ) -> CommandResult {
        self.check_holder_movement(origin, payer, amount, &auth, now)?;
        self.keyed(payer, by, |state| {
            let leg = state.check_payment(origin, payer, payee, amount, now)?;
            let event = state.ledger.transfer(leg, now)?;
            state.wallet_mut(payer).record_outgoing(amount, now);
            Ok(event)
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn hold(
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
        self.check_holder_movement(origin, payer, amount, &auth, now)?;
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

    pub(super) fn resolve_hold(
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
}
