//! Sub-wallets: a holder pushes a sub-wallet to one merchant app (an online shop) so the app can
//! charge it without asking each time, within the per-payment and daily limits the holder set.
//! The merchant knows it only by its token (`SW…`): never the wallet id, name or phone behind it.
//! The holder changes the limits or closes it at any time; a closed sub-wallet is refused at once.
//!
//! A sub-wallet holds no money of its own: a charge is a payment out of the parent wallet, so the
//! parent's class limits and balance apply as well as the sub-wallet's.

use crate::amount::Amount;
use crate::codec::{DecodeError, Reader, Writer};
use crate::error::CommandError;
use crate::ids::{MerchantId, SubWalletId, WalletId};
use crate::time::china_day;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubWalletLimits {
    pub per_payment: Amount,
    pub daily: Amount,
}

impl SubWalletLimits {
    pub fn check(&self) -> Result<(), CommandError> {
        let positive = self.per_payment.fen() > 0 && self.daily.fen() > 0;
        if positive && self.per_payment <= self.daily {
            Ok(())
        } else {
            Err(CommandError::SubWalletLimitsInvalid)
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubWallet {
    pub id: SubWalletId,
    pub wallet: WalletId,
    pub merchant: MerchantId,
    pub limits: SubWalletLimits,
    pub open: bool,
    /// China-time day of `charged_today`.
    day: u32,
    charged_today: Amount,
}

impl SubWallet {
    /// Charged so far on the day of `now_ms`.
    pub fn charged_on(&self, now_ms: u64) -> Amount {
        if china_day(now_ms) == self.day {
            self.charged_today
        } else {
            Amount::ZERO
        }
    }

    /// Checks that `merchant` may charge `amount` now.
    pub fn check_charge(
        &self,
        merchant: MerchantId,
        amount: Amount,
        now_ms: u64,
    ) -> Result<(), CommandError> {
        if merchant != self.merchant {
            return Err(CommandError::NotYourSubWallet {
                sub_wallet: self.id,
                merchant,
            });
        }
        if !self.open {
            return Err(CommandError::SubWalletClosed(self.id));
        }
        if amount > self.limits.per_payment {
            return Err(CommandError::SubWalletLimitSingle {
                sub_wallet: self.id,
                amount,
                limit: self.limits.per_payment,
            });
        }
        let used = self.charged_on(now_ms);
        if used.fen() + amount.fen() > self.limits.daily.fen() {
            return Err(CommandError::SubWalletLimitDaily {
                sub_wallet: self.id,
                amount,
                limit: self.limits.daily,
                used,
            });
        }
        Ok(())
    }

    pub fn record_charge(&mut self, amount: Amount, now_ms: u64) {
        let used = self.charged_on(now_ms);
        self.day = china_day(now_ms);
        self.charged_today = Amount::from_fen(used.fen() + amount.fen());
    }
}

/// Every sub-wallet ever opened; ids are dense and never reused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubWallets {
    all: Vec<SubWallet>,
}

impl SubWallets {
    pub fn get(&self, id: SubWalletId) -> Result<&SubWallet, CommandError> {
        id.slot()
            .and_then(|slot| self.all.get(slot))
            .ok_or(CommandError::UnknownSubWallet(id))
    }

    pub fn get_mut(&mut self, id: SubWalletId) -> Result<&mut SubWallet, CommandError> {
        id.slot()
            .and_then(|slot| self.all.get_mut(slot))
            .ok_or(CommandError::UnknownSubWallet(id))
    }

    pub fn open(
        &mut self,
        wallet: WalletId,
        merchant: MerchantId,
        limits: SubWalletLimits,
    ) -> Result<SubWalletId, CommandError> {
        limits.check()?;
        let id = SubWalletId(self.all.len() as u32 + 1);
        self.all.push(SubWallet {
            id,
            wallet,
            merchant,
            limits,
            open: true,
            day: 0,
            charged_today: Amount::ZERO,
        });
        Ok(id)
    }

    /// The sub-wallets of one wallet (what its holder sees in the app).
    pub fn of_wallet(&self, wallet: WalletId) -> impl Iterator<Item = &SubWallet> {
        self.all.iter().filter(move |s| s.wallet == wallet)
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    pub(crate) fn encode(&self, out: &mut Writer) {
        out.u32(self.all.len() as u32);
        for sub in &self.all {
            out.u32(sub.wallet.0)
                .u32(sub.merchant.0)
                .i64(sub.limits.per_payment.fen())
                .i64(sub.limits.daily.fen())
                .u8(u8::from(sub.open))
                .u32(sub.day)
                .i64(sub.charged_today.fen());
        }
    }

    pub(crate) fn decode(input: &mut Reader<'_>) -> Result<SubWallets, DecodeError> {
        let count = input.u32("sub-wallet count")?;
        let all = (0..count)
            .map(|index| {
                Ok(SubWallet {
                    id: SubWalletId(index + 1),
                    wallet: WalletId(input.u32("sub-wallet parent")?),
                    merchant: MerchantId(input.u32("sub-wallet merchant")?),
                    limits: SubWalletLimits {
                        per_payment: Amount::from_fen(input.i64("per-payment limit")?),
                        daily: Amount::from_fen(input.i64("daily limit")?),
                    },
                    open: input.bool("sub-wallet open")?,
                    day: input.u32("sub-wallet day")?,
                    charged_today: Amount::from_fen(input.i64("charged today")?),
                })
            })
            .collect::<Result<Vec<_>, DecodeError>>()?;
        Ok(SubWallets { all })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::time::DAY_MS;

    fn limits(per_payment: i64, daily: i64) -> SubWalletLimits {
        SubWalletLimits {
            per_payment: Amount::from_fen(per_payment),
            daily: Amount::from_fen(daily),
        }
    }

    #[test]
    fn charges_stay_within_the_holders_limits_and_the_day_resets() {
        let mut subs = SubWallets::default();
        let shop = MerchantId(1);
        let id = subs
            .open(WalletId(5), shop, limits(10_000, 15_000))
            .unwrap();
        let sub = subs.get_mut(id).unwrap();
        let fen = Amount::from_fen;
        assert_eq!(
            sub.check_charge(shop, fen(10_001), 0).unwrap_err().code(),
            "SUB_WALLET_LIMIT_SINGLE"
        );
        sub.check_charge(shop, fen(10_000), 0).unwrap();
        sub.record_charge(fen(10_000), 0);
        assert_eq!(
            sub.check_charge(shop, fen(5_001), 1).unwrap_err().code(),
            "SUB_WALLET_LIMIT_DAILY"
        );
        sub.check_charge(shop, fen(5_000), 1).unwrap();
        sub.check_charge(shop, fen(10_000), DAY_MS).unwrap();
        assert_eq!(
            sub.check_charge(MerchantId(2), fen(1), 1)
                .unwrap_err()
                .code(),
            "NOT_YOUR_SUB_WALLET"
        );
        sub.open = false;
        assert_eq!(
            sub.check_charge(shop, fen(1), 1).unwrap_err().code(),
            "SUB_WALLET_CLOSED"
        );
    }

    #[test]
    fn limits_must_be_positive_and_ordered() {
        let mut subs = SubWallets::default();
        for bad in [
            limits(0, 100),
            limits(100, 0),
            limits(200, 100),
            limits(-1, 100),
        ] {
            assert_eq!(
                subs.open(WalletId(1), MerchantId(1), bad)
                    .unwrap_err()
                    .code(),
                "SUB_WALLET_LIMITS_INVALID"
            );
        }
        assert!(subs.is_empty());
        assert_eq!(
            subs.get(SubWalletId(1)).unwrap_err().code(),
            "UNKNOWN_SUB_WALLET"
        );
    }

    #[test]
    fn sub_wallets_round_trip_through_the_snapshot_encoding() {
        let mut subs = SubWallets::default();
        let id = subs
            .open(WalletId(5), MerchantId(1), limits(100, 300))
            .unwrap();
        subs.get_mut(id)
            .unwrap()
            .record_charge(Amount::from_fen(50), 3 * DAY_MS);
        subs.open(WalletId(6), MerchantId(2), limits(1, 1)).unwrap();
        let mut out = Writer::new();
        subs.encode(&mut out);
        assert_eq!(
            SubWallets::decode(&mut Reader::new(&out.bytes)).unwrap(),
            subs
        );
    }
}
