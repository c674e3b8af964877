//! `ecny offline demo`: the seeds' dual-offline stories on a fresh data directory. Two phones in
//! airplane mode pay 66.60 at a snack shop; a SIM wallet pays a phone bill with no signal; a
//! student card pays at the canteen within its guardian's cap; a cloned card is caught at sync,
//! blocked, and refused by the next terminal. Every tap crosses only APDUs between emulated
//! secure elements; the center sees the value only when each side syncs. It ends with the audit.

use std::collections::HashMap;
use std::path::Path;

use crate::amount::Amount;
use crate::audit::audit;
use crate::certs::device::RevocationList;
use crate::certs::KeyPair;
use crate::command::{Command, Outcome};
use crate::demo::DemoError;
use crate::ids::{DeviceId, IdempotencyKey, OperatorId, WalletId};
use crate::node::SystemClock;
use crate::offline::applet::Applet;
use crate::offline::issuer::{OperatorIssuer, SyncError};
use crate::offline::link::{tap_time, BitRate, LinkParams};
use crate::offline::profiles::{Profile, WalletForm};
use crate::offline::protocol::Relay;
use crate::platform::Platform;

const SEED: &str = "offline-demo";

struct Card {
    id: DeviceId,
    applet: Applet,
    operator: OperatorId,
    key: KeyPair,
    load_seq: u32,
}

struct Story<'a> {
    platform: Platform,
    issuers: Vec<OperatorIssuer>,
    out: &'a mut dyn FnMut(&str),
    now_s: u32,
    next_key: u128,
    /// Each wallet's holder key: the holder signs what draws on the wallet's money.
    holders: HashMap<WalletId, KeyPair>,
}

/// An amount as the story writes it, thousands separated for the reader ("1,000,000"); the
/// platform itself takes only digits and a point.
fn yuan(text: &str) -> Amount {
    text.replace(',', "")
        .parse()
        .expect("demo amounts are well formed")
}

fn step(what: &str) -> impl Fn(crate::CommandError) -> DemoError + '_ {
    move |error| DemoError::Step(format!("{what}: refused with {} ({error})", error.code()))
}

impl Story<'_> {
    fn say(&mut self, text: &str) {
        (self.out)(text);
    }

    /// Submits `command` as operator `op`, signed by its holder where the center needs that.
    fn run(&mut self, op: OperatorId, command: Command, what: &str) -> Result<Outcome, DemoError> {
        let holders = &self.holders;
        let command = self
            .platform
            .signed_by_its_holder(command, |wallet| holders.get(&wallet));
        self.platform.one(op, command)?.map_err(step(what))
    }

    /// A holder's wallet with e-CNY in it.
    fn wallet(
        &mut self,
        op: OperatorId,
        phone: u64,
        yuan_amount: &str,
    ) -> Result<WalletId, DemoError> {
        let key = KeyPair::from_seed(format!("{SEED}/holder/{phone}").as_bytes());
        let open = Command::OpenWallet {
            operator: op,
            phone: phone.into(),
            public_key: key.public_key(),
        };
        let Outcome::Wallet(wallet) = self.run(op, open, "open wallet")? else {
            unreachable!("open wallet answers a wallet")
        };
        self.holders.insert(wallet, key.clone());
        let Outcome::Account(bank) = self.run(
            op,
            Command::OpenDepositAccount { operator: op },
            "open account",
        )?
        else {
            unreachable!("open account answers an account")
        };
        self.run(
            op,
            Command::CashDeposit {
                account: bank,
                amount: yuan(yuan_amount),
            },
            "salary",
        )?;
        self.run(
            op,
            Command::BindBankAccount {
                wallet,
                account: bank,
                auth: None,
            },
            "bind",
        )?;
        self.next_key += 1;
        let exchange = Command::Exchange {
            wallet,
            amount: yuan(yuan_amount),
            key: IdempotencyKey(self.next_key),
            auth: None,
        };
        self.run(op, exchange, "exchange")?;
        Ok(wallet)
    }

    fn issue(
        &mut self,
        op: OperatorId,
        profile: Profile,
        id: u64,
        wallet: Option<WalletId>,
    ) -> Result<Card, DemoError> {
        let key = KeyPair::from_seed(format!("{SEED}/device/{id}").as_bytes());
        let issuer = &self.issuers[op.0 as usize - 1];
        let applet = issuer
            .issue(&profile, DeviceId(id), key.clone(), 1_000 + id, self.now_s)
            .map_err(|e| DemoError::Step(format!("issue secure element: {e}")))?;
        let register = Command::RegisterDevice {
            operator: op,
            device: DeviceId(id),
            public_key: key.public_key(),
            wallet,
            caps: profile.caps(),
            auth: None,
        };
        self.run(op, register, "register secure element")?;
        Ok(Card {
            id: DeviceId(id),
            applet,
            operator: op,
            key,
            load_seq: 0,
        })
    }

    /// Online: the center moves the value into the operator's offline float, then the
    /// operator's signed order loads the SE.
    fn load(&mut self, card: &mut Card, amount: &str) -> Result<(), DemoError> {
        card.load_seq += 1;
        let command = Command::LoadDevice {
            device: card.id,
            load_seq: card.load_seq,
            amount: yuan(amount),
            auth: None,
        };
        self.run(card.operator, command, "load")?;
        self.issuers[card.operator.0 as usize - 1]
            .load_card(&mut card.applet, (card.id, card.load_seq, yuan(amount)))
            .map_err(|e| DemoError::Step(format!("load the SE: {e}")))
    }

    /// Offline: a tap between two SEs, with its modeled time at 424 kbit/s.
    fn tap(
        &mut self,
        payer: &mut Card,
        payee: &mut Card,
        amount: &str,
        what: &str,
    ) -> Result<(), DemoError> {
        self.now_s += 60;
        let mut relay = Relay::new();
        relay
            .pay(
                &mut payer.applet,
                &mut payee.applet,
                yuan(amount),
                self.now_s,
            )
            .map_err(|e| DemoError::Step(format!("{what}: {e}")))?;
        let time = tap_time(relay.transcript(), &LinkParams::at(BitRate::Kbps424));
        self.say(&format!("  ✓ {what}, no network on either side"));
        self.say(&format!("    tap at 424 kbit/s: {time}"));
        Ok(())
    }

    fn refused_tap(
        &mut self,
        payer: &mut Card,
        payee: &mut Card,
        amount: &str,
        what: &str,
    ) -> Result<(), DemoError> {
        self.now_s += 60;
        match Relay::new().pay(
            &mut payer.applet,
            &mut payee.applet,
            yuan(amount),
            self.now_s,
        ) {
            Err(error) => {
                self.say(&format!(
                    "  ✗ {what}: refused by the secure element — {error}"
                ));
                Ok(())
            }
            Ok(_) => Err(DemoError::Step(format!("{what}: expected a refusal"))),
        }
    }

    /// Back online: the SE attests what it did over the center's nonce, the center settles it,
    /// the operator confirms it back to the card.
    fn sync(&mut self, card: &mut Card, who: &str) -> Result<(), DemoError> {
        self.now_s += 1;
        let platform = &mut self.platform;
        let operator = card.operator;
        let mut center = |command: Command| {
            platform
                .one(operator, command)
                .map_err(|e| SyncError::Unreachable(e.to_string()))
        };
        let report = self.issuers[operator.0 as usize - 1]
            .sync_card(
                &mut card.applet,
                (card.id, card.key.public_key()),
                &mut center,
            )
            .map_err(|e| DemoError::Step(format!("sync: refused with {} ({e})", e.code())))?;
        self.say(&format!(
            "  ✓ {who} syncs: {} settled, {} already settled by the other side, {} device(s) blocked",
            report.settled, report.duplicates, report.blocked
        ));
        Ok(())
    }
}

pub fn run(dir: &Path, out: &mut dyn FnMut(&str)) -> Result<(), DemoError> {
    let (platform, _) = Platform::open_seeded(dir, SEED, Box::new(SystemClock))?;
    let now_s = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())) as u32;
    let central_bank = crate::platform::seeded_key(SEED, "central-bank");
    let issuers =
        crate::platform::seeded_issuers(SEED, 2, (now_s - 86_400, now_s + 3_650 * 86_400));
    let mut story = Story {
        platform,
        issuers,
        out,
        now_s,
        next_key: 0,
        holders: HashMap::new(),
    };
    story.say(&format!(
        "ecny offline demo on data directory {}",
        dir.display()
    ));
    let (jiangnan, lakeside) = setup(&mut story)?;
    snack_shop_and_phone_bill(&mut story, jiangnan, lakeside)?;
    canteen(&mut story, jiangnan, lakeside)?;
    cloned_card(&mut story, jiangnan, lakeside, &central_bank)?;
    let report = audit(story.platform.state());
    story.say("\nAudit of every invariant, offline float included");
    for line in report.to_string().lines() {
        story.say(&format!("  {line}"));
    }
    if !report.is_clean() {
        return Err(DemoError::Step("audit found broken invariants".into()));
    }
    Ok(())
}

fn setup(story: &mut Story) -> Result<(OperatorId, OperatorId), DemoError> {
    story.say("\n0. Two operators with e-CNY, as in `ecny demo`");
    let jiangnan = story.platform.create_operator("Jiangnan Commercial Bank")?;
    let lakeside = story.platform.create_operator("Lakeside Digital Bank")?;
    for op in [jiangnan, lakeside] {
        let commands = vec![
            Command::FundReserves {
                operator: op,
                amount: yuan("1000000"),
            },
            Command::Issue {
                operator: op,
                amount: yuan("500000"),
            },
        ];
        for result in story.platform.as_central_bank(commands)? {
            result.map_err(step("issue"))?;
        }
    }
    story.say("  ✓ central bank issued ¥500,000.00 to each");
    Ok((jiangnan, lakeside))
}

fn snack_shop_and_phone_bill(
    story: &mut Story,
    jiangnan: OperatorId,
    lakeside: OperatorId,
) -> Result<(), DemoError> {
    story.say("\n1. Two phones in airplane mode: ¥66.60 at a snack shop");
    let li = story.wallet(jiangnan, 13_800_138_000, "2000")?;
    let shop = story.wallet(lakeside, 13_700_006_660, "1")?;
    let mut phone = story.issue(jiangnan, Profile::new(WalletForm::PhoneEse), 1, Some(li))?;
    let mut shop_phone =
        story.issue(lakeside, Profile::new(WalletForm::PhoneEse), 2, Some(shop))?;
    story.load(&mut phone, "500")?;
    story.say("  ✓ Li Lei loads ¥500.00 from his wallet into his phone's secure element (online)");
    story.tap(
        &mut phone,
        &mut shop_phone,
        "66.60",
        "Li Lei's phone pays ¥66.60 to the snack shop's phone",
    )?;
    story.sync(&mut shop_phone, "the snack shop, back online")?;
    story.sync(&mut phone, "Li Lei, back online")?;

    story.say("\n2. A SIM-card wallet tops up a phone bill with no signal");
    let han = story.wallet(lakeside, 13_901_390_000, "300")?;
    let mut sim = story.issue(lakeside, Profile::new(WalletForm::SimCard), 3, Some(han))?;
    let mut telecom = story.issue(jiangnan, Profile::new(WalletForm::VisitorCard), 4, None)?;
    story.load(&mut sim, "100")?;
    story.tap(
        &mut sim,
        &mut telecom,
        "50",
        "Han Meimei's SIM pays ¥50.00 at the telecom counter's terminal",
    )?;
    story.sync(&mut telecom, "the telecom terminal")?;
    Ok(())
}

fn canteen(story: &mut Story, jiangnan: OperatorId, lakeside: OperatorId) -> Result<(), DemoError> {
    story.say("\n3. A student card at the school canteen, within the guardian's daily cap");
    let parent = story.wallet(jiangnan, 13_600_000_001, "500")?;
    let profile = Profile::student_card(yuan("30")).map_err(|e| DemoError::Step(e.to_string()))?;
    let mut student = story.issue(jiangnan, profile, 5, Some(parent))?;
    let mut canteen = story.issue(lakeside, Profile::new(WalletForm::VisitorCard), 6, None)?;
    story.load(&mut student, "100")?;
    story.say("  ✓ a parent loads ¥100.00 onto the card; the guardian's cap is ¥30.00 a day");
    story.tap(&mut student, &mut canteen, "12.50", "lunch, ¥12.50")?;
    story.refused_tap(
        &mut student,
        &mut canteen,
        "20",
        "a ¥20.00 snack the same day",
    )?;
    story.sync(&mut canteen, "the canteen terminal")?;
    Ok(())
}

fn cloned_card(
    story: &mut Story,
    jiangnan: OperatorId,
    lakeside: OperatorId,
    central_bank: &KeyPair,
) -> Result<(), DemoError> {
    story.say("\n4. A cloned card is caught at sync");
    let owner = story.wallet(jiangnan, 13_500_000_009, "500")?;
    let mut card = story.issue(
        jiangnan,
        Profile::new(WalletForm::ContactlessCard),
        7,
        Some(owner),
    )?;
    let mut shop_a = story.issue(lakeside, Profile::new(WalletForm::VisitorCard), 8, None)?;
    let mut shop_b = story.issue(jiangnan, Profile::new(WalletForm::VisitorCard), 9, None)?;
    let mut next_terminal =
        story.issue(lakeside, Profile::new(WalletForm::VisitorCard), 10, None)?;
    story.load(&mut card, "100")?;
    let mut clone = Card {
        id: card.id,
        applet: card.applet.clone_card(),
        operator: card.operator,
        key: card.key.clone(),
        load_seq: card.load_seq,
    };
    story.say("  ! someone copies the card's secure element, ¥100.00 and all");
    story.tap(
        &mut card,
        &mut shop_a,
        "80",
        "the real card pays ¥80.00 at shop A",
    )?;
    story.tap(
        &mut clone,
        &mut shop_b,
        "90",
        "the clone pays ¥90.00 at shop B",
    )?;
    story.sync(&mut shop_a, "shop A")?;
    story.sync(&mut shop_b, "shop B: the same counter signed twice")?;
    let device = story
        .platform
        .state()
        .devices()
        .device(card.id)
        .map_err(step("device"))?
        .clone();
    let why = device.blocked.map_or_else(
        || "not blocked".to_string(),
        |reason| format!("{reason} [{}]", reason.code()),
    );
    story.say(&format!(
        "    card {} blocked: {why}; its issuer covered {} of the double spend from its vault, bounded by the card's caps",
        card.id,
        device.covered.yuan_sign()
    ));
    let blocked: Vec<DeviceId> = story.platform.state().devices().blocked().collect();
    let list = RevocationList::issue(1, story.now_s, blocked, central_bank)
        .map_err(|e| DemoError::Step(e.to_string()))?;
    Relay::new()
        .update_revocation(&mut next_terminal.applet, &list)
        .map_err(|e| DemoError::Step(e.to_string()))?;
    story.say("  ✓ the central bank's revocation list reaches the next terminal when it syncs");
    story.refused_tap(
        &mut clone,
        &mut next_terminal,
        "5",
        "the clone tries again at another shop",
    )?;
    Ok(())
}
