//! Who lives in the city: people and their roles, shops and their categories, secure-element
//! cards, and the episodes actors play.

use super::*;

/// What a person in the city does and is: the generator's shadow of the ledger, refreshed from
/// the state every night.
#[derive(Clone, Debug)]
pub(super) struct Person {
    pub(super) wallet: WalletId,
    pub(super) operator: OperatorId,
    pub(super) class: WalletClass,
    /// Spendable: last night's balance, less what was spent since, plus exchanges.
    pub(super) balance: i64,
    /// Received today: counted against the balance cap, not spent before the ledger has it.
    pub(super) incoming: i64,
    pub(super) spent_today: i64,
    pub(super) friends: [u32; 6],
    pub(super) sub_wallet: Option<(SubWalletId, usize)>,
    pub(super) role: Role,
    /// The payment-code step last charged: a wallet's code is taken once a step.
    pub(super) last_code_step: Option<u64>,
}

/// Who a person is in the simulation. Everyone pays and gets paid as people do; actors also
/// play their part in a labelled pattern and are kept out of the near misses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    Benign,
    Actor(Pattern),
    /// Sends the money a pass-through actor moves on; unlabelled, as a victim would be.
    Source,
}

impl Person {
    pub(super) fn limits(&self) -> ClassLimits {
        ClassLimits::default_for(self.class)
    }

    pub(super) fn can_pay(&self, amount: Amount) -> bool {
        let limits = self.limits();
        let fen = amount.fen();
        fen <= self.balance
            && limits.single_payment.is_none_or(|l| fen <= l.fen())
            && limits
                .daily
                .is_none_or(|l| self.spent_today + fen <= l.fen())
    }

    pub(super) fn can_receive(&self, amount: Amount) -> bool {
        self.limits()
            .balance_cap
            .is_none_or(|cap| self.balance + self.incoming + amount.fen() <= cap.fen())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ShopKind {
    Store,
    Online,
    Delivery,
}

#[derive(Clone, Debug)]
pub(super) struct Shop {
    pub(super) id: MerchantId,
    pub(super) wallet: WalletId,
    pub(super) operator: OperatorId,
    pub(super) kind: ShopKind,
    /// Typical payment range in yuan.
    pub(super) range: (i64, i64),
    /// Terminal numbers: POS till, scan gun, courier or web checkout.
    pub(super) pos: u16,
    pub(super) scan_gun: u16,
    pub(super) remote: u16,
    pub(super) balance: i64,
}

/// Merchant categories: code, kind, typical yuan range.
pub(super) const CATEGORIES: [(u16, ShopKind, (i64, i64)); 12] = [
    (5411, ShopKind::Store, (10, 400)),
    (5812, ShopKind::Store, (30, 400)),
    (5814, ShopKind::Store, (8, 60)),
    (5499, ShopKind::Store, (3, 80)),
    (5541, ShopKind::Store, (100, 500)),
    (4121, ShopKind::Store, (12, 120)),
    (5912, ShopKind::Store, (15, 300)),
    (5651, ShopKind::Store, (60, 1_200)),
    (8299, ShopKind::Store, (200, 1_900)),
    (5732, ShopKind::Online, (100, 1_900)),
    (5399, ShopKind::Online, (15, 600)),
    (5811, ShopKind::Delivery, (20, 150)),
];

/// A secure element in the city: a holder's card or phone, or a merchant's phone.
pub(super) struct Card {
    pub(super) id: DeviceId,
    pub(super) applet: Applet,
    pub(super) operator: OperatorId,
    pub(super) key: KeyPair,
    pub(super) owner: usize,
    pub(super) balance: i64,
    pub(super) blocked: bool,
}

/// An episode of a labelled pattern, or one step of one, due on a day.
#[derive(Clone, Copy, Debug)]
pub(super) struct Episode {
    pub(super) day: u32,
    pub(super) pattern: Pattern,
    pub(super) actor: usize,
    pub(super) label: usize,
}

impl Card {
    pub(super) fn applet_cap(&self) -> i64 {
        WalletForm::PhoneEse.default_caps().balance_cap.fen()
    }
}
