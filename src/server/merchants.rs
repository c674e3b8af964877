//! The acquiring side of the API: operators onboard merchants; merchants add terminals, present
//! orders as dynamic QR codes and tap-zone tags, charge sub-wallets, read payment codes at the
//! till, refund and read their daily settlement; holders' apps pay scanned or tapped requests,
//! show payment codes and manage sub-wallets.
//!
//! Who may do what: a merchant acts for itself; its terminals present orders and read codes; its
//! operator reads and administers it. A holder's app speaks through the holder's operator, and
//! every money-moving or mandate-changing request carries the holder's SM2 signature over the
//! exact command. A merchant never sees a payer's wallet id, name or phone: payments show
//! transfer ids and, for e-commerce, sub-wallet tokens.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::amount::Amount;
use crate::channels::acquiring::{
    ChannelTotal, Merchant, MerchantPayment, Order, SettlementReport, TerminalKind,
};
use crate::channels::emvco::{Mcc, MerchantQr, QrKind};
use crate::channels::payment_code::till_key;
use crate::channels::payment_request::{request_payment, RequestRead};
use crate::channels::{merchant_qr_png, merchant_qr_svg, write_tap_zone, CodeError};
use crate::command::{Command, Outcome};
use crate::error::CommandError;
use crate::ids::{EventId, IdempotencyKey, MerchantId, OperatorId, SubWalletId, WalletId};
use crate::operator::front_office::{
    self, check_own_payment, check_request_operator, order_validity_s, presented_request,
    route_payment_code, NewOrder, Standing,
};
use crate::parties::{CredentialSubject, Operation, Party};
use crate::time::{china_day, format_day, parse_day};
use crate::wallet::sub_wallet::{SubWallet, SubWalletLimits};

use super::extract::{blocking, AppState, Authenticated, IdempotencyKeyHeader, Params, PathId};
use super::fields::{amount_field, holder_signature, id_field, unprocessable};
use super::gateway::{now_s, staff_of, Gateway, GatewayError, HolderSignature};
use super::problem::{JsonBody, Problem};

/// Pixels per QR module in rendered images.
const QR_MODULE_PX: u32 = 6;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/operators/{op}/merchants", post(onboard))
        .route("/v1/merchants/{m}", get(merchant))
        .route("/v1/merchants/{m}/terminals", post(add_terminal))
        .route("/v1/merchants/{m}/token", post(replace_merchant_token))
        .route(
            "/v1/merchants/{m}/terminals/{t}/token",
            post(replace_terminal_token),
        )
        .route("/v1/merchants/{m}/qr", get(merchant_qr))
        .route("/v1/merchants/{m}/tap-zone", get(tap_zone))
        .route("/v1/merchants/{m}/orders", post(create_order))
        .route("/v1/merchants/{m}/orders/{reference}", get(order))
        .route("/v1/merchants/{m}/code-payments", post(code_payment))
        .route("/v1/merchants/{m}/sub-wallets", get(merchant_sub_wallets))
        .route(
            "/v1/merchants/{m}/sub-wallet-charges",
            post(charge_sub_wallet),
        )
        .route("/v1/merchants/{m}/refunds", post(refund))
        .route("/v1/merchants/{m}/payments", get(payments))
        .route("/v1/merchants/{m}/settlement", get(settlement))
        .route("/v1/request-payments", post(pay_request))
        .route("/v1/wallets/{id}/payment-code", get(payment_code))
        .route(
            "/v1/wallets/{id}/sub-wallets",
            post(open_sub_wallet).get(wallet_sub_wallets),
        )
        .route("/v1/sub-wallets/{sw}", put(set_sub_wallet))
}

// ----- what the gateway does -----

/// What a merchant's own callers see of a payment: never the payer.
#[derive(Clone, Debug, Serialize)]
pub struct PaymentView {
    pub transfer: String,
    pub amount: String,
    pub refunded: String,
    pub channel: &'static str,
    pub terminal: u16,
    pub at_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_wallet: Option<String>,
}

impl From<&MerchantPayment> for PaymentView {
    fn from(payment: &MerchantPayment) -> PaymentView {
        PaymentView {
            transfer: payment.transfer.to_string(),
            amount: payment.amount.to_string(),
            refunded: payment.refunded.to_string(),
            channel: payment.channel.as_str(),
            terminal: payment.terminal,
            at_ms: payment.at_ms,
            order: payment.order.clone(),
            sub_wallet: payment.sub_wallet.map(|s| s.to_string()),
        }
    }
}

/// A sub-wallet as its holder sees it (`wallet` set) or as its merchant does (`wallet` unset).
#[derive(Clone, Debug, Serialize)]
pub struct SubWalletView {
    pub sub_wallet: String,
    pub merchant: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wallet: Option<String>,
    pub per_payment: String,
    pub daily: String,
    pub charged_today: String,
    pub open: bool,
}

impl SubWalletView {
    fn of(sub: &SubWallet, now_ms: u64, show_wallet: bool) -> SubWalletView {
        SubWalletView {
            sub_wallet: sub.id.to_string(),
            merchant: sub.merchant.to_string(),
            wallet: show_wallet.then(|| sub.wallet.to_string()),
            per_payment: sub.limits.per_payment.to_string(),
            daily: sub.limits.daily.to_string(),
            charged_today: sub.charged_on(now_ms).to_string(),
            open: sub.open,
        }
    }
}

/// An order with its QR payload and tap-zone tag.
#[derive(Clone, Debug, Serialize)]
pub struct OrderView {
    pub merchant: String,
    pub reference: String,
    pub amount: String,
    pub expires_at_ms: u64,
    pub terminal: u16,
    pub cash_on_delivery: bool,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer: Option<String>,
    /// The EMVCo payload its dynamic QR shows.
    pub qr: String,
}

/// A scanned or tapped request, paid as the holder signed it.
pub struct RequestPayment {
    pub payer: WalletId,
    pub request: String,
    pub typed_amount: Option<Amount>,
    pub read: RequestRead,
    pub key: IdempotencyKey,
    pub signature: HolderSignature,
}

fn order_view(merchant: &Merchant, order: &Order) -> Result<OrderView, GatewayError> {
    Ok(OrderView {
        merchant: merchant.id.to_string(),
        reference: order.reference.clone(),
        amount: order.amount.to_string(),
        expires_at_ms: order.expires_at_ms,
        terminal: order.terminal,
        cash_on_delivery: order.cash_on_delivery,
        status: order.status.as_str(),
        transfer: order.status.transfer().map(|t| t.to_string()),
        qr: presented_request(merchant, Some(order)).encode()?,
    })
}

fn expect_transfer(outcome: Outcome) -> EventId {
    match outcome {
        Outcome::Transfer(id) => id,
        other => unreachable!("a payment answered {other:?}"),
    }
}

impl Gateway {
    /// The merchant and how the caller stands to it, if it may do `operation`.
    fn merchant_for(
        &self,
        party: Party,
        id: MerchantId,
        operation: Operation,
    ) -> Result<(Merchant, Standing), GatewayError> {
        if party.kind(None).is_some() {
            // Everyone but a terminal is decided before the merchant is looked up.
            self.allow(operation, party)?;
        }
        let merchant = self
            .node
            .query(move |state| state.acquiring().merchant(id).cloned())??;
        let standing = front_office::standing(&merchant, party, operation)?;
        Ok((merchant, standing))
    }

    pub fn onboard_merchant(
        &self,
        party: Party,
        operator: OperatorId,
        wallet: WalletId,
        name: String,
        (mcc, region): (Mcc, u32),
    ) -> Result<MerchantId, GatewayError> {
        self.allow(Operation::OnboardMerchant, party)?;
        staff_of(party, operator)?;
        let command = Command::OnboardMerchant {
            operator,
            wallet,
            name,
            mcc,
            region,
        };
        match self.submit_one(operator, command)? {
            Outcome::Merchant(id) => Ok(id),
            other => unreachable!("onboarding answered {other:?}"),
        }
    }

    pub fn merchant(&self, party: Party, id: MerchantId) -> Result<Merchant, GatewayError> {
        Ok(self.merchant_for(party, id, Operation::ReadMerchant)?.0)
    }

    /// Replaces the merchant's token (or one terminal's): the old one stops working at once, and
    /// after a restart too. The caller hands the new one over.
    pub fn replace_token(
        &self,
        party: Party,
        id: MerchantId,
        terminal: Option<u16>,
    ) -> Result<CredentialSubject, GatewayError> {
        let (operation, subject) = match terminal {
            None => (
                Operation::ReplaceMerchantToken,
                CredentialSubject::Merchant(id),
            ),
            Some(terminal) => (
                Operation::ReplaceTerminalToken,
                CredentialSubject::Terminal {
                    merchant: id,
                    terminal,
                },
            ),
        };
        let (merchant, _) = self.merchant_for(party, id, operation)?;
        self.submit_one(merchant.operator, Command::RevokeCredential { subject })?;
        self.refresh_credentials()?;
        Ok(subject)
    }

    pub fn add_terminal(
        &self,
        party: Party,
        id: MerchantId,
        kind: TerminalKind,
    ) -> Result<u16, GatewayError> {
        let (merchant, _) = self.merchant_for(party, id, Operation::AddTerminal)?;
        let command = Command::AddTerminal { merchant: id, kind };
        match self.submit_one(merchant.operator, command)? {
            Outcome::Terminal(number) => Ok(number),
            other => unreachable!("add terminal answered {other:?}"),
        }
    }

    /// The merchant's printed QR or tap zone (`printed`: anyone may read it, it hangs on the
    /// stand), or an order's (the merchant's own callers only).
    pub fn merchant_request(
        &self,
        party: Party,
        id: MerchantId,
        (printed, reference): (Operation, Option<String>),
    ) -> Result<MerchantQr, GatewayError> {
        let Some(reference) = reference else {
            self.allow(printed, party)?;
            let merchant = self
                .node
                .query(move |state| state.acquiring().merchant(id).cloned())??;
            return Ok(presented_request(&merchant, None));
        };
        let (merchant, _) = self.merchant_for(party, id, Operation::ReadOrderQr)?;
        let order = self
            .node
            .query(move |state| state.acquiring().order(id, &reference).cloned())??;
        Ok(presented_request(&merchant, Some(&order)))
    }

    pub fn create_order(
        &self,
        party: Party,
        id: MerchantId,
        order: NewOrder,
    ) -> Result<OrderView, GatewayError> {
        let (merchant, standing) = self.merchant_for(party, id, Operation::CreateOrder)?;
        let command = order.command(id, standing, now_s() * 1000);
        self.submit_one(merchant.operator, command)?;
        let order = self
            .node
            .query(move |state| state.acquiring().order(id, &order.reference).cloned())??;
        order_view(&merchant, &order)
    }

    pub fn order(
        &self,
        party: Party,
        id: MerchantId,
        reference: String,
    ) -> Result<OrderView, GatewayError> {
        let (merchant, _) = self.merchant_for(party, id, Operation::ReadOrder)?;
        let order = self
            .node
            .query(move |state| state.acquiring().order(id, &reference).cloned())??;
        order_view(&merchant, &order)
    }

    /// Pays a scanned or tapped merchant request as the holder signed it.
    pub fn pay_request(
        &self,
        party: Party,
        payment: RequestPayment,
    ) -> Result<(EventId, MerchantQr), GatewayError> {
        self.allow(Operation::PayRequest, party)?;
        let request = MerchantQr::parse(&payment.request)?;
        request.check_fresh(now_s())?;
        let merchant_id = request.merchant;
        let merchant = self
            .node
            .query(move |state| state.acquiring().merchant(merchant_id).cloned())??;
        check_request_operator(&merchant, &request)?;
        let command = request_payment(
            payment.payer,
            &request,
            payment.typed_amount,
            payment.read,
            payment.key,
        )?;
        let transfer = expect_transfer(self.submit_signed(
            party,
            payment.payer,
            command,
            payment.signature,
        )?);
        self.metrics.count_payment();
        Ok((transfer, request))
    }

    /// The code the wallet shows now: its holder's consent to one password-free payment, so the
    /// holder's session alone may ask for it.
    pub fn payment_code(
        &self,
        party: Party,
        wallet: WalletId,
    ) -> Result<crate::channels::PaymentCode, GatewayError> {
        self.allow(Operation::ReadPaymentCode, party)?;
        let operator = self.wallet_in_scope(party, wallet)?;
        let desk = self.code_desk(operator)?;
        let codes = desk.codes.as_ref().expect("code_desk checked");
        Ok(codes.issuer.code_for(wallet, now_s()))
    }

    /// The desk of an operator that issues payment codes.
    fn code_desk(
        &self,
        operator: OperatorId,
    ) -> Result<std::sync::Arc<super::gateway::OperatorDesk>, GatewayError> {
        self.desk(operator)
            .ok()
            .filter(|desk| desk.codes.is_some())
            // No operator here issues codes under those digits: as good as a made-up code.
            .ok_or(GatewayError::Code(CodeError::Unknown))
    }

    /// A till or scan gun charges a customer's payment code. The operator names the wallet and
    /// step; the registration center takes the code once, within the password-free cap, and a
    /// retry under the same key answers the first charge.
    pub fn charge_payment_code(
        &self,
        party: Party,
        id: MerchantId,
        code: &str,
        amount: Amount,
        key: IdempotencyKey,
    ) -> Result<EventId, GatewayError> {
        let (_, standing) = self.merchant_for(party, id, Operation::ChargeCode)?;
        let Standing::Terminal(terminal, _) = standing else {
            unreachable!("only terminals read payment codes")
        };
        let terminal_key = till_key(id, terminal);
        let (digits, operator) = route_payment_code(code)?;
        let desk = self.code_desk(operator)?;
        let codes = desk.codes.as_ref().expect("code_desk checked");
        let verifier = || {
            codes
                .verifier
                .lock()
                .map_err(|_| GatewayError::Node(crate::node::NodeError::Poisoned))
        };
        let now = now_s();
        let read = verifier()?.identify(&digits, terminal_key, now)?;
        let command = Command::ChargePaymentCode {
            payer: read.wallet,
            merchant: id,
            terminal,
            amount,
            code_step: read.step,
            key,
        };
        match self.submit_one(operator, command) {
            Ok(outcome) => {
                self.metrics.count_payment();
                Ok(expect_transfer(outcome))
            }
            Err(GatewayError::Refused(CommandError::PaymentCode(CodeError::Stale {
                steps_old,
            }))) => {
                verifier()?.record_failure(terminal_key, now);
                Err(CommandError::PaymentCode(CodeError::Stale { steps_old }).into())
            }
            Err(other) => Err(other),
        }
    }

    pub fn open_sub_wallet(
        &self,
        party: Party,
        command: Command,
        signature: HolderSignature,
    ) -> Result<SubWalletId, GatewayError> {
        self.allow(Operation::OpenSubWallet, party)?;
        let Command::OpenSubWallet { wallet, .. } = command else {
            unreachable!("open sub-wallet takes an OpenSubWallet command")
        };
        match self.submit_signed(party, wallet, command, signature)? {
            Outcome::SubWallet(id) => Ok(id),
            other => unreachable!("open sub-wallet answered {other:?}"),
        }
    }

    pub fn set_sub_wallet(
        &self,
        party: Party,
        command: Command,
        signature: HolderSignature,
    ) -> Result<SubWalletView, GatewayError> {
        self.allow(Operation::SetSubWallet, party)?;
        let Command::SetSubWallet { sub_wallet, .. } = command else {
            unreachable!("set sub-wallet takes a SetSubWallet command")
        };
        let wallet = self
            .node
            .query(move |state| state.sub_wallets().get(sub_wallet).map(|sub| sub.wallet))??;
        self.submit_signed(party, wallet, command, signature)?;
        self.node
            .query(move |state| {
                let now = state.last_timestamp_ms();
                state
                    .sub_wallets()
                    .get(sub_wallet)
                    .map(|sub| SubWalletView::of(sub, now, true))
            })?
            .map_err(GatewayError::from)
    }

    pub fn wallet_sub_wallets(
        &self,
        party: Party,
        wallet: WalletId,
    ) -> Result<Vec<SubWalletView>, GatewayError> {
        self.allow(Operation::ListWalletSubWallets, party)?;
        self.wallet_in_scope(party, wallet)?;
        Ok(self.node.query(move |state| {
            let now = state.last_timestamp_ms();
            state
                .sub_wallets()
                .of_wallet(wallet)
                .map(|sub| SubWalletView::of(sub, now, true))
                .collect()
        })?)
    }

    pub fn merchant_sub_wallets(
        &self,
        party: Party,
        id: MerchantId,
    ) -> Result<Vec<SubWalletView>, GatewayError> {
        self.merchant_for(party, id, Operation::ListMerchantSubWallets)?;
        Ok(self.node.query(move |state| {
            let now = state.last_timestamp_ms();
            (1..=state.sub_wallets().len() as u32)
                .filter_map(|n| state.sub_wallets().get(SubWalletId(n)).ok())
                .filter(|sub| sub.merchant == id)
                .map(|sub| SubWalletView::of(sub, now, false))
                .collect()
        })?)
    }

    pub fn charge_sub_wallet(
        &self,
        party: Party,
        id: MerchantId,
        (sub_wallet, amount, order): (SubWalletId, Amount, Option<String>),
        key: IdempotencyKey,
    ) -> Result<EventId, GatewayError> {
        self.merchant_for(party, id, Operation::ChargeSubWallet)?;
        // The charge is the holder's payment: the holder's operator submits it.
        let operator = self.node.query(move |state| {
            let wallet = state.sub_wallets().get(sub_wallet)?.wallet;
            state.wallet(wallet).map(|w| w.operator)
        })??;
        let command = Command::ChargeSubWallet {
            sub_wallet,
            merchant: id,
            amount,
            order,
            key,
        };
        let transfer = expect_transfer(self.submit_one(operator, command)?);
        self.metrics.count_payment();
        Ok(transfer)
    }

    pub fn refund(
        &self,
        party: Party,
        id: MerchantId,
        payment: EventId,
        amount: Amount,
        key: IdempotencyKey,
    ) -> Result<EventId, GatewayError> {
        let (merchant, _) = self.merchant_for(party, id, Operation::Refund)?;
        let of_merchant = self
            .node
            .query(move |state| state.acquiring().payment(payment).map(|p| p.merchant))??;
        check_own_payment(id, payment, of_merchant)?;
        let command = Command::Refund {
            payment,
            amount,
            key,
        };
        Ok(expect_transfer(
            self.submit_one(merchant.operator, command)?,
        ))
    }

    pub fn payments(
        &self,
        party: Party,
        id: MerchantId,
        day: Option<u32>,
    ) -> Result<(u32, Vec<PaymentView>), GatewayError> {
        self.merchant_for(party, id, Operation::ListPayments)?;
        Ok(self.node.query(move |state| {
            let day = day.unwrap_or_else(|| china_day(now_s() * 1000));
            let payments = state
                .acquiring()
                .payments_of(id)
                .filter(|p| china_day(p.at_ms) == day)
                .map(PaymentView::from)
                .collect();
            (day, payments)
        })?)
    }

    pub fn settlement(
        &self,
        party: Party,
        id: MerchantId,
        day: Option<u32>,
    ) -> Result<SettlementReport, GatewayError> {
        self.merchant_for(party, id, Operation::ReadSettlement)?;
        let day = day.unwrap_or_else(|| china_day(now_s() * 1000));
        Ok(self
            .node
            .query(move |state| state.acquiring().settlement_report(id, day))??)
    }
}

// ----- the HTTP handlers -----

fn day_query(date: Option<&str>) -> Result<Option<u32>, Problem> {
    date.map(|text| {
        parse_day(text).ok_or_else(|| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "MALFORMED_DATE",
                format!("date {text:?} is not a YYYY-MM-DD day from 1970 on"),
            )
        })
    })
    .transpose()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnboardRequest {
    /// The class 2 or better wallet the merchant settles into.
    pub wallet: String,
    pub name: String,
    /// ISO 18245 merchant category code, four digits.
    pub mcc: String,
    /// GB/T 2260 administrative division code, six digits.
    pub region: u32,
}

#[derive(Serialize)]
pub struct MerchantResponse {
    pub merchant: String,
    pub operator: String,
    pub name: String,
    pub mcc: String,
    pub region: u32,
    pub wallet: String,
    pub terminals: Vec<TerminalResponse>,
    /// The printed QR's EMVCo payload.
    pub qr: String,
    /// Returned once, when the merchant is onboarded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

#[derive(Serialize)]
pub struct TerminalResponse {
    pub terminal: u16,
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

fn merchant_response(
    merchant: &Merchant,
    token: Option<String>,
) -> Result<MerchantResponse, Problem> {
    Ok(MerchantResponse {
        merchant: merchant.id.to_string(),
        operator: merchant.operator.to_string(),
        name: merchant.name.clone(),
        mcc: merchant.mcc.to_string(),
        region: merchant.region,
        wallet: merchant.wallet.to_string(),
        terminals: merchant
            .terminals
            .iter()
            .enumerate()
            .map(|(i, kind)| TerminalResponse {
                terminal: i as u16 + 1,
                kind: kind.as_str(),
                token: None,
            })
            .collect(),
        qr: presented_request(merchant, None)
            .encode()
            .map_err(|error| Problem::from(GatewayError::from(error)))?,
        token,
    })
}

async fn onboard(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(operator): PathId<OperatorId>,
    JsonBody(body): JsonBody<OnboardRequest>,
) -> Result<(StatusCode, Json<MerchantResponse>), Problem> {
    let wallet: WalletId = id_field("wallet", &body.wallet)?;
    let mcc: Mcc = body
        .mcc
        .parse()
        .map_err(|error: String| unprocessable("MALFORMED_MCC", error))?;
    if !(100_000..=999_999).contains(&body.region) {
        return Err(unprocessable(
            "MALFORMED_REGION",
            format!("region {} is not a six-digit GB/T 2260 code", body.region),
        ));
    }
    let name = body.name;
    let region = body.region;
    let merchant = blocking(&app, move |gateway| {
        let id = gateway.onboard_merchant(caller, operator, wallet, name, (mcc, region))?;
        gateway.merchant(caller, id)
    })
    .await?;
    let token = Some(
        app.tokens
            .token_for(CredentialSubject::Merchant(merchant.id)),
    );
    Ok((
        StatusCode::CREATED,
        Json(merchant_response(&merchant, token)?),
    ))
}

async fn merchant(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(id): PathId<MerchantId>,
) -> Result<Json<MerchantResponse>, Problem> {
    let merchant = blocking(&app, move |gateway| gateway.merchant(caller, id)).await?;
    Ok(Json(merchant_response(&merchant, None)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminalRequest {
    /// pos, scan_gun, courier or online_shop.
    pub kind: String,
}

async fn add_terminal(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(id): PathId<MerchantId>,
    JsonBody(body): JsonBody<TerminalRequest>,
) -> Result<(StatusCode, Json<TerminalResponse>), Problem> {
    let kind = TerminalKind::parse(&body.kind).ok_or_else(|| {
        unprocessable(
            "MALFORMED_TERMINAL_KIND",
            format!(
                "kind {:?} is not one of pos, scan_gun, courier, online_shop",
                body.kind
            ),
        )
    })?;
    let number = blocking(&app, move |gateway| gateway.add_terminal(caller, id, kind)).await?;
    let token = Some(app.tokens.token_for(CredentialSubject::Terminal {
        merchant: id,
        terminal: number,
    }));
    Ok((
        StatusCode::CREATED,
        Json(TerminalResponse {
            terminal: number,
            kind: kind.as_str(),
            token,
        }),
    ))
}

#[derive(Serialize)]
pub struct ReplacedTokenResponse {
    pub merchant: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminal: Option<u16>,
    /// The new token; the one before it no longer works.
    pub token: String,
}

async fn replace_merchant_token(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(id): PathId<MerchantId>,
) -> Result<(StatusCode, Json<ReplacedTokenResponse>), Problem> {
    let subject = blocking(&app, move |gateway| gateway.replace_token(caller, id, None)).await?;
    Ok((
        StatusCode::CREATED,
        Json(ReplacedTokenResponse {
            merchant: id.to_string(),
            terminal: None,
            token: app.tokens.token_for(subject),
        }),
    ))
}

async fn replace_terminal_token(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((merchant, terminal)): Path<(String, String)>,
) -> Result<(StatusCode, Json<ReplacedTokenResponse>), Problem> {
    let malformed = |detail: String| Problem::new(StatusCode::BAD_REQUEST, "MALFORMED_ID", detail);
    let id: MerchantId = merchant
        .parse()
        .map_err(|error: crate::ids::IdParseError| malformed(error.to_string()))?;
    let terminal: u16 = terminal
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| malformed(format!("{terminal:?} is not a terminal number (1, 2, …)")))?;
    let subject = blocking(&app, move |gateway| {
        gateway.replace_token(caller, id, Some(terminal))
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(ReplacedTokenResponse {
            merchant: id.to_string(),
            terminal: Some(terminal),
            token: app.tokens.token_for(subject),
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestQuery {
    /// An order's reference: its dynamic request instead of the printed one.
    pub order: Option<String>,
    /// json (default), png or svg.
    pub format: Option<String>,
}

async fn merchant_qr(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(id): PathId<MerchantId>,
    Params(query): Params<RequestQuery>,
) -> Result<Response, Problem> {
    let format = query.format.clone().unwrap_or_else(|| "json".into());
    if !["json", "png", "svg"].contains(&format.as_str()) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "MALFORMED_FORMAT",
            format!("format {format:?} is not json, png or svg"),
        ));
    }
    let request = blocking(&app, move |gateway| {
        gateway.merchant_request(caller, id, (Operation::ReadPrintedQr, query.order))
    })
    .await?;
    let image_error = |error| Problem::from(GatewayError::Render(error));
    Ok(match format.as_str() {
        "png" => (
            [(header::CONTENT_TYPE, "image/png")],
            merchant_qr_png(&request, QR_MODULE_PX).map_err(image_error)?,
        )
            .into_response(),
        "svg" => (
            [(header::CONTENT_TYPE, "image/svg+xml")],
            merchant_qr_svg(&request, QR_MODULE_PX).map_err(image_error)?,
        )
            .into_response(),
        _ => {
            let payload = request
                .encode()
                .map_err(|error| Problem::from(GatewayError::from(error)))?;
            Json(serde_json::json!({ "merchant": id.to_string(), "qr": payload })).into_response()
        }
    })
}

async fn tap_zone(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(id): PathId<MerchantId>,
    Params(query): Params<RequestQuery>,
) -> Result<Response, Problem> {
    let request = blocking(&app, move |gateway| {
        gateway.merchant_request(caller, id, (Operation::ReadTapZone, query.order))
    })
    .await?;
    let message =
        write_tap_zone(&request).map_err(|error| Problem::from(GatewayError::from(error)))?;
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        message,
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    pub reference: String,
    pub amount: String,
    /// Seconds the order stays payable; 900 unless given, at most 86,400.
    pub valid_s: Option<u64>,
    /// Presented by a courier at the door; only a courier terminal may say so.
    pub cash_on_delivery: Option<bool>,
}

async fn create_order(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(id): PathId<MerchantId>,
    JsonBody(body): JsonBody<OrderRequest>,
) -> Result<(StatusCode, Json<OrderView>), Problem> {
    let valid_s = order_validity_s(body.valid_s)
        .map_err(|refused| unprocessable(refused.code(), refused.to_string()))?;
    let order = NewOrder {
        amount: amount_field("amount", &body.amount)?,
        reference: body.reference,
        valid_s,
        cash_on_delivery: body.cash_on_delivery.unwrap_or(false),
    };
    let view = blocking(&app, move |gateway| gateway.create_order(caller, id, order)).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

async fn order(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((merchant, reference)): Path<(String, String)>,
) -> Result<Json<OrderView>, Problem> {
    let id: MerchantId = merchant
        .parse()
        .map_err(|error: crate::ids::IdParseError| {
            Problem::new(StatusCode::BAD_REQUEST, "MALFORMED_ID", error.to_string())
        })?;
    let view = blocking(&app, move |gateway| gateway.order(caller, id, reference)).await?;
    Ok(Json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestPaymentBody {
    pub payer: String,
    /// The EMVCo payload read from the QR or the tap-zone tag.
    pub request: String,
    /// What the payer typed; required for a printed QR, must match an order's amount.
    pub amount: Option<String>,
    /// scanned (default) or tapped.
    pub read: Option<String>,
    pub public_key: String,
    /// SM2 signature over the signing bytes of the PayMerchant command the request makes (see
    /// `request_payment`).
    pub signature: String,
    /// The last Unix millisecond the signature is good (see `GET /v1/context`).
    pub not_after_ms: u64,
}

#[derive(Serialize)]
pub struct RequestPaymentResponse {
    pub transfer: String,
    pub merchant: String,
    pub name: String,
    pub amount: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
}

async fn pay_request(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    JsonBody(body): JsonBody<RequestPaymentBody>,
) -> Result<(StatusCode, Json<RequestPaymentResponse>), Problem> {
    let read = match body.read.as_deref() {
        None | Some("scanned") => RequestRead::Scanned,
        Some("tapped") => RequestRead::Tapped,
        Some(other) => {
            return Err(unprocessable(
                "MALFORMED_READ",
                format!("read {other:?} is not scanned or tapped"),
            ))
        }
    };
    let payment = RequestPayment {
        payer: id_field("payer", &body.payer)?,
        typed_amount: body
            .amount
            .as_deref()
            .map(|text| amount_field("amount", text))
            .transpose()?,
        request: body.request,
        read,
        key,
        signature: holder_signature(&body.public_key, &body.signature, body.not_after_ms)?,
    };
    let typed = payment.typed_amount;
    let (transfer, request) =
        blocking(&app, move |gateway| gateway.pay_request(caller, payment)).await?;
    let (amount, order) = match &request.kind {
        QrKind::Static => (typed.unwrap_or(Amount::ZERO), None),
        QrKind::Dynamic {
            amount, order_id, ..
        } => (*amount, Some(order_id.clone())),
    };
    Ok((
        StatusCode::CREATED,
        Json(RequestPaymentResponse {
            transfer: transfer.to_string(),
            merchant: request.merchant.to_string(),
            name: request.name,
            amount: amount.to_string(),
            order,
        }),
    ))
}

#[derive(Serialize)]
pub struct PaymentCodeResponse {
    pub wallet: String,
    /// 18 digits to show under the barcode; the QR carries the same digits.
    pub code: String,
    pub valid_until_s: u64,
}

async fn payment_code(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(wallet): PathId<WalletId>,
) -> Result<Json<PaymentCodeResponse>, Problem> {
    let code = blocking(&app, move |gateway| gateway.payment_code(caller, wallet)).await?;
    Ok(Json(PaymentCodeResponse {
        wallet: wallet.to_string(),
        code: code.digits,
        valid_until_s: code.valid_until_s,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodePaymentRequest {
    pub code: String,
    pub amount: String,
}

#[derive(Serialize)]
pub struct ChargeResponse {
    pub transfer: String,
    pub merchant: String,
    pub amount: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_wallet: Option<String>,
}

async fn code_payment(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(id): PathId<MerchantId>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    JsonBody(body): JsonBody<CodePaymentRequest>,
) -> Result<(StatusCode, Json<ChargeResponse>), Problem> {
    let amount = amount_field("amount", &body.amount)?;
    let code = body.code;
    let transfer = blocking(&app, move |gateway| {
        gateway.charge_payment_code(caller, id, &code, amount, key)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(ChargeResponse {
            transfer: transfer.to_string(),
            merchant: id.to_string(),
            amount: amount.to_string(),
            sub_wallet: None,
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenSubWalletRequest {
    pub merchant: String,
    pub per_payment: String,
    pub daily: String,
    pub public_key: String,
    /// SM2 signature over the OpenSubWallet command's signing bytes.
    pub signature: String,
    pub not_after_ms: u64,
}

async fn open_sub_wallet(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(wallet): PathId<WalletId>,
    JsonBody(body): JsonBody<OpenSubWalletRequest>,
) -> Result<(StatusCode, Json<SubWalletView>), Problem> {
    let merchant: MerchantId = id_field("merchant", &body.merchant)?;
    let limits = SubWalletLimits {
        per_payment: amount_field("per_payment", &body.per_payment)?,
        daily: amount_field("daily", &body.daily)?,
    };
    let command = Command::OpenSubWallet {
        wallet,
        merchant,
        limits,
        auth: None,
    };
    let signature = holder_signature(&body.public_key, &body.signature, body.not_after_ms)?;
    let id = blocking(&app, move |gateway| {
        gateway.open_sub_wallet(caller, command, signature)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(SubWalletView {
            sub_wallet: id.to_string(),
            merchant: merchant.to_string(),
            wallet: Some(wallet.to_string()),
            per_payment: limits.per_payment.to_string(),
            daily: limits.daily.to_string(),
            charged_today: Amount::ZERO.to_string(),
            open: true,
        }),
    ))
}

async fn wallet_sub_wallets(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(wallet): PathId<WalletId>,
) -> Result<Json<Vec<SubWalletView>>, Problem> {
    let views = blocking(&app, move |gateway| {
        gateway.wallet_sub_wallets(caller, wallet)
    })
    .await?;
    Ok(Json(views))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetSubWalletRequest {
    pub per_payment: String,
    pub daily: String,
    /// false closes the sub-wallet for good.
    pub open: bool,
    pub public_key: String,
    /// SM2 signature over the SetSubWallet command's signing bytes.
    pub signature: String,
    pub not_after_ms: u64,
}

async fn set_sub_wallet(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(sub_wallet): PathId<SubWalletId>,
    JsonBody(body): JsonBody<SetSubWalletRequest>,
) -> Result<Json<SubWalletView>, Problem> {
    let command = Command::SetSubWallet {
        sub_wallet,
        limits: SubWalletLimits {
            per_payment: amount_field("per_payment", &body.per_payment)?,
            daily: amount_field("daily", &body.daily)?,
        },
        open: body.open,
        auth: None,
    };
    let signature = holder_signature(&body.public_key, &body.signature, body.not_after_ms)?;
    let view = blocking(&app, move |gateway| {
        gateway.set_sub_wallet(caller, command, signature)
    })
    .await?;
    Ok(Json(view))
}

async fn merchant_sub_wallets(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(id): PathId<MerchantId>,
) -> Result<Json<Vec<SubWalletView>>, Problem> {
    let views = blocking(&app, move |gateway| {
        gateway.merchant_sub_wallets(caller, id)
    })
    .await?;
    Ok(Json(views))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubWalletChargeRequest {
    pub sub_wallet: String,
    pub amount: String,
    pub order: Option<String>,
}

async fn charge_sub_wallet(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(id): PathId<MerchantId>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    JsonBody(body): JsonBody<SubWalletChargeRequest>,
) -> Result<(StatusCode, Json<ChargeResponse>), Problem> {
    let sub_wallet: SubWalletId = id_field("sub_wallet", &body.sub_wallet)?;
    let amount = amount_field("amount", &body.amount)?;
    let order = body.order;
    let transfer = blocking(&app, move |gateway| {
        gateway.charge_sub_wallet(caller, id, (sub_wallet, amount, order), key)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(ChargeResponse {
            transfer: transfer.to_string(),
            merchant: id.to_string(),
            amount: amount.to_string(),
            sub_wallet: Some(sub_wallet.to_string()),
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// The payment's transfer id.
    pub payment: String,
    pub amount: String,
}

#[derive(Serialize)]
pub struct RefundResponse {
    pub transfer: String,
    pub payment: String,
    pub amount: String,
}

async fn refund(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(id): PathId<MerchantId>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    JsonBody(body): JsonBody<RefundRequest>,
) -> Result<(StatusCode, Json<RefundResponse>), Problem> {
    let payment: EventId = id_field("payment", &body.payment)?;
    let amount = amount_field("amount", &body.amount)?;
    let transfer = blocking(&app, move |gateway| {
        gateway.refund(caller, id, payment, amount, key)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(RefundResponse {
            transfer: transfer.to_string(),
            payment: payment.to_string(),
            amount: amount.to_string(),
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DayQuery {
    /// YYYY-MM-DD in China time; today unless given.
    pub date: Option<String>,
}

async fn payments(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(id): PathId<MerchantId>,
    Params(query): Params<DayQuery>,
) -> Result<Json<serde_json::Value>, Problem> {
    let day = day_query(query.date.as_deref())?;
    let (day, payments) = blocking(&app, move |gateway| gateway.payments(caller, id, day)).await?;
    Ok(Json(serde_json::json!({
        "merchant": id.to_string(),
        "date": format_day(day),
        "payments": payments,
    })))
}

#[derive(Serialize)]
pub struct ChannelLine {
    pub channel: &'static str,
    pub payments: u64,
    pub amount: String,
}

#[derive(Serialize)]
pub struct SettlementResponse {
    pub merchant: String,
    pub date: String,
    pub payments: u64,
    pub gross: String,
    pub refunds: u64,
    pub refunded: String,
    pub net: String,
    pub by_channel: Vec<ChannelLine>,
}

impl From<SettlementReport> for SettlementResponse {
    fn from(report: SettlementReport) -> SettlementResponse {
        SettlementResponse {
            merchant: report.merchant.to_string(),
            date: format_day(report.day),
            payments: report.payments,
            gross: report.gross.to_string(),
            refunds: report.refunds,
            refunded: report.refunded.to_string(),
            net: report.net.to_string(),
            by_channel: report
                .by_channel
                .iter()
                .map(|line: &ChannelTotal| ChannelLine {
                    channel: line.channel.as_str(),
                    payments: line.payments,
                    amount: line.amount.to_string(),
                })
                .collect(),
        }
    }
}

async fn settlement(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(id): PathId<MerchantId>,
    Params(query): Params<DayQuery>,
) -> Result<Json<SettlementResponse>, Problem> {
    let day = day_query(query.date.as_deref())?;
    let report = blocking(&app, move |gateway| gateway.settlement(caller, id, day)).await?;
    Ok(Json(report.into()))
}

// ----- the OpenAPI description of these endpoints -----

/// Paths these handlers serve, in the document's order.
pub const OPENAPI_PATHS: [&str; 17] = [
    "/v1/operators/{op}/merchants",
    "/v1/merchants/{m}",
    "/v1/merchants/{m}/terminals",
    "/v1/merchants/{m}/qr",
    "/v1/merchants/{m}/tap-zone",
    "/v1/merchants/{m}/orders",
    "/v1/merchants/{m}/orders/{reference}",
    "/v1/merchants/{m}/code-payments",
    "/v1/merchants/{m}/sub-wallets",
    "/v1/merchants/{m}/sub-wallet-charges",
    "/v1/merchants/{m}/refunds",
    "/v1/merchants/{m}/payments",
    "/v1/merchants/{m}/settlement",
    "/v1/request-payments",
    "/v1/wallets/{id}/payment-code",
    "/v1/wallets/{id}/sub-wallets",
    "/v1/sub-wallets/{sw}",
];

pub mod openapi {
    use serde_json::{json, Map, Value};

    use crate::server::openapi_doc::{
        body, idempotency, ok, path_param, query_param, responses, schema_ref, string,
    };

    pub fn schemas() -> Map<String, Value> {
        let object = |required: &[&str], properties: Value| json!({ "type": "object", "additionalProperties": false, "required": required, "properties": properties });
        let mut all = Map::new();
        let mut put = |name: &str, schema: Value| {
            all.insert(name.to_string(), schema);
        };
        put(
            "OnboardRequest",
            object(
                &["wallet", "name", "mcc", "region"],
                json!({
                    "wallet": { "type": "string", "example": "W0000000001", "description": "class 2 or better wallet the merchant settles into" },
                    "name": { "type": "string", "example": "Pingjiang Snacks" },
                    "mcc": { "type": "string", "example": "5814", "description": "ISO 18245 merchant category code" },
                    "region": { "type": "integer", "example": 320500, "description": "GB/T 2260 administrative division code" }
                }),
            ),
        );
        put(
            "Terminal",
            json!({ "type": "object", "properties": {
            "terminal": { "type": "integer" }, "kind": string(), "token": string()
        } }),
        );
        put(
            "Merchant",
            json!({ "type": "object", "properties": {
            "merchant": string(), "operator": string(), "name": string(), "mcc": string(),
            "region": { "type": "integer" }, "wallet": string(),
            "terminals": { "type": "array", "items": schema_ref("Terminal") },
            "qr": { "type": "string", "description": "the printed QR's EMVCo payload" },
            "token": { "type": "string", "description": "the merchant's bearer token, returned once at onboarding" }
        } }),
        );
        put(
            "TerminalRequest",
            object(
                &["kind"],
                json!({
                    "kind": { "type": "string", "enum": ["pos", "scan_gun", "courier", "online_shop"] }
                }),
            ),
        );
        put(
            "OrderRequest",
            object(
                &["reference", "amount"],
                json!({
                    "reference": { "type": "string", "example": "TILL-0001" },
                    "amount": { "type": "string", "example": "120.00" },
                    "valid_s": { "type": "integer", "minimum": 1, "maximum": 86400 },
                    "cash_on_delivery": { "type": "boolean" }
                }),
            ),
        );
        put(
            "Order",
            json!({ "type": "object", "properties": {
            "merchant": string(), "reference": string(), "amount": string(),
            "expires_at_ms": { "type": "integer" }, "terminal": { "type": "integer" },
            "cash_on_delivery": { "type": "boolean" },
            "status": { "type": "string", "enum": ["open", "paid", "delivered"] },
            "transfer": string(),
            "qr": { "type": "string", "description": "the order's dynamic EMVCo payload" }
        } }),
        );
        put(
            "RequestPayment",
            object(
                &[
                    "payer",
                    "request",
                    "public_key",
                    "signature",
                    "not_after_ms",
                ],
                json!({
                    "payer": string(),
                    "request": { "type": "string", "description": "EMVCo payload read from a QR or tap-zone tag" },
                    "amount": { "type": "string", "description": "what the payer typed (printed QR)" },
                    "read": { "type": "string", "enum": ["scanned", "tapped"] },
                    "public_key": string(),
                    "signature": { "type": "string", "description": "SM2 over the PayMerchant command the request makes" },
                    "not_after_ms": { "type": "integer", "minimum": 0, "description": "the last Unix millisecond the signature is good; see GET /v1/context and docs/signing.md" }
                }),
            ),
        );
        put(
            "RequestPaymentResult",
            json!({ "type": "object", "properties": {
            "transfer": string(), "merchant": string(), "name": string(), "amount": string(), "order": string()
        } }),
        );
        put(
            "PaymentCode",
            json!({ "type": "object", "properties": {
            "wallet": string(), "code": { "type": "string", "example": "280212345678901234" },
            "valid_until_s": { "type": "integer" }
        } }),
        );
        put(
            "CodePaymentRequest",
            object(
                &["code", "amount"],
                json!({ "code": string(), "amount": string() }),
            ),
        );
        put(
            "Charge",
            json!({ "type": "object", "properties": {
            "transfer": string(), "merchant": string(), "amount": string(), "sub_wallet": string()
        } }),
        );
        put(
            "OpenSubWalletRequest",
            object(
                &[
                    "merchant",
                    "per_payment",
                    "daily",
                    "public_key",
                    "signature",
                    "not_after_ms",
                ],
                json!({
                    "merchant": string(), "per_payment": string(), "daily": string(), "public_key": string(), "signature": string(),
                    "not_after_ms": { "type": "integer", "minimum": 0, "description": "the last Unix millisecond the signature is good; see GET /v1/context and docs/signing.md" }
                }),
            ),
        );
        put(
            "SetSubWalletRequest",
            object(
                &[
                    "per_payment",
                    "daily",
                    "open",
                    "public_key",
                    "signature",
                    "not_after_ms",
                ],
                json!({
                    "per_payment": string(), "daily": string(), "open": { "type": "boolean" }, "public_key": string(), "signature": string(),
                    "not_after_ms": { "type": "integer", "minimum": 0, "description": "the last Unix millisecond the signature is good; see GET /v1/context and docs/signing.md" }
                }),
            ),
        );
        put(
            "SubWallet",
            json!({ "type": "object", "properties": {
            "sub_wallet": string(), "merchant": string(), "wallet": string(), "per_payment": string(),
            "daily": string(), "charged_today": string(), "open": { "type": "boolean" }
        } }),
        );
        put(
            "SubWalletChargeRequest",
            object(
                &["sub_wallet", "amount"],
                json!({
                    "sub_wallet": string(), "amount": string(), "order": string()
                }),
            ),
        );
        put(
            "RefundRequest",
            object(
                &["payment", "amount"],
                json!({ "payment": string(), "amount": string() }),
            ),
        );
        put(
            "Refund",
            json!({ "type": "object", "properties": {
            "transfer": string(), "payment": string(), "amount": string()
        } }),
        );
        put(
            "MerchantPayment",
            json!({ "type": "object", "properties": {
            "transfer": string(), "amount": string(), "refunded": string(), "channel": string(),
            "terminal": { "type": "integer" }, "at_ms": { "type": "integer" }, "order": string(), "sub_wallet": string()
        } }),
        );
        put(
            "Settlement",
            json!({ "type": "object", "properties": {
            "merchant": string(), "date": string(), "payments": { "type": "integer" }, "gross": string(),
            "refunds": { "type": "integer" }, "refunded": string(), "net": string(),
            "by_channel": { "type": "array", "items": { "type": "object", "properties": {
                "channel": string(), "payments": { "type": "integer" }, "amount": string()
            } } }
        } }),
        );
        all
    }

    pub fn paths() -> Map<String, Value> {
        let bearer = json!([{ "bearer": [] }]);
        let m = path_param("m", "M00000001");
        let day = query_param("date", "YYYY-MM-DD in China time; today if absent");
        let order = query_param("order", "an order's reference: its dynamic request");
        let array = |name: &str| json!({ "type": "array", "items": schema_ref(name) });
        let mut all = Map::new();
        let mut put = |path: &str, item: Value| {
            all.insert(path.to_string(), item);
        };
        put(
            "/v1/operators/{op}/merchants",
            json!({ "post": {
            "summary": "Onboard a merchant at this operator; answers its token once",
            "security": bearer, "parameters": [path_param("op", "OP01")],
            "requestBody": body("OnboardRequest"),
            "responses": responses(ok("201", "onboarded", schema_ref("Merchant")), true, &[]),
        } }),
        );
        put(
            "/v1/merchants/{m}",
            json!({ "get": {
            "summary": "A merchant, its terminals and its printed QR (the merchant, its terminals, its operator)",
            "security": bearer, "parameters": [m],
            "responses": responses(ok("200", "the merchant", schema_ref("Merchant")), false, &[]),
        } }),
        );
        put(
            "/v1/merchants/{m}/terminals",
            json!({ "post": {
            "summary": "Register a till, scan gun, courier handheld or web checkout; answers its token",
            "security": bearer, "parameters": [m],
            "requestBody": body("TerminalRequest"),
            "responses": responses(ok("201", "registered", schema_ref("Terminal")), true, &[]),
        } }),
        );
        put(
            "/v1/merchants/{m}/qr",
            json!({ "get": {
            "summary": "The printed QR (anyone) or an order's dynamic QR, as JSON, PNG or SVG",
            "security": bearer,
            "parameters": [m, order, query_param("format", "json (default), png or svg")],
            "responses": responses(
                ("200".to_string(), json!({ "description": "the EMVCo payload, or its image", "content": {
                    "application/json": { "schema": { "type": "object", "properties": { "merchant": string(), "qr": string() } } },
                    "image/png": { "schema": { "type": "string", "format": "binary" } },
                    "image/svg+xml": { "schema": { "type": "string" } }
                } })), false, &[]),
        } }),
        );
        put(
            "/v1/merchants/{m}/tap-zone",
            json!({ "get": {
            "summary": "The NDEF message for the stand's NFC tap zone (the printed request, or an order's)",
            "security": bearer, "parameters": [m, order],
            "responses": responses(
                ("200".to_string(), json!({ "description": "NDEF message bytes", "content": {
                    "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } })),
                false, &[]),
        } }),
        );
        put(
            "/v1/merchants/{m}/orders",
            json!({ "post": {
            "summary": "Present an order as a dynamic QR (a till, a web checkout, or a courier for cash on delivery)",
            "security": bearer, "parameters": [m],
            "requestBody": body("OrderRequest"),
            "responses": responses(ok("201", "the order and its QR", schema_ref("Order")), true, &[("409", "ORDER_EXISTS")]),
        } }),
        );
        put(
            "/v1/merchants/{m}/orders/{reference}",
            json!({ "get": {
            "summary": "An order's status: open, paid or delivered",
            "security": bearer, "parameters": [m, path_param("reference", "TILL-0001")],
            "responses": responses(ok("200", "the order", schema_ref("Order")), false, &[]),
        } }),
        );
        put(
            "/v1/merchants/{m}/code-payments",
            json!({ "post": {
            "summary": "A till or scan gun charges the customer's one-time payment code: once ever, up to the operator's password-free cap; a retry under the same key answers the first charge",
            "security": bearer, "parameters": [m, idempotency()],
            "requestBody": body("CodePaymentRequest"),
            "responses": responses(ok("201", "charged", schema_ref("Charge")), true, &[
                ("409", "CODE_REUSED, IDEMPOTENCY_KEY_REUSED"), ("429", "CODE_RATE_LIMITED"),
                ("422", "CODE_STALE, CODE_UNKNOWN, CODE_MALFORMED, LIMIT_PASSWORD_FREE, …")]),
        } }),
        );
        put(
            "/v1/merchants/{m}/sub-wallets",
            json!({ "get": {
            "summary": "The sub-wallets pushed to this merchant, by token only",
            "security": bearer, "parameters": [m],
            "responses": responses(ok("200", "the sub-wallets", array("SubWallet")), false, &[]),
        } }),
        );
        put(
            "/v1/merchants/{m}/sub-wallet-charges",
            json!({ "post": {
            "summary": "Charge a sub-wallet within the limits its holder set",
            "security": bearer, "parameters": [m, idempotency()],
            "requestBody": body("SubWalletChargeRequest"),
            "responses": responses(ok("201", "charged", schema_ref("Charge")), true, &[("409", "IDEMPOTENCY_KEY_REUSED, ORDER_ALREADY_PAID")]),
        } }),
        );
        put(
            "/v1/merchants/{m}/refunds",
            json!({ "post": {
            "summary": "Give back all or part of a payment, to the wallet that paid it",
            "security": bearer, "parameters": [m, idempotency()],
            "requestBody": body("RefundRequest"),
            "responses": responses(ok("201", "refunded", schema_ref("Refund")), true, &[("409", "IDEMPOTENCY_KEY_REUSED")]),
        } }),
        );
        put(
            "/v1/merchants/{m}/payments",
            json!({ "get": {
            "summary": "The day's payments received (never the payer)",
            "security": bearer, "parameters": [m, day],
            "responses": responses(ok("200", "payments", json!({ "type": "object", "properties": {
                "merchant": string(), "date": string(), "payments": array("MerchantPayment") } })), false, &[]),
        } }),
        );
        put(
            "/v1/merchants/{m}/settlement",
            json!({ "get": {
            "summary": "The day's settlement report: gross, refunds, net, by channel",
            "security": bearer, "parameters": [m, day],
            "responses": responses(ok("200", "the report", schema_ref("Settlement")), false, &[]),
        } }),
        );
        put(
            "/v1/request-payments",
            json!({ "post": {
            "summary": "A holder pays a scanned QR or tapped tag, as the holder signed (the holder's operator calls)",
            "security": bearer, "parameters": [idempotency()],
            "requestBody": body("RequestPayment"),
            "responses": responses(ok("201", "paid", schema_ref("RequestPaymentResult")), true, &[
                ("409", "ORDER_ALREADY_PAID, IDEMPOTENCY_KEY_REUSED")]),
        } }),
        );
        put(
            "/v1/wallets/{id}/payment-code",
            json!({ "get": {
            "summary": "The wallet's one-time payment code for now (its operator's app shows it)",
            "security": bearer, "parameters": [path_param("id", "W0000000001")],
            "responses": responses(ok("200", "the code", schema_ref("PaymentCode")), false, &[]),
        } }),
        );
        put(
            "/v1/wallets/{id}/sub-wallets",
            json!({
                "get": {
                    "summary": "The wallet's sub-wallets (its operator's app)",
                    "security": bearer, "parameters": [path_param("id", "W0000000001")],
                    "responses": responses(ok("200", "the sub-wallets", array("SubWallet")), false, &[]),
                },
                "post": {
                    "summary": "Push a sub-wallet to a merchant app, as the holder signed",
                    "security": bearer, "parameters": [path_param("id", "W0000000001")],
                    "requestBody": body("OpenSubWalletRequest"),
                    "responses": responses(ok("201", "opened", schema_ref("SubWallet")), true, &[]),
                }
            }),
        );
        put(
            "/v1/sub-wallets/{sw}",
            json!({ "put": {
            "summary": "Change a sub-wallet's limits or close it for good, as the holder signed",
            "security": bearer, "parameters": [path_param("sw", "SW00000001")],
            "requestBody": body("SetSubWalletRequest"),
            "responses": responses(ok("200", "the sub-wallet now", schema_ref("SubWallet")), true, &[]),
        } }),
        );
        all
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_documented_paths_are_the_served_ones() {
        let documented: Vec<String> = super::openapi::paths().keys().cloned().collect();
        let mut listed: Vec<String> = super::OPENAPI_PATHS.iter().map(|p| p.to_string()).collect();
        let mut sorted = documented.clone();
        sorted.sort();
        listed.sort();
        assert_eq!(sorted, listed);
        for path in super::OPENAPI_PATHS {
            assert!(crate::server::openapi::PATHS.contains(&path), "{path}");
        }
    }
}
