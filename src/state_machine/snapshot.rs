//! The state's snapshot: a canonical encoding of everything the log built, and its hash.

use super::*;

impl StateMachine {
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
        // Last, so that a snapshot written before suspensions existed still reads.
        let suspended: Vec<&Operator> = self.operators.iter().filter(|op| op.suspended).collect();
        out.u64(suspended.len() as u64);
        for op in suspended {
            out.u16(op.id.0);
        }
        out.bytes
    }

    pub(super) fn encode_operators(&self, out: &mut Writer) {
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
            for _ in 0..input.u64("suspended operators")? {
                let id = OperatorId(input.u16("suspended operator")?);
                let slot = id.slot().filter(|slot| *slot < state.operators.len());
                let slot = slot.ok_or(DecodeError {
                    what: "suspended operator",
                    offset: input.offset(),
                })?;
                state.operators[slot].suspended = true;
            }
        }
        if !input.is_empty() {
            return Err(DecodeError {
                what: "trailing snapshot bytes",
                offset: input.offset(),
            });
        }
        Ok(state)
    }

    pub(super) fn decode_operators(&mut self, input: &mut Reader<'_>) -> Result<(), DecodeError> {
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
