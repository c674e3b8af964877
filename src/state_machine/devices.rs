//! Dual offline at the center: secure elements registered, loaded, unloaded, synced and paid
//! out at a counter, each fact as the secure element signed it.

use super::*;

impl StateMachine {
    pub fn devices(&self) -> &DeviceRegistry {
        &self.devices
    }

    pub(super) fn register_device(
        &mut self,
        origin: Origin,
        operator: OperatorId,
        device: DeviceId,
        (public_key, wallet, caps): (PublicKey, Option<WalletId>, DeviceCaps),
        auth: &Option<HolderAuth>,
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
            self.check_holder_auth(wallet, auth, now)?;
        }
        let registered = RegisteredDevice::new(operator, wallet, public_key, caps);
        self.devices
            .register(device, registered, &mut self.ledger, now)?;
        Ok(Outcome::Done)
    }

    /// Value from the holder's wallet (or the vault, for cash at a counter) into its secure
    /// element: a movement out of the wallet like a payment, so it counts against the wallet's
    /// daily and annual limits.
    pub(super) fn load_device(
        &mut self,
        origin: Origin,
        id: DeviceId,
        (load_seq, amount): (u32, Amount),
        auth: &Option<HolderAuth>,
        now: u64,
    ) -> CommandResult {
        check_amount(amount)?;
        let device = self.devices.device(id)?;
        let op = self.require_operator(origin, device.operator)?;
        let (float, vault, wallet) = (op.offline_float, op.vault, device.wallet);
        if let Some(wallet) = wallet {
            self.check_holder_auth(wallet, auth, now)?;
        }
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
    pub(super) fn unload_device(
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

    pub(super) fn refund_at_counter(
        &mut self,
        origin: Origin,
        device: DeviceId,
        now: u64,
    ) -> CommandResult {
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
    pub(super) fn begin_sync(
        &mut self,
        origin: Origin,
        device: DeviceId,
        now: u64,
    ) -> CommandResult {
        let operator = self.devices.device(device)?.operator;
        self.require_operator(origin, operator)?;
        Ok(Outcome::SyncNonce(self.devices.begin_sync(device, now)?))
    }

    pub(super) fn sync_offline(
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

    /// The issuing operator blocks its secure element; blocking one already blocked changes
    /// nothing and keeps the first reason.
    pub(super) fn block_device(
        &mut self,
        origin: Origin,
        device: DeviceId,
        now: u64,
    ) -> CommandResult {
        let operator = self.devices.device(device)?.operator;
        self.require_operator(origin, operator)?;
        self.devices
            .block_by_issuer(device, &mut self.ledger, now)?;
        Ok(Outcome::Done)
    }
}
