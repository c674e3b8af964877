//! `ecny bench packets`: red packets through `ecny serve`. Holder-signed registrations per
//! second over loopback HTTP from keep-alive connections; then, for a campaign whose registrants
//! were taken directly by the center, the time from the draw request to the last winner's SMS
//! received by a local gateway (the outbox's webhook), with every notice in Chinese.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::amount::Amount;
use crate::audit::audit;
use crate::certs::KeyPair;
use crate::command::{Command, Outcome};
use crate::ids::{CampaignId, OperatorId, WalletId};
use crate::platform::{Platform, PlatformError};
use crate::programs::campaign::{CampaignTerms, Eligibility, RegionCode, Sponsor, Window};
use crate::programs::lottery::Seed;
use crate::server::{Server, ServerConfig, ServerError};
use crate::signing::{SigningContext, SIGNATURE_WINDOW_MS_CLIENT};

use super::{populate, BENCH_BATCH_COMMANDS};
use crate::progress::progress;

pub struct PacketsBenchConfig {
    /// Registrations sent over HTTP, each by its own wallet.
    pub registrations: usize,
    /// Packets drawn (and winners told) in the second campaign.
    pub winners: u32,
    pub connections: usize,
}

pub struct PacketsBenchReport {
    pub registrations: usize,
    pub registration_elapsed: Duration,
    pub winners: u32,
    /// From the draw request to the last winner's SMS at the gateway.
    pub notify_elapsed: Duration,
}

impl PacketsBenchReport {
    pub fn registrations_per_second(&self) -> f64 {
        self.registrations as f64 / self.registration_elapsed.as_secs_f64()
    }
}

#[derive(Debug, Error)]
pub enum PacketsBenchError {
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error("{0}")]
    Http(String),
    #[error("the audit after the run is not clean:\n{0}")]
    Audit(String),
}

fn http(error: impl std::fmt::Display) -> PacketsBenchError {
    PacketsBenchError::Http(error.to_string())
}

fn terms(
    id: CampaignId,
    sponsor: WalletId,
    packets: u32,
    window: Window,
    seed: &Seed,
) -> CampaignTerms {
    let value = Amount::from_fen(1);
    CampaignTerms {
        id,
        name: "Bench red packets".into(),
        sponsor: Sponsor {
            name: "苏州市人民政府".into(),
            wallet: sponsor,
        },
        budget: Amount::from_fen(i64::from(packets)),
        packet_count: packets,
        packet_value: value,
        region: RegionCode::new(320_500).expect("Suzhou is a region"),
        eligibility: Eligibility::default(),
        registration: window,
        validity: Window {
            opens_at_ms: window.closes_at_ms,
            closes_at_ms: window.closes_at_ms + 3_600_000,
        },
        offline_trial: false,
        seed_commitment: seed.commitment(),
    }
}

/// A gateway on a loopback port that counts the messages it accepts.
fn gateway(received: Arc<AtomicUsize>) -> std::net::SocketAddr {
    let (ready, addr) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the bench's SMS gateway");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a loopback port");
            let _ = ready.send(listener.local_addr().expect("bound"));
            let app = axum::Router::new().route(
                "/sms",
                axum::routing::post(move |body: String| {
                    let received = received.clone();
                    async move {
                        if body.contains("抽中") {
                            received.fetch_add(1, Ordering::SeqCst);
                        }
                        axum::http::StatusCode::OK
                    }
                }),
            );
            let _ = axum::serve(listener, app).await;
        });
    });
    addr.recv().expect("the gateway starts")
}

pub fn packets(
    dir: &std::path::Path,
    config: &PacketsBenchConfig,
) -> Result<PacketsBenchReport, PacketsBenchError> {
    let wallets = 1 + config.registrations.max(config.winners as usize);
    let (mut platform, _) = Platform::open(dir)?;
    let bar = progress(wallets as u64, "deriving holder keys");
    let holders: Vec<KeyPair> = (0..wallets)
        .map(|i| {
            bar.inc(1);
            KeyPair::from_seed(format!("bench-packets/holder/{i}").as_bytes())
        })
        .collect();
    bar.finish_and_clear();
    let opened = populate(&mut platform, &holders)?;
    // Each wallet's own key, as the center holds it (wallets open in their own order).
    let by_key: std::collections::HashMap<_, &KeyPair> =
        holders.iter().map(|key| (key.public_key(), key)).collect();
    let keys: Vec<&KeyPair> = opened
        .iter()
        .map(|&(wallet, _)| {
            let key = platform
                .state()
                .wallet_key(wallet)
                .map_err(PlatformError::Refused)?;
            Ok(by_key[key])
        })
        .collect::<Result<_, PlatformError>>()?;
    let sponsor = opened[0];
    let now = crate::server::gateway::now_ms();
    // Campaign 1 takes the HTTP registrations (open an hour); campaign 2 is drawn.
    let over_http = Seed::from_bytes([1; 32]);
    let drawn_seed = Seed::from_bytes([2; 32]);
    let long = Window {
        opens_at_ms: now,
        closes_at_ms: now + 3_600_000,
    };
    // The direct registrations take a few seconds; the window closes soon after.
    let short = Window {
        opens_at_ms: now,
        closes_at_ms: now + 10_000 + wallets as u64 / 10,
    };
    for (id, window, seed, packets) in [
        (CampaignId(1), long, &over_http, 1),
        (CampaignId(2), short, &drawn_seed, config.winners),
    ] {
        let terms = terms(id, sponsor.0, packets, window, seed);
        let create = Command::CreateCampaign { terms };
        match platform.one(sponsor.1, create)? {
            Ok(Outcome::Campaign(_)) => {}
            other => return Err(http(format!("campaign {id} refused: {other:?}"))),
        }
    }
    let fund = platform.sign_as_holder(
        Command::FundCampaign {
            campaign: CampaignId(2),
            auth: None,
        },
        keys[0],
        sponsor.1,
    );
    platform
        .one(sponsor.1, fund)?
        .map_err(PlatformError::Refused)?;
    for op in [OperatorId(1), OperatorId(2)] {
        let registrations: Vec<Command> = opened[1..]
            .iter()
            .filter(|(_, owner)| *owner == op)
            .map(|&(wallet, _)| Command::RegisterForCampaign {
                campaign: CampaignId(2),
                wallet,
                offline_trial: false,
            })
            .collect();
        for chunk in registrations.chunks(BENCH_BATCH_COMMANDS) {
            for result in platform.as_operator(op, chunk.to_vec())? {
                result.map_err(PlatformError::Refused)?;
            }
        }
    }
    let deployment = platform.state().deployment();
    drop(platform);

    let received = Arc::new(AtomicUsize::new(0));
    let sms = gateway(received.clone());
    let server = Server::start(&ServerConfig {
        data: dir.to_path_buf(),
        listen: "127.0.0.1:0".into(),
        sms_gateway: Some(format!("http://{sms}/sms")),
        ..ServerConfig::default()
    })?;
    let base = format!("http://{}", server.addr());
    let not_after_ms = crate::server::gateway::now_ms() + SIGNATURE_WINDOW_MS_CLIENT;
    let bar = progress(config.registrations as u64, "signing registrations");
    let bodies: Vec<String> = opened[1..=config.registrations]
        .iter()
        .zip(&keys[1..])
        .map(|(&(wallet, op), key)| {
            bar.inc(1);
            let command = Command::RegisterForCampaign {
                campaign: CampaignId(1),
                wallet,
                offline_trial: false,
            };
            let context = SigningContext {
                deployment,
                operator: op,
            };
            let signature = key.sign(&command.signing_bytes(&context, not_after_ms));
            serde_json::json!({
                "wallet": wallet.to_string(),
                "public_key": key.public_key().to_hex(),
                "signature": signature.to_hex(),
                "not_after_ms": not_after_ms,
            })
            .to_string()
        })
        .collect();
    bar.finish_and_clear();
    let url = format!("{base}/v1/campaigns/RP000001/registrations");
    let started = Instant::now();
    let chunk = bodies.len().div_ceil(config.connections.max(1)).max(1);
    std::thread::scope(|scope| -> Result<(), PacketsBenchError> {
        let workers: Vec<_> = bodies
            .chunks(chunk)
            .map(|bodies| {
                let url = url.clone();
                scope.spawn(move || -> Result<(), PacketsBenchError> {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .build()
                        .into();
                    for body in bodies {
                        let response = agent
                            .post(&url)
                            .header("content-type", "application/json")
                            .send(body.as_bytes())
                            .map_err(http)?;
                        if response.status() != 201 {
                            return Err(http(format!(
                                "a registration was answered {}",
                                response.status()
                            )));
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("a registration thread")?;
        }
        Ok(())
    })?;
    let registration_elapsed = started.elapsed();

    // Wait for campaign 2's registration to close, then draw and time the notices.
    while crate::server::gateway::now_ms() < short.closes_at_ms {
        std::thread::sleep(Duration::from_millis(50));
    }
    let token = std::fs::read_to_string(dir.join("keys").join(format!("{}.token", sponsor.1)))
        .map_err(http)?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let started = Instant::now();
    let response = agent
        .post(&format!("{base}/v1/campaigns/RP000002/draw"))
        .header("authorization", &format!("Bearer {}", token.trim()))
        .header("content-type", "application/json")
        .send(
            serde_json::json!({ "seed": drawn_seed.to_hex() })
                .to_string()
                .as_bytes(),
        )
        .map_err(http)?;
    if response.status() != 201 {
        return Err(http(format!("the draw was answered {}", response.status())));
    }
    let bar = progress(u64::from(config.winners), "winners told");
    while received.load(Ordering::SeqCst) < config.winners as usize {
        bar.set_position(received.load(Ordering::SeqCst) as u64);
        std::thread::sleep(Duration::from_millis(5));
    }
    let notify_elapsed = started.elapsed();
    bar.finish_and_clear();
    server.stop()?;

    let (platform, _) = Platform::open(dir)?;
    let report = audit(platform.state());
    if !report.is_clean() {
        return Err(PacketsBenchError::Audit(report.to_string()));
    }
    Ok(PacketsBenchReport {
        registrations: config.registrations,
        registration_elapsed,
        winners: config.winners,
        notify_elapsed,
    })
}
