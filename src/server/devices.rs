//! Hardware wallets on a live node: the operator issues a secure element (its certificate, caps
//! by form, the holder's signature on the binding) or a visitor card; the holder loads it
//! (signed) and unloads it (the card's signed unload); a card back online syncs its offline
//! records (the center's nonce, then the card's attestation over it) and gets the operator's
//! confirmation back; terminals download the central bank's signed revocation list; the
//! operator reads and blocks its cards.
//!
//! The card itself never reaches the server: the holder's phone or the merchant's terminal
//! relays what the card signed (attestations, unloads) and carries back what the operator signed
//! for it (certificates, load orders, sync confirmations).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::amount::Amount;
use crate::certs::device::{CompactCertificate, DeviceCaps, RevocationList};
use crate::certs::{encode_hex, PublicKey};
use crate::command::{Command, Outcome};
use crate::error::CommandError;
use crate::ids::{DeviceId, EventId, OperatorId, WalletId};
use crate::offline::messages::{AttestedSync, SignedUnload, Wire};
use crate::offline::profiles::{Profile, WalletForm};
use crate::offline::settlement::{RegisteredDevice, SyncReport};
use crate::parties::{Operation, Party};

use super::extract::{blocking, AppState, Authenticated, PathId};
use super::fields::{amount_field, id_field, unprocessable};
use super::gateway::{now_s, staff_of, DeviceDesk, Gateway, GatewayError, HolderSignature};
use super::problem::{JsonBody, Problem};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/operators/{op}/devices", post(issue_device))
        .route("/v1/devices/{d}", get(read_device))
        .route("/v1/devices/{d}/loads", post(load_device))
        .route("/v1/devices/{d}/unloads", post(unload_device))
        .route("/v1/devices/{d}/sync-nonce", post(begin_sync))
        .route("/v1/devices/{d}/syncs", post(sync_device))
        .route("/v1/devices/{d}/block", post(block_device))
        .route("/v1/revocations", get(revocations))
}

/// Paths these handlers serve, in the document's order.
pub const OPENAPI_PATHS: [&str; 8] = [
    "/v1/operators/{op}/devices",
    "/v1/devices/{d}",
    "/v1/devices/{d}/loads",
    "/v1/devices/{d}/unloads",
    "/v1/devices/{d}/sync-nonce",
    "/v1/devices/{d}/syncs",
    "/v1/devices/{d}/block",
    "/v1/revocations",
];

/// A card's certificates, as its operator personalizes it.
pub struct IssuedDevice {
    pub device_cert: CompactCertificate,
    pub operator_cert: CompactCertificate,
    pub root: PublicKey,
    pub issued_at_s: u32,
    pub caps: DeviceCaps,
}

/// What the operator asks the center to issue.
pub struct DeviceOrder {
    pub operator: OperatorId,
    pub device: DeviceId,
    pub public_key: PublicKey,
    pub wallet: Option<WalletId>,
    pub profile: Profile,
    /// The holder's signature on the binding; none for a visitor card.
    pub signature: Option<HolderSignature>,
}

impl DeviceOrder {
    /// The command the holder signs: the same bytes its app builds from the same profile.
    pub fn command(&self) -> Command {
        Command::RegisterDevice {
            operator: self.operator,
            device: self.device,
            public_key: self.public_key,
            wallet: self.wallet,
            caps: self.profile.caps(),
            auth: None,
        }
    }
}

impl Gateway {
    fn device_record(&self, device: DeviceId) -> Result<RegisteredDevice, GatewayError> {
        Ok(self
            .node
            .query(move |state| state.devices().device(device).cloned())??)
    }

    /// The card, if the caller may see it: the central bank, its operator's staff, the holder of
    /// its wallet. Anyone else hears of it as of a card that does not exist.
    fn device_in_scope(
        &self,
        party: Party,
        device: DeviceId,
    ) -> Result<RegisteredDevice, GatewayError> {
        let record = self.device_record(device)?;
        let in_scope = match party {
            Party::CentralBank => true,
            Party::Staff { operator, .. } => operator == record.operator,
            Party::Holder(own) => record.wallet == Some(own),
            _ => false,
        };
        if !in_scope {
            return Err(CommandError::UnknownDevice(device).into());
        }
        Ok(record)
    }

    pub fn issue_device(
        &self,
        desk: &DeviceDesk,
        party: Party,
        order: DeviceOrder,
    ) -> Result<IssuedDevice, GatewayError> {
        self.allow(Operation::IssueDevice, party)?;
        staff_of(party, order.operator)?;
        let issuer = desk.issuer(order.operator)?;
        let command = order.command();
        match (order.wallet, order.signature) {
            (Some(wallet), Some(signature)) => {
                self.submit_signed(party, wallet, command, signature)?
            }
            // The center refuses a binding without the holder's signature.
            _ => self.submit_one(order.operator, command)?,
        };
        let issued_at_s = now_s() as u32;
        Ok(IssuedDevice {
            device_cert: issuer.certify_device(
                &order.profile,
                order.device,
                &order.public_key,
                order.device.0,
                issued_at_s,
            ),
            operator_cert: *issuer.certificate(),
            root: desk.central_bank().public_key(),
            issued_at_s,
            caps: order.profile.caps(),
        })
    }

    pub fn read_device(
        &self,
        party: Party,
        device: DeviceId,
    ) -> Result<RegisteredDevice, GatewayError> {
        self.allow(Operation::ReadDevice, party)?;
        self.device_in_scope(party, device)
    }

    /// Books a load and answers the operator's signed order for the card, naming the state the
    /// card attested: a card bound to a wallet is loaded from it as its holder signed; a visitor
    /// card against cash its operator's teller took.
    pub fn load_device(
        &self,
        desk: &DeviceDesk,
        party: Party,
        device: DeviceId,
        (load_seq, amount): (u32, Amount),
        attested: &AttestedSync,
        signature: Option<HolderSignature>,
    ) -> Result<(EventId, crate::offline::messages::LoadAuthorization), GatewayError> {
        self.allow(Operation::LoadDevice, party)?;
        let record = self.device_record(device)?;
        let command = Command::LoadDevice {
            device,
            load_seq,
            amount,
            auth: None,
        };
        let outcome = match (record.wallet, party) {
            (Some(wallet), Party::Holder(_) | Party::Anonymous) => {
                let signature = signature.ok_or(CommandError::SignatureMissing)?;
                check_attested(device, &record, attested)?;
                self.submit_signed(party, wallet, command, signature)?
            }
            (None, Party::Staff { .. }) => {
                staff_of(party, record.operator)?;
                check_attested(device, &record, attested)?;
                self.submit_one(record.operator, command)?
            }
            (Some(_), _) => return Err(CommandError::UnknownDevice(device).into()),
            (None, _) => {
                return Err(GatewayError::Forbidden {
                    code: "VISITOR_CARD_AT_COUNTER",
                    detail: format!(
                        "{device} is a visitor card: its operator's teller loads it against cash"
                    ),
                })
            }
        };
        let Outcome::Transfer(transfer) = outcome else {
            unreachable!("a load answers its transfer, not {outcome:?}")
        };
        let order = desk
            .issuer(record.operator)?
            .authorize_load((device, load_seq, amount), &attested.attestation.digest());
        Ok((transfer, order))
    }

    /// Books what the card signed it unloaded: into its holder's wallet, or (a visitor card) paid
    /// out in cash by its operator's teller.
    pub fn unload_device(
        &self,
        party: Party,
        device: DeviceId,
        unload: SignedUnload,
    ) -> Result<EventId, GatewayError> {
        self.allow(Operation::UnloadDevice, party)?;
        let record = self.device_record(device)?;
        if unload.device != device {
            return Err(mismatch(device));
        }
        match (record.wallet, party) {
            (Some(wallet), Party::Holder(own)) if own != wallet => {
                return Err(CommandError::UnknownDevice(device).into())
            }
            // The card's signature is the authority; the money goes only to its own wallet.
            (Some(_), Party::Holder(_) | Party::Anonymous) => {}
            (None, Party::Staff { .. }) => staff_of(party, record.operator)?,
            (Some(_), _) => return Err(CommandError::UnknownDevice(device).into()),
            (None, _) => {
                return Err(GatewayError::Forbidden {
                    code: "VISITOR_CARD_AT_COUNTER",
                    detail: format!(
                        "{device} is a visitor card: its operator's teller pays it out in cash"
                    ),
                })
            }
        }
        let command = Command::UnloadDevice {
            unload,
            device_key: record.public_key,
        };
        match self.submit_one(record.operator, command)? {
            Outcome::Transfer(transfer) => Ok(transfer),
            other => unreachable!("an unload answers its transfer, not {other:?}"),
        }
    }

    /// Who may relay a card's sync: the holder of its wallet, its operator's staff, and for a
    /// card with no wallet (a merchant's terminal card) the merchant and its terminals. The
    /// card's attestation over the center's nonce is what proves the records.
    fn sync_in_scope(
        &self,
        operation: Operation,
        party: Party,
        device: DeviceId,
    ) -> Result<RegisteredDevice, GatewayError> {
        self.allow(operation, party)?;
        let record = self.device_record(device)?;
        let in_scope = match party {
            Party::Staff { operator, .. } => operator == record.operator,
            Party::Holder(own) => record.wallet == Some(own),
            Party::Merchant(_) | Party::Terminal { .. } => record.wallet.is_none(),
            _ => false,
        };
        if !in_scope {
            return Err(CommandError::UnknownDevice(device).into());
        }
        Ok(record)
    }

    pub fn begin_sync(
        &self,
        party: Party,
        device: DeviceId,
    ) -> Result<crate::offline::messages::Nonce, GatewayError> {
        let record = self.sync_in_scope(Operation::BeginSync, party, device)?;
        match self.submit_one(record.operator, Command::BeginSync { device })? {
            Outcome::SyncNonce(nonce) => Ok(nonce),
            other => unreachable!("a sync begins with a nonce, not {other:?}"),
        }
    }

    /// Books the card's attested records and answers the report with the operator's
    /// confirmation for the card (none for a blocked card).
    pub fn sync_device(
        &self,
        desk: &DeviceDesk,
        party: Party,
        device: DeviceId,
        sync: AttestedSync,
    ) -> Result<
        (
            SyncReport,
            Option<crate::offline::messages::SyncConfirmation>,
        ),
        GatewayError,
    > {
        let record = self.sync_in_scope(Operation::SyncDevice, party, device)?;
        if sync.attestation.device != device {
            return Err(mismatch(device));
        }
        let attestation = sync.attestation.digest();
        let command = Command::SyncOffline {
            sync,
            device_key: record.public_key,
        };
        let report = match self.submit_one(record.operator, command)? {
            Outcome::Synced(report) => report,
            other => unreachable!("a sync answers its report, not {other:?}"),
        };
        let confirmation = report.confirm.map(|confirm| {
            desk.issuer(record.operator).map(|issuer| {
                issuer.confirm_sync((device, confirm.through_seq, confirm.time_s), &attestation)
            })
        });
        Ok((report, confirmation.transpose()?))
    }

    pub fn block_device(
        &self,
        party: Party,
        device: DeviceId,
    ) -> Result<RegisteredDevice, GatewayError> {
        self.allow(Operation::BlockDevice, party)?;
        let record = self.device_record(device)?;
        if party.staff_operator() != Some(record.operator) {
            return Err(CommandError::UnknownDevice(device).into());
        }
        self.submit_one(record.operator, Command::BlockDevice { device })?;
        self.device_record(device)
    }

    /// The central bank's list of every blocked card. Its version is how many it names: cards
    /// are never unblocked, so a later list always has a higher version.
    pub fn revocations(&self, desk: &DeviceDesk) -> Result<RevocationList, GatewayError> {
        let blocked: Vec<DeviceId> = self
            .node
            .query(|state| state.devices().blocked().collect())?;
        RevocationList::issue(
            blocked.len() as u32,
            now_s() as u32,
            blocked,
            desk.central_bank(),
        )
        .map_err(|error| GatewayError::Conflict {
            code: error.code(),
            detail: error.to_string(),
        })
    }
}

fn mismatch(device: DeviceId) -> GatewayError {
    GatewayError::Forbidden {
        code: "DEVICE_MISMATCH",
        detail: format!("the card's signed message names another device than {device}"),
    }
}

/// The load order names the state the card attested; an attestation the card did not make
/// would make an order the card refuses, so it is refused here before anything moves.
fn check_attested(
    device: DeviceId,
    record: &RegisteredDevice,
    attested: &AttestedSync,
) -> Result<(), GatewayError> {
    if attested.attestation.device != device {
        return Err(mismatch(device));
    }
    if !attested.attestation.verify(&record.public_key) {
        return Err(CommandError::SyncNotAttested(device).into());
    }
    Ok(())
}

/// A card's message as a request carries it: its encoding in hex.
fn wire_field<T: Wire>(name: &str, text: &str) -> Result<T, Problem> {
    let malformed = |why: String| unprocessable("MALFORMED_MESSAGE", format!("{name}: {why}"));
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed("an even number of hex digits".into()));
    }
    let bytes: Vec<u8> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("checked hex"))
        .collect();
    T::decode(&bytes).map_err(|error| malformed(error.to_string()))
}

/// A form as requests name it.
pub fn form_code(form: WalletForm) -> &'static str {
    match form {
        WalletForm::PhoneEse => "phone_ese",
        WalletForm::SimCard => "sim_card",
        WalletForm::ContactlessCard => "contactless_card",
        WalletForm::StudentCard => "student_card",
        WalletForm::VisitorCard => "visitor_card",
    }
}

fn form_field(text: &str) -> Result<WalletForm, Problem> {
    WalletForm::ALL
        .into_iter()
        .find(|form| form_code(*form) == text)
        .ok_or_else(|| {
            let names: Vec<&str> = WalletForm::ALL.into_iter().map(form_code).collect();
            unprocessable(
                "MALFORMED_FORM",
                format!("form: {text:?} is not one of {}", names.join(", ")),
            )
        })
}

/// The profile of `form`, with a guardian's daily cap for a student card.
pub fn profile_of(form: WalletForm, daily_cap: Option<Amount>) -> Result<Profile, String> {
    match (form, daily_cap) {
        (WalletForm::StudentCard, Some(cap)) => {
            Profile::student_card(cap).map_err(|e| e.to_string())
        }
        (WalletForm::StudentCard, None) => {
            Err("a student card needs its guardian's daily_cap".into())
        }
        (_, Some(_)) => Err("only a student card takes a daily_cap".into()),
        (form, None) => Ok(Profile::new(form)),
    }
}

fn optional_signature(
    public_key: &Option<String>,
    signature: &Option<String>,
    not_after_ms: Option<u64>,
) -> Result<Option<HolderSignature>, Problem> {
    match (public_key, signature, not_after_ms) {
        (None, None, None) => Ok(None),
        (Some(key), Some(signature), Some(not_after_ms)) => Ok(Some(
            super::fields::holder_signature(key, signature, not_after_ms)?,
        )),
        _ => Err(unprocessable(
            "SIGNATURE_INCOMPLETE",
            "a holder's signature comes with its public_key, signature and not_after_ms, all three"
                .into(),
        )),
    }
}

fn caps_json(caps: &DeviceCaps) -> Value {
    json!({
        "per_payment_cap": caps.per_payment_cap.to_string(),
        "balance_cap": caps.balance_cap.to_string(),
        "daily_cap": caps.daily_cap.map(|cap| cap.to_string()),
        "payments_before_sync": caps.payments_before_sync,
        "spend_before_sync": caps.spend_before_sync.to_string(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueDeviceRequest {
    /// The card's number, e.g. "D000000000001".
    pub device: String,
    /// The card's SM2 public key (66 hex digits), made on the card.
    pub device_public_key: String,
    /// phone_ese, sim_card, contactless_card, student_card or visitor_card.
    pub form: String,
    /// The guardian's daily cap of a student card, in yuan.
    pub daily_cap: Option<String>,
    /// The wallet the card draws on; none for a visitor card.
    pub wallet: Option<String>,
    /// The holder's SM2 key, signature over the RegisterDevice command, and window's end.
    pub public_key: Option<String>,
    pub signature: Option<String>,
    pub not_after_ms: Option<u64>,
}

async fn issue_device(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(operator): PathId<OperatorId>,
    JsonBody(body): JsonBody<IssueDeviceRequest>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let device: DeviceId = id_field("device", &body.device)?;
    let public_key = PublicKey::from_hex(&body.device_public_key)
        .map_err(|e| unprocessable("MALFORMED_PUBLIC_KEY", format!("device_public_key: {e}")))?;
    let form = form_field(&body.form)?;
    let daily_cap = body
        .daily_cap
        .as_deref()
        .map(|cap| amount_field("daily_cap", cap))
        .transpose()?;
    let profile =
        profile_of(form, daily_cap).map_err(|why| unprocessable("MALFORMED_CAPS", why))?;
    let wallet: Option<WalletId> = body
        .wallet
        .as_deref()
        .map(|w| id_field("wallet", w))
        .transpose()?;
    if wallet.is_some() != form.has_online_wallet() {
        return Err(unprocessable(
            "FORM_WALLET_MISMATCH",
            format!(
                "a {} {} a wallet",
                form.name(),
                if form.has_online_wallet() {
                    "is bound to"
                } else {
                    "has no"
                }
            ),
        ));
    }
    let signature = optional_signature(&body.public_key, &body.signature, body.not_after_ms)?;
    let order = DeviceOrder {
        operator,
        device,
        public_key,
        wallet,
        profile,
        signature,
    };
    let desk = app.devices.clone();
    let issued = blocking(&app, move |gateway| {
        gateway.issue_device(&desk, caller, order)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "device": device.to_string(),
            "operator": operator.to_string(),
            "wallet": wallet.map(|w| w.to_string()),
            "form": form_code(form),
            "caps": caps_json(&issued.caps),
            "certificate": encode_hex(&issued.device_cert.encode()),
            "operator_certificate": encode_hex(&issued.operator_cert.encode()),
            "root": issued.root.to_hex(),
            "issued_at_s": issued.issued_at_s,
        })),
    ))
}

fn device_json(device: DeviceId, record: &RegisteredDevice) -> Value {
    json!({
        "device": device.to_string(),
        "operator": record.operator.to_string(),
        "wallet": record.wallet.map(|w| w.to_string()),
        "caps": caps_json(&record.caps),
        "loaded": record.loaded.to_string(),
        "unloaded": record.unloaded.to_string(),
        "paid": record.paid.to_string(),
        "received": record.received.to_string(),
        "believed_balance": record.believed_balance().to_string(),
        "load_seq": record.load_seq,
        "unload_seq": record.unload_seq,
        "blocked": record.blocked.map(|reason| reason.code()),
    })
}

async fn read_device(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(device): PathId<DeviceId>,
) -> Result<Json<Value>, Problem> {
    let record = blocking(&app, move |gateway| gateway.read_device(caller, device)).await?;
    Ok(Json(device_json(device, &record)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadDeviceRequest {
    /// The load's number: the last booked plus one (a retry repeats the last).
    pub load_seq: u32,
    /// Yuan, e.g. "500.00".
    pub amount: String,
    /// The card's attestation of its state (hex of its encoding) that the load order names.
    pub attestation: String,
    /// The holder's SM2 key, signature over the LoadDevice command, and window's end; none for a
    /// visitor card at the counter.
    pub public_key: Option<String>,
    pub signature: Option<String>,
    pub not_after_ms: Option<u64>,
}

#[derive(Serialize)]
pub struct LoadDeviceResponse {
    pub device: String,
    pub transfer: String,
    pub amount: String,
    /// The operator's signed load order for the card (hex).
    pub authorization: String,
}

async fn load_device(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(device): PathId<DeviceId>,
    JsonBody(body): JsonBody<LoadDeviceRequest>,
) -> Result<(StatusCode, Json<LoadDeviceResponse>), Problem> {
    let amount = amount_field("amount", &body.amount)?;
    let attested: AttestedSync = wire_field("attestation", &body.attestation)?;
    let signature = optional_signature(&body.public_key, &body.signature, body.not_after_ms)?;
    let desk = app.devices.clone();
    let (transfer, order) = blocking(&app, move |gateway| {
        gateway.load_device(
            &desk,
            caller,
            device,
            (body.load_seq, amount),
            &attested,
            signature,
        )
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(LoadDeviceResponse {
            device: device.to_string(),
            transfer: transfer.to_string(),
            amount: amount.to_string(),
            authorization: encode_hex(&order.encode()),
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnloadDeviceRequest {
    /// The card's signed unload (hex of its encoding).
    pub unload: String,
}

async fn unload_device(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(device): PathId<DeviceId>,
    JsonBody(body): JsonBody<UnloadDeviceRequest>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let unload: SignedUnload = wire_field("unload", &body.unload)?;
    let amount = unload.amount;
    let transfer = blocking(&app, move |gateway| {
        gateway.unload_device(caller, device, unload)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "device": device.to_string(),
            "transfer": transfer.to_string(),
            "amount": amount.to_string(),
        })),
    ))
}

async fn begin_sync(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(device): PathId<DeviceId>,
) -> Result<Json<Value>, Problem> {
    let nonce = blocking(&app, move |gateway| gateway.begin_sync(caller, device)).await?;
    Ok(Json(json!({
        "device": device.to_string(),
        "nonce": encode_hex(&nonce.encode()),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncDeviceRequest {
    /// The card's attested sync over the center's nonce (hex of its encoding).
    pub sync: String,
}

async fn sync_device(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(device): PathId<DeviceId>,
    JsonBody(body): JsonBody<SyncDeviceRequest>,
) -> Result<Json<Value>, Problem> {
    let sync: AttestedSync = wire_field("sync", &body.sync)?;
    let desk = app.devices.clone();
    let (report, confirmation) = blocking(&app, move |gateway| {
        gateway.sync_device(&desk, caller, device, sync)
    })
    .await?;
    Ok(Json(json!({
        "device": device.to_string(),
        "settled": report.settled,
        "duplicates": report.duplicates,
        "held": report.held,
        "reversed": report.reversed,
        "blocked": report.blocked,
        "clock_ahead": report.clock_ahead,
        "confirmation": confirmation.map(|c| encode_hex(&c.encode())),
    })))
}

async fn block_device(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(device): PathId<DeviceId>,
) -> Result<Json<Value>, Problem> {
    let record = blocking(&app, move |gateway| gateway.block_device(caller, device)).await?;
    Ok(Json(device_json(device, &record)))
}

async fn revocations(State(app): State<AppState>) -> Result<Json<Value>, Problem> {
    let desk = app.devices.clone();
    let list = blocking(&app, move |gateway| gateway.revocations(&desk)).await?;
    Ok(Json(json!({
        "version": list.version(),
        "issued_at_s": list.issued_at_s(),
        "blocked": list.blocked().iter().map(ToString::to_string).collect::<Vec<_>>(),
        "list": encode_hex(&list.encode()),
        "root": app.devices.central_bank().public_key().to_hex(),
    })))
}

// ----- the OpenAPI description of these endpoints -----

pub mod openapi {
    use serde_json::{json, Map, Value};

    use crate::server::openapi_doc::{body, ok, path_param, responses, schema_ref, string};

    pub fn schemas() -> Map<String, Value> {
        let object = |required: &[&str], properties: Value| json!({ "type": "object", "additionalProperties": false, "required": required, "properties": properties });
        let hex = |description: &str| json!({ "type": "string", "pattern": "^([0-9a-fA-F]{2})+$", "description": description });
        let signature = json!({ "type": "string", "description": "the holder's SM2 signature (128 hex digits) over the command's signing bytes" });
        let not_after = json!({ "type": "integer", "minimum": 0, "description": "the last Unix millisecond the signature is good; see GET /v1/context" });
        let key = json!({ "type": "string", "description": "SM2 public key, compressed (66 hex digits)" });
        let mut all = Map::new();
        let mut put = |name: &str, schema: Value| {
            all.insert(name.to_string(), schema);
        };
        put(
            "IssueDeviceRequest",
            object(
                &["device", "device_public_key", "form"],
                json!({
                    "device": { "type": "string", "example": "D000000000001" },
                    "device_public_key": key.clone(),
                    "form": { "type": "string", "enum": ["phone_ese", "sim_card", "contactless_card", "student_card", "visitor_card"] },
                    "daily_cap": { "type": "string", "example": "30.00", "description": "a student card's guardian cap, yuan" },
                    "wallet": { "type": "string", "example": "W0000000001", "description": "none for a visitor card" },
                    "public_key": key.clone(),
                    "signature": signature.clone(),
                    "not_after_ms": not_after.clone()
                }),
            ),
        );
        put(
            "IssuedDevice",
            json!({ "type": "object", "properties": {
                "device": string(), "operator": string(),
                "wallet": { "type": ["string", "null"], "description": "null for a visitor card" },
                "form": string(),
                "caps": { "type": "object" },
                "certificate": hex("the card's certificate, signed by its operator"),
                "operator_certificate": hex("the operator's certificate, signed by the central bank"),
                "root": string(), "issued_at_s": { "type": "integer" }
            } }),
        );
        put(
            "Device",
            json!({ "type": "object", "properties": {
                "device": string(), "operator": string(),
                "wallet": { "type": ["string", "null"], "description": "null for a visitor card" },
                "caps": { "type": "object" },
                "loaded": string(), "unloaded": string(), "paid": string(), "received": string(),
                "believed_balance": string(), "load_seq": { "type": "integer" },
                "unload_seq": { "type": "integer" },
                "blocked": { "type": ["string", "null"], "description": "why the card is blocked; null while it is not" }
            } }),
        );
        put(
            "LoadDeviceRequest",
            object(
                &["load_seq", "amount", "attestation"],
                json!({
                    "load_seq": { "type": "integer", "minimum": 1 },
                    "amount": { "type": "string", "example": "500.00" },
                    "attestation": hex("the card's attested state the load order names"),
                    "public_key": key,
                    "signature": signature,
                    "not_after_ms": not_after
                }),
            ),
        );
        put(
            "DeviceLoad",
            json!({ "type": "object", "properties": {
                "device": string(), "transfer": string(), "amount": string(),
                "authorization": hex("the operator's signed load order for the card")
            } }),
        );
        put(
            "UnloadDeviceRequest",
            object(
                &["unload"],
                json!({ "unload": hex("the card's signed unload") }),
            ),
        );
        put(
            "DeviceUnload",
            json!({ "type": "object", "properties": { "device": string(), "transfer": string(), "amount": string() } }),
        );
        put(
            "SyncNonce",
            json!({ "type": "object", "properties": { "device": string(), "nonce": hex("the nonce the card attests over") } }),
        );
        put(
            "SyncDeviceRequest",
            object(
                &["sync"],
                json!({ "sync": hex("the card's attested sync over the center's nonce") }),
            ),
        );
        put(
            "DeviceSync",
            json!({ "type": "object", "properties": {
                "device": string(), "settled": { "type": "integer" }, "duplicates": { "type": "integer" },
                "held": { "type": "integer" }, "reversed": { "type": "integer" },
                "blocked": { "type": "integer" }, "clock_ahead": { "type": "integer" },
                "confirmation": {
                    "type": ["string", "null"], "pattern": "^([0-9a-fA-F]{2})+$",
                    "description": "the operator's signed confirmation for the card; null for a blocked card"
                }
            } }),
        );
        put(
            "Revocations",
            json!({ "type": "object", "properties": {
                "version": { "type": "integer" }, "issued_at_s": { "type": "integer" },
                "blocked": { "type": "array", "items": string() },
                "list": hex("the central bank's signed list, as a terminal stores it"),
                "root": string()
            } }),
        );
        all
    }

    pub fn paths() -> Map<String, Value> {
        let bearer = json!([{ "bearer": [] }]);
        let device = path_param("d", "D000000000001");
        let mut all = Map::new();
        let mut put = |path: &str, item: Value| {
            all.insert(path.to_string(), item);
        };
        put(
            "/v1/operators/{op}/devices",
            json!({ "post": {
                "summary": "Issue a hardware wallet (a teller of the operator): its certificate with the caps of its form, bound to a wallet as its holder signed, or a visitor card",
                "security": bearer, "parameters": [path_param("op", "OP1")],
                "requestBody": body("IssueDeviceRequest"),
                "responses": responses(ok("201", "registered and certified", schema_ref("IssuedDevice")), true,
                    &[("409", "DEVICE_EXISTS")]),
            } }),
        );
        put(
            "/v1/devices/{d}",
            json!({ "get": {
                "summary": "A hardware wallet as the center books it (the central bank, its operator's staff, its holder)",
                "security": bearer, "parameters": [device.clone()],
                "responses": responses(ok("200", "the card", schema_ref("Device")), false, &[]),
            } }),
        );
        put(
            "/v1/devices/{d}/loads",
            json!({ "post": {
                "summary": "Load a card: from its wallet as the holder signed, or a visitor card against cash at its operator's counter; answers the operator's order for the card",
                "security": bearer, "parameters": [device.clone()],
                "requestBody": body("LoadDeviceRequest"),
                "responses": responses(ok("201", "booked; the order loads the card", schema_ref("DeviceLoad")), true, &[]),
            } }),
        );
        put(
            "/v1/devices/{d}/unloads",
            json!({ "post": {
                "summary": "Book what the card signed it unloaded: into its wallet, or a visitor card's cash at its operator's counter",
                "security": bearer, "parameters": [device.clone()],
                "requestBody": body("UnloadDeviceRequest"),
                "responses": responses(ok("201", "booked", schema_ref("DeviceUnload")), true, &[]),
            } }),
        );
        put(
            "/v1/devices/{d}/sync-nonce",
            json!({ "post": {
                "summary": "Open a sync: the fresh nonce the card attests its offline records over",
                "security": bearer, "parameters": [device.clone()],
                "responses": responses(ok("200", "the nonce", schema_ref("SyncNonce")), false, &[]),
            } }),
        );
        put(
            "/v1/devices/{d}/syncs",
            json!({ "post": {
                "summary": "Upload the card's attested offline records: the center settles them and the operator confirms them back to the card",
                "security": bearer, "parameters": [device.clone()],
                "requestBody": body("SyncDeviceRequest"),
                "responses": responses(ok("200", "settled", schema_ref("DeviceSync")), true, &[]),
            } }),
        );
        put(
            "/v1/devices/{d}/block",
            json!({ "post": {
                "summary": "Block a lost or stolen card (its operator's teller or administrator); the next revocation list names it",
                "security": bearer, "parameters": [device],
                "responses": responses(ok("200", "the card, blocked", schema_ref("Device")), false, &[]),
            } }),
        );
        put(
            "/v1/revocations",
            json!({ "get": {
                "summary": "The central bank's signed list of blocked cards, for terminals to load",
                "responses": responses(ok("200", "the list", schema_ref("Revocations")), false, &[]),
            } }),
        );
        all
    }
}
