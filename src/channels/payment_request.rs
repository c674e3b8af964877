//! The command a payment to a merchant becomes, built the same way by the wallet that signs it
//! and the operator that checks it: from a merchant's request (its QR or tap zone) or from a
//! terminal's reading of a payment code. Kept apart from the acquiring book, which only records
//! what the center booked.

use crate::amount::Amount;
use crate::channels::acquiring::PaymentChannel;
use crate::channels::emvco::{MerchantQr, QrKind};
use crate::command::Command;
use crate::error::CommandError;
use crate::ids::{IdempotencyKey, MerchantId, WalletId};

/// How the wallet read the merchant's request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestRead {
    Scanned,
    Tapped,
}

/// Where and how a payment to a merchant is made: its channel, the terminal, the order paid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaidAt {
    pub merchant: MerchantId,
    pub channel: PaymentChannel,
    pub terminal: u16,
    pub order: Option<String>,
}

/// A payment to a merchant as the payer's operator submits it: a payment code read at a terminal
/// is a charge of the code of the step holding `now_ms` (on the operator's word, within the
/// password-free cap), anything else a `PayMerchant` that the holder signs before it is sent.
pub fn merchant_payment(
    payer: WalletId,
    at: PaidAt,
    amount: Amount,
    key: IdempotencyKey,
    now_ms: u64,
) -> Command {
    if at.channel == PaymentChannel::PaymentCode {
        return Command::ChargePaymentCode {
            payer,
            merchant: at.merchant,
            terminal: at.terminal,
            amount,
            code_step: now_ms / 1000 / crate::channels::payment_code::CODE_STEP_S,
            key,
        };
    }
    Command::PayMerchant {
        payer,
        merchant: at.merchant,
        amount,
        channel: at.channel,
        terminal: at.terminal,
        order: at.order,
        key,
        auth: None,
    }
}

/// The unsigned command a wallet signs to pay a merchant's request (QR or tap zone): the wallet
/// and the operator both build it from the request, so the operator checks the very bytes the
/// holder signed. A printed QR needs the amount the payer typed; an order's QR fixes it.
pub fn request_payment(
    payer: WalletId,
    request: &MerchantQr,
    typed_amount: Option<Amount>,
    read: RequestRead,
    key: IdempotencyKey,
) -> Result<Command, CommandError> {
    let (amount, order, channel) = match &request.kind {
        QrKind::Static => {
            let amount = typed_amount.ok_or(CommandError::AmountRequired)?;
            let channel = match read {
                RequestRead::Scanned => PaymentChannel::StaticQr,
                RequestRead::Tapped => PaymentChannel::TapZone,
            };
            (amount, None, channel)
        }
        QrKind::Dynamic {
            amount, order_id, ..
        } => {
            if let Some(typed) = typed_amount.filter(|typed| typed != amount) {
                return Err(CommandError::OrderAmountMismatch {
                    reference: order_id.clone(),
                    expected: *amount,
                    got: typed,
                });
            }
            let channel = match read {
                RequestRead::Scanned => PaymentChannel::DynamicQr,
                RequestRead::Tapped => PaymentChannel::TapZone,
            };
            (*amount, Some(order_id.clone()), channel)
        }
    };
    Ok(Command::PayMerchant {
        payer,
        merchant: request.merchant,
        amount,
        channel,
        terminal: 0,
        order,
        key,
        auth: None,
    })
}
