//! Acquiring: the merchants an operator signs up, their terminals, the orders they present (a
//! dynamic QR at a till or on a courier's device), the payments they receive on every channel and
//! the refunds they give back along those payments. Part of the state machine's state: every
//! payment and refund here is also a ledger transfer, and this book only says which merchant,
//! channel, terminal and order a transfer belongs to.
//!
//! A merchant sees payers only through what this book keeps for it: transfer ids, amounts,
//! channels, orders and (for e-commerce) sub-wallet tokens — never a payer's wallet id, name or
//! phone. The payer's wallet is kept so a refund can go back along the payment.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::amount::Amount;
use crate::channels::emvco::Mcc;
use crate::codec::{DecodeError, Reader, Writer};
use crate::error::CommandError;
use crate::ids::{EventId, MerchantId, OperatorId, SubWalletId, WalletId};
use crate::time::china_day;

/// Longest merchant name: what an EMVCo QR's merchant-name field holds.
pub const MERCHANT_NAME_CHARS_MAX: usize = 25;
/// Longest order reference: the EMVCo bill-number field.
pub const ORDER_REFERENCE_CHARS_MAX: usize = 25;
/// Terminals one merchant may register: a chain's store has a few dozen tills; more is a
/// merchant filling the operator's tables (the guess limiter, the token book).
pub const TERMINALS_PER_MERCHANT_MAX: usize = 1_000;

/// What a terminal is; a courier's device is the only kind that presents cash-on-delivery orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TerminalKind {
    /// A till with a screen that shows dynamic QR codes.
    Pos = 1,
    /// A scan gun that reads customers' payment codes.
    ScanGun = 2,
    /// A courier's handheld for cash on delivery.
    Courier = 3,
    /// A web or app checkout.
    OnlineShop = 4,
}

impl TerminalKind {
    pub const ALL: [TerminalKind; 4] = [
        TerminalKind::Pos,
        TerminalKind::ScanGun,
        TerminalKind::Courier,
        TerminalKind::OnlineShop,
    ];

    pub fn from_u8(value: u8) -> Option<TerminalKind> {
        Self::ALL.into_iter().find(|kind| *kind as u8 == value)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TerminalKind::Pos => "pos",
            TerminalKind::ScanGun => "scan_gun",
            TerminalKind::Courier => "courier",
            TerminalKind::OnlineShop => "online_shop",
        }
    }

    pub fn parse(text: &str) -> Option<TerminalKind> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// How the payer reached the merchant: the statistics and red-packet reports count by this.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PaymentChannel {
    /// The shop's printed QR; the payer typed the amount.
    StaticQr = 1,
    /// A QR for one order, at a till or a web checkout.
    DynamicQr = 2,
    /// The NFC tag on the merchant's stand.
    TapZone = 3,
    /// The customer's one-time code, read by the merchant's scan gun.
    PaymentCode = 4,
    /// A merchant app charging the sub-wallet a holder pushed to it.
    SubWallet = 5,
    /// A courier's dynamic QR, paid at the door.
    CashOnDelivery = 6,
}

impl PaymentChannel {
    pub const ALL: [PaymentChannel; 6] = [
        PaymentChannel::StaticQr,
        PaymentChannel::DynamicQr,
        PaymentChannel::TapZone,
        PaymentChannel::PaymentCode,
        PaymentChannel::SubWallet,
        PaymentChannel::CashOnDelivery,
    ];

    pub fn from_u8(value: u8) -> Option<PaymentChannel> {
        Self::ALL
            .into_iter()
            .find(|channel| *channel as u8 == value)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentChannel::StaticQr => "static_qr",
            PaymentChannel::DynamicQr => "dynamic_qr",
            PaymentChannel::TapZone => "tap_zone",
            PaymentChannel::PaymentCode => "payment_code",
            PaymentChannel::SubWallet => "sub_wallet",
            PaymentChannel::CashOnDelivery => "cash_on_delivery",
        }
    }

    pub fn parse(text: &str) -> Option<PaymentChannel> {
        Self::ALL
            .into_iter()
            .find(|channel| channel.as_str() == text)
    }
}

impl fmt::Display for PaymentChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A merchant signed up at an operator, settling into one of that operator's wallets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merchant {
    pub id: MerchantId,
    pub operator: OperatorId,
    pub wallet: WalletId,
    pub name: String,
    pub mcc: Mcc,
    /// GB/T 2260 administrative division code, e.g. 320500 for Suzhou.
    pub region: u32,
    /// Terminal `n` is `terminals[n - 1]`; terminal 0 means none (a payer scanning a printed QR).
    pub terminals: Vec<TerminalKind>,
}

impl Merchant {
    pub fn terminal(&self, number: u16) -> Result<Option<TerminalKind>, CommandError> {
        if number == 0 {
            return Ok(None);
        }
        self.terminals
            .get(number as usize - 1)
            .copied()
            .map(Some)
            .ok_or(CommandError::UnknownTerminal {
                merchant: self.id,
                terminal: number,
            })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderStatus {
    Open,
    Paid(EventId),
    /// Paid at the door: paid and delivered in the same step.
    Delivered(EventId),
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Open => "open",
            OrderStatus::Paid(_) => "paid",
            OrderStatus::Delivered(_) => "delivered",
        }
    }

    pub fn transfer(self) -> Option<EventId> {
        match self {
            OrderStatus::Open => None,
            OrderStatus::Paid(id) | OrderStatus::Delivered(id) => Some(id),
        }
    }
}

/// One order a merchant presents as a dynamic QR: one amount, paid once, before it expires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    pub merchant: MerchantId,
    pub reference: String,
    pub amount: Amount,
    pub expires_at_ms: u64,
    /// The terminal that presented it; a courier's for cash on delivery.
    pub terminal: u16,
    pub cash_on_delivery: bool,
    pub status: OrderStatus,
}

/// A payment a merchant received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerchantPayment {
    pub transfer: EventId,
    pub merchant: MerchantId,
    /// Kept for refunds; never shown to the merchant.
    pub payer: WalletId,
    pub amount: Amount,
    pub refunded: Amount,
    pub channel: PaymentChannel,
    pub terminal: u16,
    pub at_ms: u64,
    pub order: Option<String>,
    pub sub_wallet: Option<SubWalletId>,
}

impl MerchantPayment {
    pub fn refundable(&self) -> Amount {
        Amount::from_fen(self.amount.fen() - self.refunded.fen())
    }
}

/// A refund a merchant gave, along one payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MerchantRefund {
    pub transfer: EventId,
    pub payment: EventId,
    pub amount: Amount,
    pub at_ms: u64,
}

/// One channel's line in a settlement report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelTotal {
    pub channel: PaymentChannel,
    pub payments: u64,
    pub amount: Amount,
}

/// What a merchant received and gave back on one China-time day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettlementReport {
    pub merchant: MerchantId,
    /// Days since 1970-01-01 in China time.
    pub day: u32,
    pub payments: u64,
    pub gross: Amount,
    pub refunds: u64,
    pub refunded: Amount,
    /// Gross less refunds: what the day added to the merchant's wallet.
    pub net: Amount,
    /// Every channel that had a payment that day, in channel order.
    pub by_channel: Vec<ChannelTotal>,
}

/// The acquiring book: merchants, orders, payments and refunds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Acquiring {
    merchants: Vec<Merchant>,
    /// Ordered so snapshots and state hashes do not depend on a hash map's order.
    orders: BTreeMap<(MerchantId, String), Order>,
    payments: Vec<MerchantPayment>,
    refunds: Vec<MerchantRefund>,
    // Indexes rebuilt from the lists above.
    payment_by_transfer: HashMap<EventId, u32>,
    payments_of: Vec<Vec<u32>>,
    refunds_of: Vec<Vec<u32>>,
}

/// A city name for a merchant's QR from its region code; the code itself where none is known.
pub fn city_of_region(region: u32) -> String {
    let known = match region / 100 {
        1100 => "Beijing",
        3100 => "Shanghai",
        3205 => "Suzhou",
        4403 => "Shenzhen",
        4401 => "Guangzhou",
        5101 => "Chengdu",
        3301 => "Hangzhou",
        1306 => "Xiongan",
        _ => return format!("CN{region:06}"),
    };
    known.to_string()
}

pub fn check_order_reference(reference: &str) -> Result<(), CommandError> {
    let ok = !reference.is_empty()
        && reference.len() <= ORDER_REFERENCE_CHARS_MAX
        && reference.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if ok {
        Ok(())
    } else {
        Err(CommandError::MalformedOrderReference(
            reference.chars().take(40).collect(),
        ))
    }
}

impl Acquiring {
    pub fn merchants(&self) -> &[Merchant] {
        &self.merchants
    }

    pub fn merchant(&self, id: MerchantId) -> Result<&Merchant, CommandError> {
        id.index()
            .checked_sub(1)
            .and_then(|i| self.merchants.get(i))
            .ok_or(CommandError::UnknownMerchant(id))
    }

    pub fn next_merchant_id(&self) -> MerchantId {
        MerchantId(self.merchants.len() as u32 + 1)
    }

    pub fn onboard(
        &mut self,
        operator: OperatorId,
        wallet: WalletId,
        name: String,
        mcc: Mcc,
        region: u32,
    ) -> Result<MerchantId, CommandError> {
        let chars = name.chars().count();
        if chars == 0 || chars > MERCHANT_NAME_CHARS_MAX || name.chars().any(char::is_control) {
            return Err(CommandError::MalformedMerchantName {
                max: MERCHANT_NAME_CHARS_MAX,
            });
        }
        let id = self.next_merchant_id();
        self.merchants.push(Merchant {
            id,
            operator,
            wallet,
            name,
            mcc,
            region,
            terminals: Vec::new(),
        });
        self.payments_of.push(Vec::new());
        self.refunds_of.push(Vec::new());
        Ok(id)
    }

    pub fn add_terminal(
        &mut self,
        id: MerchantId,
        kind: TerminalKind,
    ) -> Result<u16, CommandError> {
        self.merchant(id)?;
        let merchant = &mut self.merchants[id.index() - 1];
        if merchant.terminals.len() >= TERMINALS_PER_MERCHANT_MAX {
            return Err(CommandError::TerminalLimitReached {
                max: TERMINALS_PER_MERCHANT_MAX,
            });
        }
        merchant.terminals.push(kind);
        Ok(merchant.terminals.len() as u16)
    }

    pub fn order(&self, merchant: MerchantId, reference: &str) -> Result<&Order, CommandError> {
        self.orders
            .get(&(merchant, reference.to_string()))
            .ok_or_else(|| CommandError::UnknownOrder {
                merchant,
                reference: reference.to_string(),
            })
    }

    pub fn create_order(&mut self, order: Order) -> Result<(), CommandError> {
        check_order_reference(&order.reference)?;
        let merchant = self.merchant(order.merchant)?;
        let kind = merchant.terminal(order.terminal)?;
        if order.cash_on_delivery && kind != Some(TerminalKind::Courier) {
            return Err(CommandError::TerminalKindWrong(
                "a cash-on-delivery order is presented by a courier terminal",
            ));
        }
        let key = (order.merchant, order.reference.clone());
        if self.orders.contains_key(&key) {
            return Err(CommandError::OrderExists {
                merchant: order.merchant,
                reference: order.reference,
            });
        }
        self.orders.insert(key, order);
        Ok(())
    }

    /// Checks a payment of `amount` for `reference` could settle the order now; its channel.
    pub fn check_order_payment(
        &self,
        merchant: MerchantId,
        reference: &str,
        amount: Amount,
        now_ms: u64,
    ) -> Result<PaymentChannel, CommandError> {
        let order = self.order(merchant, reference)?;
        if let Some(transfer) = order.status.transfer() {
            return Err(CommandError::OrderAlreadyPaid {
                reference: reference.to_string(),
                transfer,
            });
        }
        if now_ms > order.expires_at_ms {
            return Err(CommandError::OrderExpired {
                reference: reference.to_string(),
            });
        }
        if amount != order.amount {
            return Err(CommandError::OrderAmountMismatch {
                reference: reference.to_string(),
                expected: order.amount,
                got: amount,
            });
        }
        Ok(if order.cash_on_delivery {
            PaymentChannel::CashOnDelivery
        } else {
            PaymentChannel::DynamicQr
        })
    }

    /// Records a payment already posted to the ledger; marks its order paid (or delivered).
    pub fn record_payment(&mut self, payment: MerchantPayment) {
        if let Some(reference) = &payment.order {
            if let Some(order) = self.orders.get_mut(&(payment.merchant, reference.clone())) {
                order.status = if order.cash_on_delivery {
                    OrderStatus::Delivered(payment.transfer)
                } else {
                    OrderStatus::Paid(payment.transfer)
                };
            }
        }
        let index = self.payments.len() as u32;
        self.payment_by_transfer.insert(payment.transfer, index);
        self.payments_of[payment.merchant.index() - 1].push(index);
        self.payments.push(payment);
    }

    pub fn payment(&self, transfer: EventId) -> Result<&MerchantPayment, CommandError> {
        self.payment_by_transfer
            .get(&transfer)
            .map(|i| &self.payments[*i as usize])
            .ok_or(CommandError::NotAMerchantPayment(transfer))
    }

    /// Checks a refund of `amount` fits what is left of the payment.
    pub fn check_refund(&self, payment: EventId, amount: Amount) -> Result<(), CommandError> {
        let found = self.payment(payment)?;
        if amount > found.refundable() {
            return Err(CommandError::RefundExceedsPayment {
                payment,
                refundable: found.refundable(),
                asked: amount,
            });
        }
        Ok(())
    }

    /// Records a refund already posted to the ledger.
    pub fn record_refund(&mut self, refund: MerchantRefund) {
        let index = self.payment_by_transfer[&refund.payment] as usize;
        let payment = &mut self.payments[index];
        payment.refunded = Amount::from_fen(payment.refunded.fen() + refund.amount.fen());
        let merchant = payment.merchant;
        self.refunds_of[merchant.index() - 1].push(self.refunds.len() as u32);
        self.refunds.push(refund);
    }

    /// A merchant's payments, oldest first.
    pub fn payments_of(&self, merchant: MerchantId) -> impl Iterator<Item = &MerchantPayment> {
        self.payments_of
            .get(merchant.index().wrapping_sub(1))
            .into_iter()
            .flatten()
            .map(|i| &self.payments[*i as usize])
    }

    pub fn refunds_of(&self, merchant: MerchantId) -> impl Iterator<Item = &MerchantRefund> {
        self.refunds_of
            .get(merchant.index().wrapping_sub(1))
            .into_iter()
            .flatten()
            .map(|i| &self.refunds[*i as usize])
    }

    pub fn all_payments(&self) -> &[MerchantPayment] {
        &self.payments
    }

    /// The day's settlement report: payments and refunds made on `day` (China time).
    pub fn settlement_report(
        &self,
        merchant: MerchantId,
        day: u32,
    ) -> Result<SettlementReport, CommandError> {
        self.merchant(merchant)?;
        let mut report = SettlementReport {
            merchant,
            day,
            payments: 0,
            gross: Amount::ZERO,
            refunds: 0,
            refunded: Amount::ZERO,
            net: Amount::ZERO,
            by_channel: Vec::new(),
        };
        let mut by_channel: BTreeMap<PaymentChannel, (u64, i64)> = BTreeMap::new();
        for payment in self
            .payments_of(merchant)
            .filter(|p| china_day(p.at_ms) == day)
        {
            report.payments += 1;
            report.gross = Amount::from_fen(report.gross.fen() + payment.amount.fen());
            let line = by_channel.entry(payment.channel).or_default();
            line.0 += 1;
            line.1 += payment.amount.fen();
        }
        for refund in self
            .refunds_of(merchant)
            .filter(|r| china_day(r.at_ms) == day)
        {
            report.refunds += 1;
            report.refunded = Amount::from_fen(report.refunded.fen() + refund.amount.fen());
        }
        report.net = Amount::from_fen(report.gross.fen() - report.refunded.fen());
        report.by_channel = by_channel
            .into_iter()
            .map(|(channel, (payments, fen))| ChannelTotal {
                channel,
                payments,
                amount: Amount::from_fen(fen),
            })
            .collect();
        Ok(report)
    }

    // ----- snapshots -----

    pub(crate) fn encode(&self, out: &mut Writer) {
        out.u32(self.merchants.len() as u32);
        for merchant in &self.merchants {
            out.u16(merchant.operator.0)
                .u32(merchant.wallet.0)
                .str(&merchant.name)
                .u16(merchant.mcc.code())
                .u32(merchant.region)
                .u32(merchant.terminals.len() as u32);
            for kind in &merchant.terminals {
                out.u8(*kind as u8);
            }
        }
        out.u64(self.orders.len() as u64);
        for order in self.orders.values() {
            out.u32(order.merchant.0)
                .str(&order.reference)
                .i64(order.amount.fen())
                .u64(order.expires_at_ms)
                .u16(order.terminal)
                .u8(u8::from(order.cash_on_delivery));
            match order.status {
                OrderStatus::Open => out.u8(0).u64(0),
                OrderStatus::Paid(id) => out.u8(1).u64(id.0),
                OrderStatus::Delivered(id) => out.u8(2).u64(id.0),
            };
        }
        out.u64(self.payments.len() as u64);
        for payment in &self.payments {
            out.u64(payment.transfer.0)
                .u32(payment.merchant.0)
                .u32(payment.payer.0)
                .i64(payment.amount.fen())
                .i64(payment.refunded.fen())
                .u8(payment.channel as u8)
                .u16(payment.terminal)
                .u64(payment.at_ms)
                .opt_str(payment.order.as_deref())
                .u32(payment.sub_wallet.map_or(0, |s| s.0));
        }
        out.u64(self.refunds.len() as u64);
        for refund in &self.refunds {
            out.u64(refund.transfer.0)
                .u64(refund.payment.0)
                .i64(refund.amount.fen())
                .u64(refund.at_ms);
        }
    }

    pub(crate) fn decode(input: &mut Reader<'_>) -> Result<Acquiring, DecodeError> {
        let bad = |what, input: &Reader<'_>| DecodeError {
            what,
            offset: input.offset(),
        };
        let mut book = Acquiring::default();
        for index in 0..input.u32("merchant count")? {
            let operator = OperatorId(input.u16("merchant operator")?);
            let wallet = WalletId(input.u32("merchant wallet")?);
            let name = input.string("merchant name")?;
            let mcc = Mcc::new(input.u16("mcc")?).ok_or_else(|| bad("mcc", input))?;
            let region = input.u32("region")?;
            let terminals = (0..input.u32("terminal count")?)
                .map(|_| {
                    TerminalKind::from_u8(input.u8("terminal kind")?)
                        .ok_or_else(|| bad("terminal kind", input))
                })
                .collect::<Result<Vec<_>, _>>()?;
            book.merchants.push(Merchant {
                id: MerchantId(index + 1),
                operator,
                wallet,
                name,
                mcc,
                region,
                terminals,
            });
            book.payments_of.push(Vec::new());
            book.refunds_of.push(Vec::new());
        }
        for _ in 0..input.u64("order count")? {
            let merchant = MerchantId(input.u32("order merchant")?);
            let reference = input.string("order reference")?;
            let amount = Amount::from_fen(input.i64("order amount")?);
            let expires_at_ms = input.u64("order expiry")?;
            let terminal = input.u16("order terminal")?;
            let cash_on_delivery = input.bool("cash on delivery")?;
            let status = match (
                input.u8("order status")?,
                EventId(input.u64("order paid by")?),
            ) {
                (0, _) => OrderStatus::Open,
                (1, id) => OrderStatus::Paid(id),
                (2, id) => OrderStatus::Delivered(id),
                _ => return Err(bad("order status", input)),
            };
            book.orders.insert(
                (merchant, reference.clone()),
                Order {
                    merchant,
                    reference,
                    amount,
                    expires_at_ms,
                    terminal,
                    cash_on_delivery,
                    status,
                },
            );
        }
        for index in 0..input.u64("payment count")? {
            let payment = MerchantPayment {
                transfer: EventId(input.u64("payment transfer")?),
                merchant: MerchantId(input.u32("payment merchant")?),
                payer: WalletId(input.u32("payer")?),
                amount: Amount::from_fen(input.i64("payment amount")?),
                refunded: Amount::from_fen(input.i64("refunded")?),
                channel: PaymentChannel::from_u8(input.u8("channel")?)
                    .ok_or_else(|| bad("channel", input))?,
                terminal: input.u16("payment terminal")?,
                at_ms: input.u64("payment time")?,
                order: input.opt_string("payment order")?,
                sub_wallet: Some(input.u32("payment sub-wallet")?)
                    .filter(|s| *s != 0)
                    .map(SubWalletId),
            };
            let list = book
                .payments_of
                .get_mut(payment.merchant.index().wrapping_sub(1))
                .ok_or_else(|| bad("payment merchant", input))?;
            list.push(index as u32);
            book.payment_by_transfer
                .insert(payment.transfer, index as u32);
            book.payments.push(payment);
        }
        for index in 0..input.u64("refund count")? {
            let refund = MerchantRefund {
                transfer: EventId(input.u64("refund transfer")?),
                payment: EventId(input.u64("refunded payment")?),
                amount: Amount::from_fen(input.i64("refund amount")?),
                at_ms: input.u64("refund time")?,
            };
            let payment = book
                .payment_by_transfer
                .get(&refund.payment)
                .ok_or_else(|| bad("refunded payment", input))?;
            let merchant = book.payments[*payment as usize].merchant;
            book.refunds_of[merchant.index() - 1].push(index as u32);
            book.refunds.push(refund);
        }
        Ok(book)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book_with_a_shop() -> (Acquiring, MerchantId) {
        let mut book = Acquiring::default();
        let shop = book
            .onboard(
                OperatorId(1),
                WalletId(7),
                "Pingjiang Snacks".into(),
                Mcc::new(5814).unwrap(),
                320500,
            )
            .unwrap();
        assert_eq!(book.add_terminal(shop, TerminalKind::Pos), Ok(1));
        assert_eq!(book.add_terminal(shop, TerminalKind::Courier), Ok(2));
        (book, shop)
    }

    fn order(shop: MerchantId, reference: &str, terminal: u16, cod: bool) -> Order {
        Order {
            merchant: shop,
            reference: reference.into(),
            amount: Amount::from_fen(6_660),
            expires_at_ms: 1_000,
            terminal,
            cash_on_delivery: cod,
            status: OrderStatus::Open,
        }
    }

    fn payment(shop: MerchantId, transfer: u64, fen: i64, at_ms: u64) -> MerchantPayment {
        MerchantPayment {
            transfer: EventId(transfer),
            merchant: shop,
            payer: WalletId(3),
            amount: Amount::from_fen(fen),
            refunded: Amount::ZERO,
            channel: PaymentChannel::StaticQr,
            terminal: 0,
            at_ms,
            order: None,
            sub_wallet: None,
        }
    }

    #[test]
    fn orders_are_paid_once_for_their_amount_before_they_expire() {
        let (mut book, shop) = book_with_a_shop();
        book.create_order(order(shop, "A-1", 1, false)).unwrap();
        assert_eq!(
            book.create_order(order(shop, "A-1", 1, false))
                .unwrap_err()
                .code(),
            "ORDER_EXISTS"
        );
        let fen = Amount::from_fen;
        assert_eq!(
            book.check_order_payment(shop, "A-1", fen(100), 10)
                .unwrap_err()
                .code(),
            "ORDER_AMOUNT_MISMATCH"
        );
        assert_eq!(
            book.check_order_payment(shop, "A-1", fen(6_660), 1_001)
                .unwrap_err()
                .code(),
            "ORDER_EXPIRED"
        );
        assert_eq!(
            book.check_order_payment(shop, "A-2", fen(6_660), 10)
                .unwrap_err()
                .code(),
            "UNKNOWN_ORDER"
        );
        assert_eq!(
            book.check_order_payment(shop, "A-1", fen(6_660), 10),
            Ok(PaymentChannel::DynamicQr)
        );
        let mut paid = payment(shop, 40, 6_660, 10);
        paid.order = Some("A-1".into());
        book.record_payment(paid);
        assert_eq!(
            book.order(shop, "A-1").unwrap().status,
            OrderStatus::Paid(EventId(40))
        );
        assert_eq!(
            book.check_order_payment(shop, "A-1", fen(6_660), 10)
                .unwrap_err()
                .code(),
            "ORDER_ALREADY_PAID"
        );
    }

    #[test]
    fn only_a_courier_presents_cash_on_delivery_and_paying_delivers() {
        let (mut book, shop) = book_with_a_shop();
        assert_eq!(
            book.create_order(order(shop, "COD-1", 1, true))
                .unwrap_err()
                .code(),
            "TERMINAL_KIND_WRONG"
        );
        assert_eq!(
            book.create_order(order(shop, "COD-1", 9, true))
                .unwrap_err()
                .code(),
            "UNKNOWN_TERMINAL"
        );
        book.create_order(order(shop, "COD-1", 2, true)).unwrap();
        assert_eq!(
            book.check_order_payment(shop, "COD-1", Amount::from_fen(6_660), 5),
            Ok(PaymentChannel::CashOnDelivery)
        );
        let mut paid = payment(shop, 41, 6_660, 5);
        paid.order = Some("COD-1".into());
        book.record_payment(paid);
        assert_eq!(
            book.order(shop, "COD-1").unwrap().status,
            OrderStatus::Delivered(EventId(41))
        );
    }

    #[test]
    fn refunds_go_along_the_payment_and_never_beyond_it() {
        let (mut book, shop) = book_with_a_shop();
        book.record_payment(payment(shop, 50, 1_000, 0));
        book.check_refund(EventId(50), Amount::from_fen(600))
            .unwrap();
        book.record_refund(MerchantRefund {
            transfer: EventId(51),
            payment: EventId(50),
            amount: Amount::from_fen(600),
            at_ms: 1,
        });
        let error = book
            .check_refund(EventId(50), Amount::from_fen(401))
            .unwrap_err();
        assert_eq!(error.code(), "REFUND_EXCEEDS_PAYMENT");
        book.check_refund(EventId(50), Amount::from_fen(400))
            .unwrap();
        assert_eq!(
            book.check_refund(EventId(99), Amount::from_fen(1))
                .unwrap_err()
                .code(),
            "NOT_A_MERCHANT_PAYMENT"
        );
    }

    #[test]
    fn the_settlement_report_counts_one_china_day_by_channel() {
        let (mut book, shop) = book_with_a_shop();
        // 2026-11-23 00:30 China time is 2026-11-22 16:30 UTC: it belongs to the 23rd.
        let day_ms = 86_400_000;
        let day = 20_780u32;
        let start = day as u64 * day_ms - 8 * 3_600_000;
        book.record_payment(payment(shop, 1, 1_000, start - 1));
        book.record_payment(payment(shop, 2, 2_000, start));
        let mut code = payment(shop, 3, 500, start + 1_800_000);
        code.channel = PaymentChannel::PaymentCode;
        book.record_payment(code);
        book.record_refund(MerchantRefund {
            transfer: EventId(4),
            payment: EventId(1),
            amount: Amount::from_fen(300),
            at_ms: start + 10,
        });
        let report = book.settlement_report(shop, day).unwrap();
        assert_eq!((report.payments, report.gross.fen()), (2, 2_500));
        assert_eq!((report.refunds, report.refunded.fen()), (1, 300));
        assert_eq!(report.net.fen(), 2_200);
        assert_eq!(report.by_channel.len(), 2);
        assert_eq!(report.by_channel[0].channel, PaymentChannel::StaticQr);
        assert_eq!(report.by_channel[1].amount.fen(), 500);
        assert_eq!(
            book.settlement_report(shop, day - 1).unwrap().gross.fen(),
            1_000
        );
    }

    #[test]
    fn the_book_round_trips_through_its_snapshot_encoding() {
        let (mut book, shop) = book_with_a_shop();
        book.create_order(order(shop, "A-1", 1, false)).unwrap();
        let mut paid = payment(shop, 40, 6_660, 10);
        paid.order = Some("A-1".into());
        paid.sub_wallet = Some(SubWalletId(2));
        book.record_payment(paid);
        book.record_refund(MerchantRefund {
            transfer: EventId(41),
            payment: EventId(40),
            amount: Amount::from_fen(60),
            at_ms: 11,
        });
        let mut out = Writer::new();
        book.encode(&mut out);
        let decoded = Acquiring::decode(&mut Reader::new(&out.bytes)).unwrap();
        assert_eq!(decoded, book);
        for cut in 0..out.bytes.len() {
            assert!(Acquiring::decode(&mut Reader::new(&out.bytes[..cut])).is_err());
        }
    }

    #[test]
    fn merchant_names_and_order_references_are_bounded() {
        let mut book = Acquiring::default();
        let long = "x".repeat(MERCHANT_NAME_CHARS_MAX + 1);
        let mcc = Mcc::new(5411).unwrap();
        assert!(book
            .onboard(OperatorId(1), WalletId(1), long, mcc, 1)
            .is_err());
        assert!(book
            .onboard(OperatorId(1), WalletId(1), String::new(), mcc, 1)
            .is_err());
        assert!(check_order_reference("A-1").is_ok());
        assert!(check_order_reference("").is_err());
        assert!(check_order_reference("a\nb").is_err());
        assert!(check_order_reference(&"1".repeat(26)).is_err());
    }
}
