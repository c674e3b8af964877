//! The winners' SMS outbox: every notice a draw produced, with its delivery status, delivered by
//! a webhook (an HTTP POST of JSON) to the SMS gateway the server is configured with
//! (`ecny serve --sms-gateway URL`). A refused or failed delivery is retried with exponential
//! backoff; after `ATTEMPTS_MAX` attempts the notice is marked failed with the last reason.
//!
//! The outbox lives beside the node, not in the log: a notice is a message about the ledger's
//! state (the draw, which is logged), and the draw's winners can always be told again from it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::ids::{CampaignId, WalletId};

/// Deliveries tried per notice before it is marked failed.
pub const ATTEMPTS_MAX: u32 = 8;
/// The first retry waits this long; each next one twice as long, up to `BACKOFF_MAX`.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Senders working the outbox at once, each on its own keep-alive connection to the gateway.
const SENDERS: usize = 4;
/// How long one POST to the gateway may take.
const GATEWAY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its first attempt or for a retry.
    Pending,
    /// The gateway accepted it (a 2xx answer).
    Delivered,
    /// Refused or unreachable `ATTEMPTS_MAX` times.
    Failed,
}

/// One winner's text and what became of it.
#[derive(Clone, Debug)]
pub struct Notice {
    pub campaign: CampaignId,
    /// The packet won, 1 for the first drawn.
    pub packet: u32,
    pub wallet: WalletId,
    /// The mainland mobile number the wallet was opened with, resolved by its operator.
    pub phone: u64,
    pub text: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    next_attempt: Instant,
}

impl Notice {
    pub fn new(
        campaign: CampaignId,
        packet: u32,
        wallet: WalletId,
        phone: u64,
        text: String,
    ) -> Notice {
        Notice {
            campaign,
            packet,
            wallet,
            phone,
            text,
            status: DeliveryStatus::Pending,
            attempts: 0,
            last_error: None,
            next_attempt: Instant::now(),
        }
    }

    /// What the gateway receives: the number, the text, and an id that tells a resend from a
    /// second notice.
    fn webhook_body(&self) -> String {
        serde_json::json!({
            "id": format!("{}-{}", self.campaign, self.packet),
            "to": self.phone.to_string(),
            "text": self.text,
            "campaign": self.campaign.to_string(),
            "packet": self.packet,
            "wallet": self.wallet.to_string(),
        })
        .to_string()
    }
}

/// How many notices of a campaign are in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OutboxCounts {
    pub queued: u64,
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
}

#[derive(Default)]
struct Outbox {
    notices: Vec<Notice>,
    /// Notices not yet taken by a sender (their indexes), soonest due first is not needed: the
    /// queue is worked in order and a retry goes to the back.
    due: std::collections::VecDeque<usize>,
    /// Each campaign's notices, by packet: a campaign is told once.
    by_campaign: HashMap<CampaignId, Vec<usize>>,
}

struct Shared {
    gateway: Option<String>,
    outbox: Mutex<Outbox>,
    wake: Condvar,
    stop: AtomicBool,
}

/// The outbox and its senders; dropping it stops the senders.
pub struct Notifier {
    shared: Arc<Shared>,
    senders: Vec<JoinHandle<()>>,
}

impl Notifier {
    /// An outbox delivering to `gateway` (an `http://` URL); without one, notices wait pending.
    pub fn start(gateway: Option<String>) -> Notifier {
        let shared = Arc::new(Shared {
            gateway,
            outbox: Mutex::new(Outbox::default()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let senders = if shared.gateway.is_some() {
            (0..SENDERS)
                .map(|index| {
                    let shared = shared.clone();
                    std::thread::Builder::new()
                        .name(format!("ecny-sms-{index}"))
                        .spawn(move || send_loop(&shared))
                        .expect("a thread for the SMS outbox")
                })
                .collect()
        } else {
            Vec::new()
        };
        Notifier { shared, senders }
    }

    pub fn gateway(&self) -> Option<&str> {
        self.shared.gateway.as_deref()
    }

    /// Queues a campaign's notices; a campaign already queued is not queued twice. Answers how
    /// many were queued.
    pub fn enqueue(&self, campaign: CampaignId, notices: Vec<Notice>) -> usize {
        let mut outbox = self.shared.outbox.lock().expect("outbox lock");
        if outbox.by_campaign.contains_key(&campaign) {
            return 0;
        }
        let first = outbox.notices.len();
        let count = notices.len();
        outbox.notices.extend(notices);
        let indexes: Vec<usize> = (first..first + count).collect();
        outbox.due.extend(indexes.iter().copied());
        outbox.by_campaign.insert(campaign, indexes);
        drop(outbox);
        self.shared.wake.notify_all();
        count
    }

    /// A campaign's notices for the wallets `visible` admits, and the counts over all of them.
    pub fn campaign(
        &self,
        campaign: CampaignId,
        visible: impl Fn(WalletId) -> bool,
    ) -> (OutboxCounts, Vec<Notice>) {
        let outbox = self.shared.outbox.lock().expect("outbox lock");
        let mut counts = OutboxCounts::default();
        let mut shown = Vec::new();
        for &index in outbox.by_campaign.get(&campaign).into_iter().flatten() {
            let notice = &outbox.notices[index];
            counts.queued += 1;
            match notice.status {
                DeliveryStatus::Pending => counts.pending += 1,
                DeliveryStatus::Delivered => counts.delivered += 1,
                DeliveryStatus::Failed => counts.failed += 1,
            }
            if visible(notice.wallet) {
                shown.push(notice.clone());
            }
        }
        (counts, shown)
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
        for sender in self.senders.drain(..) {
            let _ = sender.join();
        }
    }
}

fn backoff(attempts: u32) -> Duration {
    let doubled = BACKOFF_FIRST.saturating_mul(1 << attempts.saturating_sub(1).min(16));
    doubled.min(BACKOFF_MAX)
}

/// Takes the next due notice, waiting while none is; `None` once stopped.
fn next_due(shared: &Shared) -> Option<(usize, String)> {
    let mut outbox = shared.outbox.lock().expect("outbox lock");
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return None;
        }
        let now = Instant::now();
        let mut wait = Duration::from_secs(1);
        // The queue holds first attempts in order and retries behind them; a retry not yet due
        // goes to the back again.
        for _ in 0..outbox.due.len() {
            let index = outbox.due.pop_front().expect("counted");
            let notice = &outbox.notices[index];
            if notice.next_attempt <= now {
                return Some((index, notice.webhook_body()));
            }
            wait = wait.min(notice.next_attempt - now);
            outbox.due.push_back(index);
        }
        outbox = shared
            .wake
            .wait_timeout(outbox, wait)
            .expect("outbox lock")
            .0;
    }
}

fn send_loop(shared: &Shared) {
    let url = shared.gateway.clone().expect("senders run with a gateway");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(GATEWAY_TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into();
    while let Some((index, body)) = next_due(shared) {
        let answer = agent
            .post(&url)
            .header("content-type", "application/json; charset=utf-8")
            .send(body.as_bytes());
        let error = match answer {
            Ok(response) if response.status().is_success() => None,
            Ok(response) => Some(format!("the gateway answered {}", response.status())),
            Err(error) => Some(format!("the gateway could not be reached: {error}")),
        };
        let mut outbox = shared.outbox.lock().expect("outbox lock");
        let notice = &mut outbox.notices[index];
        notice.attempts += 1;
        match error {
            None => {
                notice.status = DeliveryStatus::Delivered;
                notice.last_error = None;
            }
            Some(error) => {
                tracing::warn!(campaign = %notice.campaign, packet = notice.packet, %error, "SMS not delivered");
                notice.last_error = Some(error);
                if notice.attempts >= ATTEMPTS_MAX {
                    notice.status = DeliveryStatus::Failed;
                } else {
                    notice.next_attempt = Instant::now() + backoff(notice.attempts);
                    outbox.due.push_back(index);
                    drop(outbox);
                    shared.wake.notify_one();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_twice_as_long_each_time_up_to_the_cap() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(4), Duration::from_millis(800));
        assert_eq!(backoff(20), BACKOFF_MAX);
    }

    #[test]
    fn a_campaign_is_queued_once_and_waits_pending_without_a_gateway() {
        let notifier = Notifier::start(None);
        let notices = |count: u32| {
            (1..=count)
                .map(|packet| {
                    Notice::new(
                        CampaignId(1),
                        packet,
                        WalletId(packet),
                        13_800_138_000,
                        "红包".into(),
                    )
                })
                .collect()
        };
        assert_eq!(notifier.enqueue(CampaignId(1), notices(3)), 3);
        assert_eq!(notifier.enqueue(CampaignId(1), notices(3)), 0);
        let (counts, shown) = notifier.campaign(CampaignId(1), |wallet| wallet == WalletId(2));
        assert_eq!(
            counts,
            OutboxCounts {
                queued: 3,
                pending: 3,
                delivered: 0,
                failed: 0
            }
        );
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0].packet, 2);
    }
}
