//! Merchants at the center: onboarding, terminals and orders, payments by every channel
//! (payment codes within the password-free cap), refunds, and the sub-wallets holders push to
//! merchant apps.

use super::*;

impl StateMachine {
    pub fn acquiring(&self) -> &Acquiring {
        &self.acquiring
    }

    pub fn sub_wallets(&self) -> &SubWallets {
        &self.sub_wallets
    }

    /// The merchant, checked to belong to the calling operator.
    pub(super) fn own_merchant(
        &self,
        origin: Origin,
        id: MerchantId,
    ) -> Result<&Merchant, CommandError> {
        let merchant = self.acquiring.merchant(id)?;
        match origin {
            Origin::Operator(caller) if caller != merchant.operator => {
                Err(CommandError::NotYourMerchant {
                    merchant: id,
                    owner: merchant.operator,
                    caller,
                })
            }
            _ => Ok(merchant),
        }
    }

    pub(super) fn onboard_merchant(
        &mut self,
        origin: Origin,
        operator: OperatorId,
        wallet: WalletId,
        name: String,
        (mcc, region): (Mcc, u32),
    ) -> CommandResult {
        self.require_operator(origin, operator)?;
        let settles_into = self.own_wallet(Origin::Operator(operator), wallet)?;
        settles_into.ensure_active(wallet)?;
        // A merchant's takings outgrow an anonymous wallet's cap in a day, and its bank account
        // is where they settle: class 2 or better.
        if settles_into.class > WalletClass::Two {
            return Err(CommandError::MerchantWalletUnverified {
                wallet,
                class: settles_into.class,
            });
        }
        let id = self
            .acquiring
            .onboard(operator, wallet, name, mcc, region)?;
        Ok(Outcome::Merchant(id))
    }

    pub(super) fn add_terminal(
        &mut self,
        origin: Origin,
        merchant: MerchantId,
        kind: TerminalKind,
    ) -> CommandResult {
        self.own_merchant(origin, merchant)?;
        let number = self.acquiring.add_terminal(merchant, kind)?;
        Ok(Outcome::Terminal(number))
    }

    pub(super) fn create_order(&mut self, origin: Origin, order: Order, now: u64) -> CommandResult {
        check_amount(order.amount)?;
        self.own_merchant(origin, order.merchant)?;
        if order.expires_at_ms <= now {
            return Err(CommandError::OrderExpired {
                reference: order.reference,
            });
        }
        self.acquiring.create_order(order)?;
        Ok(Outcome::Done)
    }

    /// Which channel a payment to a merchant came by, checked against its order and terminal.
    pub(super) fn payment_channel(
        &self,
        at: &MerchantPaymentAt,
        amount: Amount,
        now: u64,
    ) -> Result<PaymentChannel, CommandError> {
        let merchant = self.acquiring.merchant(at.merchant)?;
        let terminal = merchant.terminal(at.terminal)?;
        match (&at.order, at.channel) {
            (Some(reference), PaymentChannel::DynamicQr | PaymentChannel::TapZone) => {
                let by_order =
                    self.acquiring
                        .check_order_payment(at.merchant, reference, amount, now)?;
                // A tap zone may carry an order too; a courier's order is always cash on delivery.
                Ok(match (by_order, at.channel) {
                    (PaymentChannel::CashOnDelivery, _) => PaymentChannel::CashOnDelivery,
                    (_, channel) => channel,
                })
            }
            (Some(reference), PaymentChannel::CashOnDelivery) => {
                match self
                    .acquiring
                    .check_order_payment(at.merchant, reference, amount, now)?
                {
                    PaymentChannel::CashOnDelivery => Ok(PaymentChannel::CashOnDelivery),
                    _ => Err(CommandError::ChannelMismatch(
                        "the order was not presented by a courier for cash on delivery",
                    )),
                }
            }
            (Some(_), _) => Err(CommandError::ChannelMismatch(
                "an order is paid by its dynamic QR, a tap zone or at the door",
            )),
            (None, PaymentChannel::PaymentCode) => match terminal {
                Some(TerminalKind::ScanGun | TerminalKind::Pos) => Ok(PaymentChannel::PaymentCode),
                _ => Err(CommandError::ChannelMismatch(
                    "a payment code is read by a merchant's scan gun or till",
                )),
            },
            (None, channel @ (PaymentChannel::StaticQr | PaymentChannel::TapZone)) => Ok(channel),
            (None, _) => Err(CommandError::ChannelMismatch(
                "a dynamic QR or cash-on-delivery payment names its order",
            )),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn pay_merchant(
        &mut self,
        origin: Origin,
        payer: WalletId,
        at: MerchantPaymentAt,
        amount: Amount,
        by: Keyed,
        auth: Option<HolderAuth>,
        now: u64,
    ) -> CommandResult {
        check_amount(amount)?;
        if at.channel == PaymentChannel::PaymentCode {
            return Err(CommandError::ChannelMismatch(
                "a payment code is charged by the till that read it, once (ChargePaymentCode)",
            ));
        }
        self.own_wallet(origin, payer)?;
        self.check_holder_auth(payer, &auth, now)?;
        let payee = self.acquiring.merchant(at.merchant)?.wallet;
        self.keyed(payer, by, |state| {
            let channel = state.payment_channel(&at, amount, now)?;
            // An order's payment belongs to the terminal that presented the order.
            let terminal = match &at.order {
                Some(reference) => state.acquiring.order(at.merchant, reference)?.terminal,
                None => at.terminal,
            };
            let leg = state.check_payment(origin, payer, payee, amount, now)?;
            let (event, packets) = state.post_merchant_payment(payer, at.merchant, leg, now)?;
            // Limits count the whole payment, packets included: they bound what a wallet pays.
            state.wallet_mut(payer).record_outgoing(amount, now);
            state.record_packet_spends(event, at.merchant, channel, &packets, now);
            state.acquiring.record_payment(MerchantPayment {
                transfer: event,
                merchant: at.merchant,
                payer,
                amount,
                refunded: Amount::ZERO,
                channel,
                terminal,
                at_ms: now,
                order: at.order,
                sub_wallet: None,
            });
            Ok(event)
        })
    }

    /// A till's charge of a wallet's payment code: the code's step must still be live at the
    /// entry's time and later than the wallet's last charged one, the amount within the
    /// operator's password-free cap; then it is a merchant payment like any other.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn charge_payment_code(
        &mut self,
        origin: Origin,
        payer: WalletId,
        at: MerchantPaymentAt,
        amount: Amount,
        code_step: u64,
        by: Keyed,
        now: u64,
    ) -> CommandResult {
        check_amount(amount)?;
        let operator = self.own_wallet(origin, payer)?.operator;
        let payee = self.acquiring.merchant(at.merchant)?.wallet;
        self.keyed(payer, by, |state| {
            state.payment_channel(&at, amount, now)?;
            payment_code::check_live(code_step, now).map_err(CommandError::PaymentCode)?;
            state
                .code_marks
                .check(payer, code_step)
                .map_err(CommandError::PaymentCode)?;
            let cap = state.operator(operator)?.code_payment_cap;
            if amount > cap {
                return Err(CommandError::LimitPasswordFree { amount, cap });
            }
            let leg = state.check_payment(origin, payer, payee, amount, now)?;
            let (event, packets) = state.post_merchant_payment(payer, at.merchant, leg, now)?;
            state.wallet_mut(payer).record_outgoing(amount, now);
            state.code_marks.mark(payer, code_step);
            let channel = PaymentChannel::PaymentCode;
            state.record_packet_spends(event, at.merchant, channel, &packets, now);
            state.acquiring.record_payment(MerchantPayment {
                transfer: event,
                merchant: at.merchant,
                payer,
                amount,
                refunded: Amount::ZERO,
                channel,
                terminal: at.terminal,
                at_ms: now,
                order: None,
                sub_wallet: None,
            });
            Ok(event)
        })
    }

    pub(super) fn set_code_payment_cap(
        &mut self,
        origin: Origin,
        operator: OperatorId,
        cap: Amount,
    ) -> CommandResult {
        check_amount(cap)?;
        let index = self.operator_slot(origin, operator)?;
        self.operators[index].code_payment_cap = cap;
        Ok(Outcome::Done)
    }

    pub(super) fn refund(
        &mut self,
        origin: Origin,
        payment: EventId,
        amount: Amount,
        by: Keyed,
        now: u64,
    ) -> CommandResult {
        check_amount(amount)?;
        let paid = self.acquiring.payment(payment)?;
        let payer = paid.payer;
        let merchant_wallet = self.own_merchant(origin, paid.merchant)?.wallet;
        self.keyed(merchant_wallet, by, |state| {
            state.acquiring.check_refund(payment, amount)?;
            let from = state.wallet(merchant_wallet)?;
            from.ensure_active(merchant_wallet)?;
            let to = state.wallet(payer)?;
            to.ensure_active(payer)?;
            let paid = state.acquiring.payment(payment)?;
            // A payment that spent red packets refunds its packets' part to them, not the wallet.
            let split =
                state
                    .red_packets
                    .plan_refund(payment, (paid.amount, paid.refunded), amount, now);
            let to_wallet = split.as_ref().map_or(amount, |split| split.to_wallet);
            if to_wallet.is_positive() {
                let payer_balance = state.ledger.account(to.account)?.balance;
                to.check_incoming(
                    payer,
                    state.operator(to.operator)?.limits_for(to.class),
                    payer_balance,
                    to_wallet,
                )?;
            }
            let event = match &split {
                None => {
                    let leg = Leg {
                        debit: from.account,
                        credit: to.account,
                        amount,
                        kind: TransferKind::Refund,
                    };
                    state.ledger.transfer(leg, now)?
                }
                Some(split) => {
                    let legs = state.refund_legs(from.account, to.account, split)?;
                    state.ledger.transfer_linked(&legs, now)?
                }
            };
            if let Some(split) = &split {
                state.red_packets.record_refund(split);
            }
            state.acquiring.record_refund(MerchantRefund {
                transfer: event,
                payment,
                amount,
                at_ms: now,
            });
            Ok(event)
        })
    }

    pub(super) fn open_sub_wallet(
        &mut self,
        origin: Origin,
        wallet: WalletId,
        merchant: MerchantId,
        limits: SubWalletLimits,
        auth: Option<HolderAuth>,
        now: u64,
    ) -> CommandResult {
        self.own_wallet(origin, wallet)?.ensure_active(wallet)?;
        self.check_holder_auth(wallet, &auth, now)?;
        self.acquiring.merchant(merchant)?;
        let id = self.sub_wallets.open(wallet, merchant, limits)?;
        Ok(Outcome::SubWallet(id))
    }

    pub(super) fn set_sub_wallet(
        &mut self,
        origin: Origin,
        (id, limits, open): (SubWalletId, SubWalletLimits, bool),
        auth: Option<HolderAuth>,
        now: u64,
    ) -> CommandResult {
        let sub = self.sub_wallets.get(id)?;
        let wallet = sub.wallet;
        self.own_wallet(origin, wallet)?;
        self.check_holder_auth(wallet, &auth, now)?;
        // Closing is final: a merchant that was cut off is never quietly reconnected.
        if !sub.open {
            return Err(CommandError::SubWalletClosed(id));
        }
        let sub = self.sub_wallets.get_mut(id)?;
        if open {
            limits.check()?;
            sub.limits = limits;
        } else {
            sub.open = false;
        }
        Ok(Outcome::Done)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn charge_sub_wallet(
        &mut self,
        origin: Origin,
        id: SubWalletId,
        merchant: MerchantId,
        amount: Amount,
        order: Option<String>,
        by: Keyed,
        now: u64,
    ) -> CommandResult {
        check_amount(amount)?;
        let wallet = self.sub_wallets.get(id)?.wallet;
        self.own_wallet(origin, wallet)?;
        let payee = self.acquiring.merchant(merchant)?.wallet;
        self.keyed(wallet, by, |state| {
            state
                .sub_wallets
                .get(id)?
                .check_charge(merchant, amount, now)?;
            if let Some(reference) = &order {
                state
                    .acquiring
                    .check_order_payment(merchant, reference, amount, now)?;
            }
            let leg = state.check_payment(origin, wallet, payee, amount, now)?;
            let (event, packets) = state.post_merchant_payment(wallet, merchant, leg, now)?;
            state.wallet_mut(wallet).record_outgoing(amount, now);
            state.record_packet_spends(event, merchant, PaymentChannel::SubWallet, &packets, now);
            state.sub_wallets.get_mut(id)?.record_charge(amount, now);
            state.acquiring.record_payment(MerchantPayment {
                transfer: event,
                merchant,
                payer: wallet,
                amount,
                refunded: Amount::ZERO,
                channel: PaymentChannel::SubWallet,
                terminal: 0,
                at_ms: now,
                order,
                sub_wallet: Some(id),
            });
            Ok(event)
        })
    }
}
