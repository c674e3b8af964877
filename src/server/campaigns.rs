//! Red-packet campaigns over HTTP, as a city and its citizens meet them: the sponsor's operator
//! publishes a campaign (its terms and seed commitment), the sponsor's wallet holder signs its
//! funding, people register from their wallets inside the window (each registration signed by
//! the wallet's key; one per person), anyone reads the registration list, the sponsor's operator
//! reveals the seed and the center draws, the winners are told in Chinese through the SMS outbox
//! (`server::notifier`), a winner's wallet shows its packets, and the sponsor's operator and the
//! central bank read redemption as it happens. The published campaign, list and draw are the
//! files `ecny lottery verify` checks.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::command::{check_window, Command, Outcome};
use crate::error::CommandError;
use crate::ids::{CampaignId, OperatorId, WalletId};
use crate::parties::{Operation, Party};
use crate::programs::campaign::Campaign;
use crate::programs::lottery::{RegistrantList, Seed};
use crate::programs::notices::winner_notices;
use crate::programs::red_packets::{CampaignBook, CampaignStatus, RedemptionReport};
use crate::time::china_date_time;

use super::extract::{blocking, AppState, Authenticated, PathId};
use super::fields::{holder_signature, id_field, unprocessable};
use super::gateway::{now_ms, staff_of, Gateway, GatewayError, HolderSignature};
use super::notifier::{DeliveryStatus, Notice, OutboxCounts};
use super::problem::{JsonBody, Problem};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/campaigns", post(create))
        .route("/v1/campaigns/{c}", get(read))
        .route("/v1/campaigns/{c}/funding", post(fund))
        .route(
            "/v1/campaigns/{c}/registrations",
            post(register).get(registrations),
        )
        .route("/v1/campaigns/{c}/draw", post(draw).get(read_draw))
        .route("/v1/campaigns/{c}/redemption", get(redemption))
        .route("/v1/campaigns/{c}/notices", get(notices))
        .route("/v1/wallets/{id}/packets", get(packets))
}

/// A campaign as published: its terms (the campaign file `ecny lottery verify` reads), where it
/// stands, and how many have registered.
#[derive(Clone, Debug, Serialize)]
pub struct CampaignView {
    pub campaign: String,
    pub name: String,
    pub sponsor: String,
    pub sponsor_wallet: String,
    pub status: &'static str,
    pub budget: String,
    pub packet_value: String,
    pub packet_count: u32,
    pub seed_commitment: String,
    pub registration_opens_at_ms: u64,
    pub registration_closes_at_ms: u64,
    pub valid_from_ms: u64,
    pub expires_at_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub funding_transfer: Option<String>,
    /// Registrations taken (repeats included) before the draw; the list's length after it.
    pub registrations: u64,
    /// The campaign file, exactly as published.
    pub terms: Value,
}

fn campaign_view(book: &CampaignBook) -> CampaignView {
    let terms = book.terms();
    CampaignView {
        campaign: terms.id.to_string(),
        name: terms.name.clone(),
        sponsor: terms.sponsor.name.clone(),
        sponsor_wallet: terms.sponsor.wallet.to_string(),
        status: book.status.as_str(),
        budget: terms.budget.to_string(),
        packet_value: terms.packet_value.to_string(),
        packet_count: terms.packet_count,
        seed_commitment: terms.seed_commitment.to_hex(),
        registration_opens_at_ms: terms.registration.opens_at_ms,
        registration_closes_at_ms: terms.registration.closes_at_ms,
        valid_from_ms: terms.validity.opens_at_ms,
        expires_at_ms: terms.validity.closes_at_ms,
        funding_transfer: book.funding.map(|event| event.to_string()),
        registrations: match book.registrant_list() {
            Some(list) => list.len() as u64,
            None => book.registrations().len() as u64,
        },
        terms: serde_json::from_str(&book.campaign().to_json()).expect("a campaign file is JSON"),
    }
}

/// One packet in its winner's wallet.
#[derive(Clone, Debug, Serialize)]
pub struct PacketView {
    pub campaign: String,
    pub name: String,
    pub sponsor: String,
    /// The packet's number in the draw, 1 for the first drawn.
    pub packet: u32,
    pub value: String,
    pub balance: String,
    pub spent: String,
    /// usable, used_up, expired or not_yet_valid.
    pub status: &'static str,
    pub valid_from_ms: u64,
    pub expires_at_ms: u64,
    /// The last second it may pay, Beijing time.
    pub expires_at: String,
    pub eligible: EligibleView,
}

/// Where a packet pays: the campaign's region, and inside it these categories and regions (any,
/// if empty), plus these merchants wherever they are.
#[derive(Clone, Debug, Serialize)]
pub struct EligibleView {
    pub region: String,
    pub categories: Vec<String>,
    pub regions: Vec<String>,
    pub merchants: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PacketsView {
    pub wallet: String,
    /// What the packets hold together, apart from the wallet's own balance.
    pub total: String,
    pub packets: Vec<PacketView>,
}

/// What a draw did.
#[derive(Clone, Debug, Serialize)]
pub struct DrawView {
    pub campaign: String,
    pub winners: u32,
    /// Winners' texts queued for the SMS gateway.
    pub notices_queued: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct RedemptionLineView {
    pub key: String,
    pub payments: u64,
    pub amount: String,
}

/// The redemption report, live.
#[derive(Clone, Debug, Serialize)]
pub struct RedemptionView {
    pub campaign: String,
    pub name: String,
    pub status: &'static str,
    pub budget: String,
    pub packets_drawn: u64,
    pub distributed: String,
    pub packets_used: u64,
    pub payments: u64,
    pub spent: String,
    pub refunded: String,
    pub unspent: String,
    pub returned: String,
    pub by_category: Vec<RedemptionLineView>,
    pub by_channel: Vec<RedemptionLineView>,
}

impl From<RedemptionReport> for RedemptionView {
    fn from(report: RedemptionReport) -> RedemptionView {
        RedemptionView {
            campaign: report.campaign.to_string(),
            name: report.name,
            status: report.status.as_str(),
            budget: report.budget.to_string(),
            packets_drawn: report.packets_drawn,
            distributed: report.distributed.to_string(),
            packets_used: report.packets_used,
            payments: report.payments,
            spent: report.spent.to_string(),
            refunded: report.refunded.to_string(),
            unspent: report.unspent.to_string(),
            returned: report.returned.to_string(),
            by_category: report
                .by_category
                .iter()
                .map(|line| RedemptionLineView {
                    key: line.key.to_string(),
                    payments: line.payments,
                    amount: line.amount.to_string(),
                })
                .collect(),
            by_channel: report
                .by_channel
                .iter()
                .map(|line| RedemptionLineView {
                    key: line.key.as_str().to_string(),
                    payments: line.payments,
                    amount: line.amount.to_string(),
                })
                .collect(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct NoticeView {
    pub packet: u32,
    pub wallet: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub text: String,
}

/// The outbox of a campaign: counts over every winner, and the notices of the caller's own
/// operator's wallets (the phone numbers stay with the operator).
#[derive(Clone, Debug, Serialize)]
pub struct NoticesView {
    pub campaign: String,
    pub gateway_configured: bool,
    #[serde(flatten)]
    pub counts: OutboxCounts,
    pub notices: Vec<NoticeView>,
}

impl Gateway {
    fn campaign_book<T>(
        &self,
        id: CampaignId,
        read: impl FnOnce(&crate::state_machine::StateMachine, &CampaignBook) -> T + Send + 'static,
    ) -> Result<T, GatewayError>
    where
        T: Send + 'static,
    {
        Ok(self.node.query(move |state| {
            let book = state.campaign(id)?;
            Ok::<T, CommandError>(read(state, book))
        })??)
    }

    /// The sponsor's wallet and its operator, and refuses staff of any other operator.
    fn sponsor_staff(
        &self,
        party: Party,
        id: CampaignId,
    ) -> Result<(WalletId, OperatorId), GatewayError> {
        let sponsor = self.campaign_book(id, |_, book| book.terms().sponsor.wallet)?;
        let operator = self.operator_of_wallet(sponsor)?;
        staff_of(party, operator)?;
        Ok((sponsor, operator))
    }

    /// Publishes a campaign for its sponsor's wallet, through that wallet's operator.
    pub fn create_campaign(
        &self,
        party: Party,
        campaign: Campaign,
    ) -> Result<CampaignView, GatewayError> {
        self.allow(Operation::CreateCampaign, party)?;
        let operator = self.operator_of_wallet(campaign.terms().sponsor.wallet)?;
        staff_of(party, operator)?;
        let terms = campaign.terms().clone();
        let Outcome::Campaign(id) = self.submit_one(operator, Command::CreateCampaign { terms })?
        else {
            unreachable!("create campaign answers the campaign")
        };
        self.campaign_book(id, |_, book| campaign_view(book))
    }

    pub fn read_campaign(
        &self,
        party: Party,
        id: CampaignId,
    ) -> Result<CampaignView, GatewayError> {
        self.allow(Operation::ReadCampaign, party)?;
        self.campaign_book(id, |_, book| campaign_view(book))
    }

    /// The sponsor's holder moves the budget into the pool, by signing the funding.
    pub fn fund_campaign(
        &self,
        party: Party,
        id: CampaignId,
        signature: HolderSignature,
    ) -> Result<CampaignView, GatewayError> {
        self.allow(Operation::FundCampaign, party)?;
        let sponsor = self.campaign_book(id, |_, book| book.terms().sponsor.wallet)?;
        let command = Command::FundCampaign {
            campaign: id,
            auth: None,
        };
        self.submit_signed(party, sponsor, command, signature)?;
        self.campaign_book(id, |_, book| campaign_view(book))
    }

    /// A holder registers a wallet, signing the registration with its key; the wallet's
    /// operator checks the signature before it submits the registration (which moves no money,
    /// so the log keeps the registration without it).
    pub fn register_for_campaign(
        &self,
        party: Party,
        id: CampaignId,
        wallet: WalletId,
        offline_trial: bool,
        signature: HolderSignature,
    ) -> Result<CampaignView, GatewayError> {
        self.allow(Operation::RegisterForCampaign, party)?;
        let operator = self.signer_operator(party, wallet)?;
        let command = Command::RegisterForCampaign {
            campaign: id,
            wallet,
            offline_trial,
        };
        let auth = signature.bound(self.signing_context(operator));
        let key = self
            .node
            .query(move |state| state.wallet_key(wallet).copied())??;
        if key != auth.public_key {
            return Err(CommandError::SignatureInvalid.into());
        }
        check_window(auth.not_after_ms, now_ms())?;
        auth.public_key
            .verify(
                &command.signing_bytes(&auth.context, auth.not_after_ms),
                &auth.signature,
            )
            .map_err(|_| CommandError::SignatureInvalid)?;
        self.submit_one(operator, command)?;
        self.campaign_book(id, |_, book| campaign_view(book))
    }

    /// The registrant list, one wallet a line (`ecny lottery verify`'s format): the registrations
    /// so far while the campaign is open, the list the draw ran over after it.
    pub fn registrant_list(&self, party: Party, id: CampaignId) -> Result<String, GatewayError> {
        self.allow(Operation::ReadRegistrations, party)?;
        self.campaign_book(id, |_, book| match book.registrant_list() {
            Some(list) => Ok(list.to_text()),
            None => RegistrantList::from_registrations(book.registrations().to_vec())
                .map(|list| list.to_text())
                .map_err(CommandError::Lottery),
        })?
        .map_err(GatewayError::from)
    }

    /// The sponsor's operator reveals the seed; the center draws and hands out the packets, and
    /// every winner's text goes into the outbox in Chinese, addressed to the phone number the
    /// winner's operator holds.
    pub fn draw_campaign(
        &self,
        party: Party,
        id: CampaignId,
        seed: Seed,
    ) -> Result<(u32, Vec<Notice>), GatewayError> {
        self.allow(Operation::DrawCampaign, party)?;
        let (_, operator) = self.sponsor_staff(party, id)?;
        let Outcome::Drawn { winners, .. } =
            self.submit_one(operator, Command::DrawCampaign { campaign: id, seed })?
        else {
            unreachable!("a draw answers its winners")
        };
        Ok((winners, self.winner_notices(id)?))
    }

    /// Each winner's notice, with the phone number its operator opens from its own seal.
    fn winner_notices(&self, id: CampaignId) -> Result<Vec<Notice>, GatewayError> {
        let (texts, phones) = self.node.query(move |state| {
            let book = state.campaign(id)?;
            let draw = book.draw().expect("a drawn campaign publishes its draw");
            let texts = winner_notices(book.campaign(), &draw);
            // One pass over each operator's directory, not one per winner.
            let phones: Vec<(_, Vec<_>)> = state
                .operators()
                .iter()
                .map(|operator| (operator.id, operator.phone_entries()))
                .collect();
            Ok::<_, CommandError>((texts, phones))
        })??;
        let mut by_wallet = std::collections::HashMap::new();
        for (operator, entries) in phones {
            for (phone, wallet) in entries {
                by_wallet.insert(wallet, (operator, phone));
            }
        }
        texts
            .into_iter()
            .map(|sms| {
                let (operator, sealed) = by_wallet
                    .get(&sms.wallet)
                    .ok_or(CommandError::UnknownWallet(sms.wallet))?;
                let phone = self
                    .desk(*operator)?
                    .identity_key
                    .open_phone(sealed)
                    .map_err(|_| CommandError::IdentitySealBroken)?;
                Ok(Notice::new(
                    sms.campaign,
                    sms.packet,
                    sms.wallet,
                    phone,
                    sms.text_zh,
                ))
            })
            .collect()
    }

    /// The published draw file (seed and winners), once drawn.
    pub fn published_draw(&self, party: Party, id: CampaignId) -> Result<String, GatewayError> {
        self.allow(Operation::ReadDraw, party)?;
        self.campaign_book(id, |_, book| book.draw().map(|draw| draw.to_json()))?
            .ok_or_else(|| CommandError::CampaignNotDrawn(id).into())
    }

    /// Redemption as it happens: the sponsor's operator and the central bank.
    pub fn redemption(&self, party: Party, id: CampaignId) -> Result<RedemptionView, GatewayError> {
        self.allow(Operation::ReadRedemption, party)?;
        if party != Party::CentralBank {
            self.sponsor_staff(party, id)?;
        }
        Ok(self
            .node
            .query(move |state| state.redemption_report(id))??
            .into())
    }

    /// A wallet's packets: amount, what is left, where they pay and until when.
    pub fn packets(&self, party: Party, wallet: WalletId) -> Result<PacketsView, GatewayError> {
        self.allow(Operation::ReadPackets, party)?;
        self.wallet_in_scope(party, wallet)?;
        let now = now_ms();
        Ok(self.node.query(move |state| {
            let packets: Vec<PacketView> = state
                .red_packets()
                .packets_of(wallet)
                .iter()
                .filter_map(|reference| {
                    let (book, packet) = state.red_packets().packet(*reference)?;
                    Some(packet_view(book, packet, reference.packet + 1, now))
                })
                .collect();
            PacketsView {
                wallet: wallet.to_string(),
                total: state.packet_balance(wallet).to_string(),
                packets,
            }
        })?)
    }
}

fn packet_view(
    book: &CampaignBook,
    packet: &crate::programs::red_packets::Packet,
    number: u32,
    now: u64,
) -> PacketView {
    let terms = book.terms();
    let balance = book.packet_balance(packet);
    let status = if !balance.is_positive() && book.status != CampaignStatus::Expired {
        "used_up"
    } else if book.status == CampaignStatus::Expired || now >= terms.validity.closes_at_ms {
        "expired"
    } else if now < terms.validity.opens_at_ms {
        "not_yet_valid"
    } else {
        "usable"
    };
    PacketView {
        campaign: terms.id.to_string(),
        name: terms.name.clone(),
        sponsor: terms.sponsor.name.clone(),
        packet: number,
        value: terms.packet_value.to_string(),
        balance: balance.to_string(),
        spent: packet.spent.to_string(),
        status,
        valid_from_ms: terms.validity.opens_at_ms,
        expires_at_ms: terms.validity.closes_at_ms,
        expires_at: china_date_time(terms.validity.closes_at_ms.saturating_sub(1000)).to_string(),
        eligible: EligibleView {
            region: terms.region.to_string(),
            categories: terms
                .eligibility
                .categories
                .iter()
                .map(|mcc| mcc.to_string())
                .collect(),
            regions: terms
                .eligibility
                .regions
                .iter()
                .map(|region| region.to_string())
                .collect(),
            merchants: terms
                .eligibility
                .merchants
                .iter()
                .map(|merchant| merchant.to_string())
                .collect(),
        },
    }
}

fn campaign_file(body: &Value) -> Result<Campaign, Problem> {
    Campaign::from_json(&body.to_string())
        .map_err(|error| Problem::from(CommandError::Campaign(error)))
}

async fn create(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<CampaignView>), Problem> {
    let campaign = campaign_file(&body)?;
    let view = blocking(&app, move |gateway| {
        gateway.create_campaign(caller, campaign)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

async fn read(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(id): PathId<CampaignId>,
) -> Result<Json<CampaignView>, Problem> {
    let view = blocking(&app, move |gateway| gateway.read_campaign(caller, id)).await?;
    Ok(Json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FundRequest {
    pub public_key: String,
    /// The sponsor wallet holder's SM2 signature over the FundCampaign command's signing bytes.
    pub signature: String,
    pub not_after_ms: u64,
}

async fn fund(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(id): PathId<CampaignId>,
    JsonBody(body): JsonBody<FundRequest>,
) -> Result<(StatusCode, Json<CampaignView>), Problem> {
    let signature = holder_signature(&body.public_key, &body.signature, body.not_after_ms)?;
    let view = blocking(&app, move |gateway| {
        gateway.fund_campaign(caller, id, signature)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub wallet: String,
    /// Opt in to the offline hardware-wallet trial, where the campaign offers one.
    #[serde(default)]
    pub offline_trial: bool,
    pub public_key: String,
    /// SM2 signature over the RegisterForCampaign command's signing bytes.
    pub signature: String,
    pub not_after_ms: u64,
}

async fn register(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(id): PathId<CampaignId>,
    JsonBody(body): JsonBody<RegisterRequest>,
) -> Result<(StatusCode, Json<CampaignView>), Problem> {
    let wallet: WalletId = id_field("wallet", &body.wallet)?;
    let signature = holder_signature(&body.public_key, &body.signature, body.not_after_ms)?;
    let offline_trial = body.offline_trial;
    let view = blocking(&app, move |gateway| {
        gateway.register_for_campaign(caller, id, wallet, offline_trial, signature)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

async fn registrations(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(id): PathId<CampaignId>,
) -> Result<impl IntoResponse, Problem> {
    let text = blocking(&app, move |gateway| gateway.registrant_list(caller, id)).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrawRequest {
    /// The sponsor's seed, 64 hex digits, matching the published commitment.
    pub seed: String,
}

async fn draw(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(id): PathId<CampaignId>,
    JsonBody(body): JsonBody<DrawRequest>,
) -> Result<(StatusCode, Json<DrawView>), Problem> {
    let seed = Seed::from_hex(&body.seed)
        .map_err(|error| unprocessable(error.code(), format!("seed: {error}")))?;
    let (winners, notices) =
        blocking(&app, move |gateway| gateway.draw_campaign(caller, id, seed)).await?;
    let notices_queued = app.notifier.enqueue(id, notices);
    Ok((
        StatusCode::CREATED,
        Json(DrawView {
            campaign: id.to_string(),
            winners,
            notices_queued,
        }),
    ))
}

async fn read_draw(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(id): PathId<CampaignId>,
) -> Result<impl IntoResponse, Problem> {
    let text = blocking(&app, move |gateway| gateway.published_draw(caller, id)).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], text))
}

async fn redemption(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(id): PathId<CampaignId>,
) -> Result<Json<RedemptionView>, Problem> {
    let view = blocking(&app, move |gateway| gateway.redemption(caller, id)).await?;
    Ok(Json(view))
}

async fn notices(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(id): PathId<CampaignId>,
) -> Result<Json<NoticesView>, Problem> {
    let operator = blocking(&app, move |gateway| {
        gateway.read_campaign(caller, id)?;
        Ok(caller.staff_operator())
    })
    .await?;
    let Some(operator) = operator else {
        return Err(Problem::from(GatewayError::Denied {
            operation: Operation::ReadNotices,
            denial: crate::parties::Denial::StaffOnly,
        }));
    };
    // Which wallets are this operator's: looked up once for the campaign's winners.
    let gateway = app.gateway.clone();
    let (counts, shown) = tokio::task::spawn_blocking({
        let app = app.clone();
        move || {
            app.notifier.campaign(id, |wallet| {
                gateway
                    .operator_of_wallet(wallet)
                    .is_ok_and(|owner| owner == operator)
            })
        }
    })
    .await
    .map_err(|error| Problem::internal(format!("request task failed: {error}")))?;
    Ok(Json(NoticesView {
        campaign: id.to_string(),
        gateway_configured: app.notifier.gateway().is_some(),
        counts,
        notices: shown
            .into_iter()
            .map(|notice| NoticeView {
                packet: notice.packet,
                wallet: notice.wallet.to_string(),
                status: notice.status,
                attempts: notice.attempts,
                last_error: notice.last_error,
                text: notice.text,
            })
            .collect(),
    }))
}

async fn packets(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(wallet): PathId<WalletId>,
) -> Result<Json<PacketsView>, Problem> {
    let view = blocking(&app, move |gateway| gateway.packets(caller, wallet)).await?;
    Ok(Json(view))
}

pub const OPENAPI_PATHS: [&str; 8] = [
    "/v1/campaigns",
    "/v1/campaigns/{c}",
    "/v1/campaigns/{c}/funding",
    "/v1/campaigns/{c}/registrations",
    "/v1/campaigns/{c}/draw",
    "/v1/campaigns/{c}/redemption",
    "/v1/campaigns/{c}/notices",
    "/v1/wallets/{id}/packets",
];

pub mod openapi {
    use serde_json::{json, Map, Value};

    use crate::server::openapi_doc::{body, ok, path_param, schema_ref};

    fn responses(status: &str, description: &str, schema: Value, body: bool) -> Value {
        crate::server::openapi_doc::responses(
            ok(status, description, schema),
            body,
            &[(
                "409",
                "CAMPAIGN_EXISTS, CAMPAIGN_ALREADY_FUNDED, CAMPAIGN_ALREADY_DRAWN, CAMPAIGN_IDENTITY_REGISTERED, CAMPAIGN_NOT_DRAWN",
            )],
        )
    }

    /// A published file, as it is served: plain text, or a JSON document (the draw file).
    fn text(description: &str, content_type: &str) -> Value {
        let schema = match content_type {
            "application/json" => json!({ "type": "object" }),
            _ => json!({ "type": "string" }),
        };
        crate::server::openapi_doc::responses(
            (
                "200".to_string(),
                json!({ "description": description,
                    "content": { content_type: { "schema": schema } } }),
            ),
            false,
            &[("409", "CAMPAIGN_NOT_DRAWN")],
        )
    }

    fn campaign() -> Value {
        path_param("c", "RP000001")
    }

    pub fn schemas() -> Map<String, Value> {
        let s = || json!({ "type": "string" });
        let n = || json!({ "type": "integer", "minimum": 0 });
        let window = || {
            json!({ "type": "object", "additionalProperties": false,
            "required": ["opens_at_ms", "closes_at_ms"],
            "properties": { "opens_at_ms": n(), "closes_at_ms": n() } })
        };
        let strings = || json!({ "type": "array", "items": { "type": "string" } });
        let mut all = Map::new();
        all.insert("CampaignFile".into(), json!({
            "type": "object", "additionalProperties": false,
            "description": "the published campaign file (`ecny lottery sample` writes one): budget = packet_count × packet_value, the seed commitment SM3 of the sponsor's secret seed",
            "required": ["format", "id", "name", "sponsor", "budget", "packet_count", "packet_value", "region", "registration", "validity", "offline_trial", "seed_commitment"],
            "properties": {
                "format": s(), "id": s(), "name": s(),
                "sponsor": { "type": "object", "additionalProperties": false, "required": ["name", "wallet"],
                    "properties": { "name": s(), "wallet": s() } },
                "budget": s(), "packet_count": n(), "packet_value": s(), "region": s(),
                "eligible": { "type": "object", "additionalProperties": false,
                    "properties": { "categories": strings(), "regions": strings(), "merchants": strings() } },
                "registration": window(), "validity": window(), "offline_trial": { "type": "boolean" },
                "seed_commitment": s()
            }
        }));
        all.insert(
            "Campaign".into(),
            json!({ "type": "object", "properties": {
            "campaign": s(), "name": s(), "sponsor": s(), "sponsor_wallet": s(),
            "status": { "type": "string", "enum": ["open", "drawn", "expired"] },
            "budget": s(), "packet_value": s(), "packet_count": n(), "seed_commitment": s(),
            "registration_opens_at_ms": n(), "registration_closes_at_ms": n(),
            "valid_from_ms": n(), "expires_at_ms": n(), "funding_transfer": s(),
            "registrations": n(), "terms": schema_ref("CampaignFile")
        } }),
        );
        all.insert(
            "FundCampaignRequest".into(),
            json!({
                "type": "object", "additionalProperties": false,
                "required": ["public_key", "signature", "not_after_ms"],
                "properties": { "public_key": s(), "signature": s(), "not_after_ms": n() }
            }),
        );
        all.insert(
            "RegisterForCampaignRequest".into(),
            json!({
                "type": "object", "additionalProperties": false,
                "required": ["wallet", "public_key", "signature", "not_after_ms"],
                "properties": { "wallet": s(), "offline_trial": { "type": "boolean" },
                    "public_key": s(), "signature": s(), "not_after_ms": n() }
            }),
        );
        all.insert(
            "DrawCampaignRequest".into(),
            json!({
                "type": "object", "additionalProperties": false, "required": ["seed"],
                "properties": { "seed": s() }
            }),
        );
        all.insert(
            "CampaignDraw".into(),
            json!({ "type": "object", "properties": {
            "campaign": s(), "winners": n(), "notices_queued": n() } }),
        );
        let line = json!({ "type": "array", "items": { "type": "object", "properties": {
            "key": s(), "payments": n(), "amount": s() } } });
        all.insert(
            "Redemption".into(),
            json!({ "type": "object", "properties": {
            "campaign": s(), "name": s(), "status": s(), "budget": s(), "packets_drawn": n(),
            "distributed": s(), "packets_used": n(), "payments": n(), "spent": s(),
            "refunded": s(), "unspent": s(), "returned": s(),
            "by_category": line.clone(), "by_channel": line } }),
        );
        all.insert(
            "CampaignNotices".into(),
            json!({ "type": "object", "properties": {
            "campaign": s(), "gateway_configured": { "type": "boolean" },
            "queued": n(), "pending": n(), "delivered": n(), "failed": n(),
            "notices": { "type": "array", "items": { "type": "object", "properties": {
                "packet": n(), "wallet": s(),
                "status": { "type": "string", "enum": ["pending", "delivered", "failed"] },
                "attempts": n(), "last_error": s(), "text": s() } } } } }),
        );
        all.insert("WalletPackets".into(), json!({ "type": "object", "properties": {
            "wallet": s(), "total": s(),
            "packets": { "type": "array", "items": { "type": "object", "properties": {
                "campaign": s(), "name": s(), "sponsor": s(), "packet": n(), "value": s(),
                "balance": s(), "spent": s(),
                "status": { "type": "string", "enum": ["usable", "used_up", "expired", "not_yet_valid"] },
                "valid_from_ms": n(), "expires_at_ms": n(), "expires_at": s(),
                "eligible": { "type": "object", "properties": {
                    "region": s(), "categories": strings(), "regions": strings(), "merchants": strings() } } } } } } }));
        all
    }

    pub fn paths() -> Map<String, Value> {
        let bearer = json!([{ "bearer": [] }]);
        let mut all = Map::new();
        all.insert("/v1/campaigns".into(), json!({ "post": {
            "summary": "The sponsor's operator publishes a red-packet campaign for the sponsor's wallet, with the seed commitment",
            "security": bearer, "requestBody": body("CampaignFile"),
            "responses": responses("201", "published", schema_ref("Campaign"), true),
        } }));
        all.insert(
            "/v1/campaigns/{c}".into(),
            json!({ "get": {
            "summary": "A campaign as published: terms, seed commitment, status, registrations",
            "parameters": [campaign()],
            "responses": responses("200", "the campaign", schema_ref("Campaign"), false),
        } }),
        );
        all.insert("/v1/campaigns/{c}/funding".into(), json!({ "post": {
            "summary": "The sponsor's wallet holder moves the whole budget into the campaign's pool, signing the FundCampaign command",
            "security": bearer, "parameters": [campaign()], "requestBody": body("FundCampaignRequest"),
            "responses": responses("201", "funded", schema_ref("Campaign"), true),
        } }));
        all.insert("/v1/campaigns/{c}/registrations".into(), json!({
            "post": {
                "summary": "A holder registers a wallet inside the registration window, signing the RegisterForCampaign command; one registration per person",
                "security": bearer, "parameters": [campaign()], "requestBody": body("RegisterForCampaignRequest"),
                "responses": responses("201", "registered", schema_ref("Campaign"), true),
            },
            "get": {
                "summary": "The registrant list, one wallet a line (`ecny lottery verify`'s registrants file): so far while open, the list drawn from after the draw",
                "parameters": [campaign()],
                "responses": text("the list", "text/plain"),
            }
        }));
        all.insert("/v1/campaigns/{c}/draw".into(), json!({
            "post": {
                "summary": "The sponsor's operator reveals the seed; the center draws, hands out the packets, and the winners' texts go to the SMS outbox",
                "security": bearer, "parameters": [campaign()], "requestBody": body("DrawCampaignRequest"),
                "responses": responses("201", "drawn", schema_ref("CampaignDraw"), true),
            },
            "get": {
                "summary": "The published draw file (`ecny lottery verify`'s draw file): the revealed seed and the winners in draw order",
                "parameters": [campaign()],
                "responses": text("the draw", "application/json"),
            }
        }));
        all.insert("/v1/campaigns/{c}/redemption".into(), json!({ "get": {
            "summary": "Redemption as it happens: packets used, amounts by category and channel, what went back to the sponsor (the sponsor's operator, the central bank)",
            "security": bearer, "parameters": [campaign()],
            "responses": responses("200", "the report", schema_ref("Redemption"), false),
        } }));
        all.insert("/v1/campaigns/{c}/notices".into(), json!({ "get": {
            "summary": "The winners' SMS outbox: delivery counts over every winner, and the notices of the caller's operator's wallets",
            "security": bearer, "parameters": [campaign()],
            "responses": responses("200", "the outbox", schema_ref("CampaignNotices"), false),
        } }));
        all.insert(
            "/v1/wallets/{id}/packets".into(),
            json!({ "get": {
            "summary": "A wallet's red packets: value, what is left, where they pay and until when",
            "security": bearer, "parameters": [path_param("id", "W0000000002")],
            "responses": responses("200", "the packets", schema_ref("WalletPackets"), false),
        } }),
        );
        all
    }
}
