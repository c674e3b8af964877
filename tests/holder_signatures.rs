//! Who may move whose money: the registration center itself books a holder's money only on the
//! holder's signature, whatever an operator (or an insider at one) submits; the commands that
//! stay on an operator's word are each bounded by something the holder signed or agreed to.
//!
//! A rogue operator is played here as it would act: a batch it signs with its own key and hands
//! straight to the center, past its own desk.

mod support;

use ecny::amount::Amount;
use ecny::certs::KeyPair;
use ecny::channels::acquiring::{PaymentChannel, TerminalKind};
use ecny::channels::emvco::Mcc;
use ecny::channels::payment_code::CODE_STEP_S;
use ecny::command::{Command, CommandResult, HolderAuth, Origin, Outcome, Submission};
use ecny::error::CommandError;
use ecny::ids::{ContractId, DeviceId, EventId, MerchantId, SubWalletId, WalletId};
use ecny::offline::profiles::WalletForm;
use ecny::platform::seeded_key;
use ecny::programs::contracts::Template;
use ecny::wallet::sub_wallet::SubWalletLimits;
use ecny::wallet::WalletClass;
use support::{yuan, Holder, World};

const DAY_MS: u64 = 24 * 3_600_000;

/// A holder with money, a payee, a shop with a scan gun, and what the holder signed for: a
/// prepaid contract and a sub-wallet pushed to the shop.
struct Scene {
    world: World,
    li: Holder,
    han: Holder,
    shop: MerchantId,
    scan_gun: u16,
    shop_owner: Holder,
    contract: ContractId,
    sub_wallet: SubWalletId,
}

impl Scene {
    fn new() -> Scene {
        let mut world = World::new();
        let jiangnan = world.operators[0];
        let li = world.open_banked(jiangnan, "20000", WalletClass::Two);
        world.exchange(&li, "10000").unwrap();
        let han = world.open(jiangnan);
        let shop_owner = world.open_banked(jiangnan, "1", WalletClass::Two);
        let onboard = Command::OnboardMerchant {
            operator: jiangnan,
            wallet: shop_owner.wallet,
            name: "Pingjiang Snacks".into(),
            mcc: Mcc::new(5814).unwrap(),
            region: 320_508,
        };
        let Ok(Outcome::Merchant(shop)) = world.run(jiangnan, onboard) else {
            panic!("onboarding refused")
        };
        let terminal = Command::AddTerminal {
            merchant: shop,
            kind: TerminalKind::ScanGun,
        };
        let Ok(Outcome::Terminal(scan_gun)) = world.run(jiangnan, terminal) else {
            panic!("terminal refused")
        };
        let key = world.key();
        let prepaid = Command::OpenContract {
            payer: li.wallet,
            payee: han.wallet,
            template: Template::Prepaid {
                units: 10,
                unit_price: yuan("100"),
            },
            purpose: "ten lessons".into(),
            key,
            auth: None,
        };
        let Ok(Outcome::Contract(contract)) = signed_run(&mut world, &li, prepaid) else {
            panic!("contract refused")
        };
        let push = Command::OpenSubWallet {
            wallet: li.wallet,
            merchant: shop,
            limits: SubWalletLimits {
                per_payment: yuan("100"),
                daily: yuan("150"),
            },
            auth: None,
        };
        let Ok(Outcome::SubWallet(sub_wallet)) = signed_run(&mut world, &li, push) else {
            panic!("sub-wallet refused")
        };
        Scene {
            world,
            li,
            han,
            shop,
            scan_gun,
            shop_owner,
            contract,
            sub_wallet,
        }
    }

    /// One batch signed by `li`'s operator's own key and handed to the center, past its desk.
    fn as_rogue_operator(
        &mut self,
        commands: &[Command],
    ) -> Result<Vec<CommandResult>, CommandError> {
        let op = self.li.operator;
        let key = seeded_key("test", &op.to_string());
        let submission = Submission::new(Origin::Operator(op), commands, &key);
        self.world
            .platform
            .node_mut()
            .submit(vec![submission])
            .unwrap()
            .remove(0)
    }

    fn signed_by(&mut self, key: &KeyPair, command: Command) -> Command {
        self.world
            .platform
            .sign_as_holder(command, key, self.li.operator)
    }
}

/// Through the operator's desk, as the holder would send it.
fn signed_run(world: &mut World, holder: &Holder, command: Command) -> CommandResult {
    let command = world
        .platform
        .sign_as_holder(command, &holder.key, holder.operator);
    world.run(holder.operator, command)
}

fn transfer(result: CommandResult) -> EventId {
    match result {
        Ok(Outcome::Transfer(id)) => id,
        other => panic!("expected a transfer, got {other:?}"),
    }
}

#[test]
fn a_rogue_operators_unsigned_commands_move_no_holders_money() {
    let mut scene = Scene::new();
    let (li, han) = (scene.li.wallet, scene.han.wallet);
    let w = &mut scene.world;
    let mut key = || w.key();
    let unsigned = vec![
        Command::Pay {
            payer: li,
            payee: han,
            amount: yuan("5000"),
            key: key(),
            auth: None,
        },
        Command::Hold {
            payer: li,
            payee: han,
            amount: yuan("5000"),
            timeout_ms: DAY_MS,
            key: key(),
            auth: None,
        },
        Command::PayMerchant {
            payer: li,
            merchant: scene.shop,
            amount: yuan("5000"),
            channel: PaymentChannel::StaticQr,
            terminal: 0,
            order: None,
            key: key(),
            auth: None,
        },
        Command::DepositBack {
            wallet: li,
            amount: yuan("5000"),
            key: key(),
            auth: None,
        },
        Command::Exchange {
            wallet: li,
            amount: yuan("5000"),
            key: key(),
            auth: None,
        },
        Command::OpenContract {
            payer: li,
            payee: han,
            template: Template::Escrow {
                amount: yuan("5000"),
                deadline_ms: support::START_MS + DAY_MS,
            },
            purpose: "a used car".into(),
            key: key(),
            auth: None,
        },
        Command::ConfirmContract {
            contract: scene.contract,
            units: 10,
            key: key(),
            auth: None,
        },
        Command::OpenSubWallet {
            wallet: li,
            merchant: scene.shop,
            limits: SubWalletLimits {
                per_payment: yuan("5000"),
                daily: yuan("5000"),
            },
            auth: None,
        },
        Command::SetSubWallet {
            sub_wallet: scene.sub_wallet,
            limits: SubWalletLimits {
                per_payment: yuan("5000"),
                daily: yuan("5000"),
            },
            open: true,
            auth: None,
        },
        Command::CancelContract {
            contract: scene.contract,
            by_payee: false,
            auth: None,
        },
        // The payee's side of a contract is its own to give up, too.
        Command::CancelContract {
            contract: scene.contract,
            by_payee: true,
            auth: None,
        },
    ];
    let before = scene.world.hash();
    let results = scene.as_rogue_operator(&unsigned).unwrap();
    for (command, result) in unsigned.iter().zip(&results) {
        let wallet = match command {
            Command::CancelContract { by_payee: true, .. } => han,
            _ => li,
        };
        assert_eq!(
            *result,
            Err(CommandError::SignatureRequired { wallet }),
            "{command:?}"
        );
        assert_eq!(result.as_ref().unwrap_err().code(), "SIGNATURE_REQUIRED");
    }
    assert_eq!(
        scene.world.hash(),
        before,
        "an unsigned command changed the state"
    );
    assert_eq!(scene.world.balance(li), yuan("9000"));
    scene.world.assert_audit();

    // Signed by the holder, the same kind of command goes through.
    let key = scene.world.key();
    let pay = Command::Pay {
        payer: li,
        payee: han,
        amount: yuan("50"),
        key,
        auth: None,
    };
    let li_key = scene.li.key.clone();
    let pay = scene.signed_by(&li_key, pay);
    transfer(scene.as_rogue_operator(&[pay]).unwrap().remove(0));
    assert_eq!(scene.world.balance(han), yuan("50"));
    scene.world.assert_audit();
}

#[test]
fn a_signature_by_a_key_that_is_not_the_wallets_is_refused() {
    let mut scene = Scene::new();
    let (li, han) = (scene.li.wallet, scene.han.wallet);
    let before = scene.world.hash();
    // Han signs, correctly, a payment out of Li's wallet: his key is not Li's.
    let key = scene.world.key();
    let pay = Command::Pay {
        payer: li,
        payee: han,
        amount: yuan("5000"),
        key,
        auth: None,
    };
    let han_key = scene.han.key.clone();
    let pay = scene.signed_by(&han_key, pay);
    pay.verify_auth().unwrap();
    let refused = scene.as_rogue_operator(std::slice::from_ref(&pay)).unwrap();
    assert_eq!(refused, vec![Err(CommandError::SignatureInvalid)]);
    // Through the operator's desk it is refused the same way.
    let op = scene.li.operator;
    assert_eq!(
        scene.world.run(op, pay).unwrap_err().code(),
        "SIGNATURE_INVALID"
    );
    // An operator's own key is no holder's either.
    let key = scene.world.key();
    let deposit_back = Command::DepositBack {
        wallet: li,
        amount: yuan("5000"),
        key,
        auth: None,
    };
    let operator_key = seeded_key("test", &op.to_string());
    let deposit_back = scene.signed_by(&operator_key, deposit_back);
    assert_eq!(
        scene.as_rogue_operator(&[deposit_back]).unwrap(),
        vec![Err(CommandError::SignatureInvalid)]
    );
    assert_eq!(scene.world.hash(), before);
    scene.world.assert_audit();
}

#[test]
fn a_forged_signature_gets_the_operators_whole_batch_refused_at_the_centers_door() {
    let mut scene = Scene::new();
    let (li, han) = (scene.li.wallet, scene.han.wallet);
    let before = scene.world.hash();
    let applied = scene.world.platform.state().entries_applied();
    let (context, not_after_ms) = scene.world.signing(&scene.li);
    let key = scene.world.key();
    // The wallet's registered key, this deployment, an open window: everything but a signature
    // the holder made.
    let forged = Command::Pay {
        payer: li,
        payee: han,
        amount: yuan("5000"),
        key,
        auth: None,
    }
    .with_auth(HolderAuth {
        public_key: scene.li.key.public_key(),
        signature: scene.han.key.sign(b"anything at all"),
        context,
        not_after_ms,
    });
    // Li's own signature on another amount does not carry over either.
    let key = scene.world.key();
    let li_key = scene.li.key.clone();
    let small = scene.signed_by(
        &li_key,
        Command::Pay {
            payer: li,
            payee: han,
            amount: yuan("1"),
            key,
            auth: None,
        },
    );
    let Command::Pay { auth, .. } = small.clone() else {
        unreachable!()
    };
    let raised = Command::Pay {
        payer: li,
        payee: han,
        amount: yuan("5000"),
        key,
        auth,
    };
    for bad in [forged, raised] {
        // An honest command in the same batch goes down with it: nothing of it is logged.
        let refused = scene.as_rogue_operator(&[small.clone(), bad]);
        assert_eq!(refused, Err(CommandError::SignatureInvalid));
        assert_eq!(refused.unwrap_err().code(), "SIGNATURE_INVALID");
    }
    assert_eq!(scene.world.hash(), before);
    assert_eq!(scene.world.platform.state().entries_applied(), applied);
    scene.world.assert_audit();
}

#[test]
fn a_payment_code_charge_on_the_operators_word_takes_at_most_the_cap_once_a_step() {
    let mut scene = Scene::new();
    let li = scene.li.wallet;
    let now_ms = scene.world.platform.node_mut().now_ms();
    let step = now_ms / 1000 / CODE_STEP_S;
    let charge = |scene: &mut Scene, amount: &str, code_step: u64| {
        let key = scene.world.key();
        let command = Command::ChargePaymentCode {
            payer: li,
            merchant: scene.shop,
            terminal: scene.scan_gun,
            amount: yuan(amount),
            code_step,
            key,
        };
        scene.as_rogue_operator(&[command]).unwrap().remove(0)
    };
    let cap = scene
        .world
        .platform
        .state()
        .operator(scene.li.operator)
        .unwrap()
        .code_payment_cap;
    let over = Amount::from_fen(cap.fen() + 1).to_string();
    let before = scene.world.hash();
    assert_eq!(
        charge(&mut scene, &over, step).unwrap_err().code(),
        "LIMIT_PASSWORD_FREE"
    );
    assert_eq!(scene.world.hash(), before);
    transfer(charge(&mut scene, &cap.to_string(), step));
    let after_one = scene.world.hash();
    for code_step in [step, step - 1] {
        assert_eq!(
            charge(&mut scene, "1", code_step).unwrap_err().code(),
            "CODE_REUSED"
        );
    }
    assert_eq!(scene.world.hash(), after_one);
    assert_eq!(
        scene.world.balance(li),
        Amount::from_fen(yuan("9000").fen() - cap.fen())
    );
    scene.world.assert_audit();
}

#[test]
fn a_merchant_charges_a_sub_wallet_only_within_the_limits_its_holder_signed() {
    let mut scene = Scene::new();
    let (li, sub_wallet, shop) = (scene.li.wallet, scene.sub_wallet, scene.shop);
    let charge = |scene: &mut Scene, merchant: MerchantId, amount: &str| {
        let key = scene.world.key();
        let command = Command::ChargeSubWallet {
            sub_wallet,
            merchant,
            amount: yuan(amount),
            order: None,
            key,
        };
        scene.as_rogue_operator(&[command]).unwrap().remove(0)
    };
    let before = scene.world.hash();
    assert_eq!(
        charge(&mut scene, shop, "100.01").unwrap_err().code(),
        "SUB_WALLET_LIMIT_SINGLE"
    );
    assert_eq!(
        charge(&mut scene, MerchantId(shop.0 + 1), "1")
            .unwrap_err()
            .code(),
        "UNKNOWN_MERCHANT"
    );
    assert_eq!(scene.world.hash(), before);
    transfer(charge(&mut scene, shop, "100"));
    assert_eq!(
        charge(&mut scene, shop, "50.01").unwrap_err().code(),
        "SUB_WALLET_LIMIT_DAILY"
    );
    transfer(charge(&mut scene, shop, "50"));
    assert_eq!(scene.world.balance(li), yuan("8850"));
    // Closed by its holder's signature, it takes nothing more.
    let close = Command::SetSubWallet {
        sub_wallet,
        limits: SubWalletLimits {
            per_payment: yuan("100"),
            daily: yuan("150"),
        },
        open: false,
        auth: None,
    };
    let li_key = scene.li.key.clone();
    let close = scene.signed_by(&li_key, close);
    scene
        .as_rogue_operator(&[close])
        .unwrap()
        .remove(0)
        .unwrap();
    scene.world.advance_ms(DAY_MS);
    assert_eq!(
        charge(&mut scene, shop, "1").unwrap_err().code(),
        "SUB_WALLET_CLOSED"
    );
    assert_eq!(scene.world.balance(li), yuan("8850"));
    scene.world.assert_audit();
}

#[test]
fn scheduled_contract_runs_pay_what_the_payer_signed_and_no_more() {
    let mut world = World::new();
    let jiangnan = world.operators[0];
    let li = world.open_banked(jiangnan, "5000", WalletClass::Two);
    world.exchange(&li, "1000").unwrap();
    let han = world.open(jiangnan);
    let key = world.key();
    let now_ms = world.platform.node_mut().now_ms();
    let wages = Command::OpenContract {
        payer: li.wallet,
        payee: han.wallet,
        template: Template::Recurring {
            amount: yuan("100"),
            first_ms: now_ms + DAY_MS,
            every_ms: DAY_MS,
            count: 3,
        },
        purpose: "rent".into(),
        key,
        auth: None,
    };
    signed_run(&mut world, &li, wages).unwrap();
    // Ten days of entries: the schedule runs at its times, three times, and stops.
    for _ in 0..10 {
        world.advance_ms(DAY_MS);
        world
            .run(jiangnan, Command::OpenDepositAccount { operator: jiangnan })
            .unwrap();
    }
    assert_eq!(world.balance(han.wallet), yuan("300"));
    assert_eq!(world.balance(li.wallet), yuan("700"));
    world.assert_audit();
}

#[test]
fn a_refund_goes_only_to_the_payer_and_never_beyond_the_payment() {
    let mut scene = Scene::new();
    let (li, shop) = (scene.li.wallet, scene.shop);
    let key = scene.world.key();
    let pay = Command::PayMerchant {
        payer: li,
        merchant: shop,
        amount: yuan("80"),
        channel: PaymentChannel::StaticQr,
        terminal: 0,
        order: None,
        key,
        auth: None,
    };
    let li_key = scene.li.key.clone();
    let pay = scene.signed_by(&li_key, pay);
    let payment = transfer(scene.as_rogue_operator(&[pay]).unwrap().remove(0));
    let owner = scene.shop_owner.wallet;
    let before = (scene.world.balance(li), scene.world.balance(owner));
    let refund = |scene: &mut Scene, amount: &str| {
        let key = scene.world.key();
        let command = Command::Refund {
            payment,
            amount: yuan(amount),
            key,
        };
        scene.as_rogue_operator(&[command]).unwrap().remove(0)
    };
    assert_eq!(
        refund(&mut scene, "80.01").unwrap_err().code(),
        "REFUND_EXCEEDS_PAYMENT"
    );
    transfer(refund(&mut scene, "30"));
    transfer(refund(&mut scene, "50"));
    assert_eq!(
        refund(&mut scene, "0.01").unwrap_err().code(),
        "REFUND_EXCEEDS_PAYMENT"
    );
    // What left the merchant's wallet went to the payer's, and only there.
    assert_eq!(
        scene.world.balance(li),
        before.0.checked_add(yuan("80")).unwrap()
    );
    assert_eq!(
        scene.world.balance(owner),
        before.1.checked_sub(yuan("80")).unwrap()
    );
    scene.world.assert_audit();
}

#[test]
fn closing_a_wallet_on_the_operators_word_returns_its_balance_to_its_own_bank_account() {
    let mut scene = Scene::new();
    let han = scene.han.wallet;
    let key = scene.world.key();
    let gift = Command::Pay {
        payer: scene.li.wallet,
        payee: han,
        amount: yuan("40"),
        key,
        auth: None,
    };
    let li_key = scene.li.key.clone();
    let gift = scene.signed_by(&li_key, gift);
    transfer(scene.as_rogue_operator(&[gift]).unwrap().remove(0));
    // Han has no bank account: there is nowhere his balance may go, so his wallet stays open.
    let close = Command::CloseWallet { wallet: han };
    let before = scene.world.hash();
    assert_eq!(
        scene
            .as_rogue_operator(std::slice::from_ref(&close))
            .unwrap()[0]
            .as_ref()
            .unwrap_err()
            .code(),
        "NO_BOUND_BANK_ACCOUNT"
    );
    assert_eq!(scene.world.hash(), before);
    // Li's closes into the account bound to it, and nowhere else.
    let li = scene.li.wallet;
    let bank = scene.li.bank.unwrap();
    let deposits = scene
        .world
        .platform
        .state()
        .ledger()
        .account(bank)
        .unwrap()
        .balance;
    let balance = scene.world.balance(li);
    scene
        .as_rogue_operator(&[Command::CloseWallet { wallet: li }])
        .unwrap()
        .remove(0)
        .unwrap();
    let state = scene.world.platform.state();
    assert_eq!(
        state.ledger().account(bank).unwrap().balance,
        deposits.checked_add(balance).unwrap()
    );
    assert_eq!(scene.world.balance(li), Amount::ZERO);
    scene.world.assert_audit();
}

#[test]
fn a_hold_is_posted_only_as_its_payer_signed_it() {
    let mut scene = Scene::new();
    let (li, han) = (scene.li.wallet, scene.han.wallet);
    let key = scene.world.key();
    let hold = Command::Hold {
        payer: li,
        payee: han,
        amount: yuan("70"),
        timeout_ms: DAY_MS,
        key,
        auth: None,
    };
    let li_key = scene.li.key.clone();
    let hold = scene.signed_by(&li_key, hold);
    let held = transfer(scene.as_rogue_operator(&[hold]).unwrap().remove(0));
    let post = Command::ResolveHold {
        hold: held,
        post: true,
    };
    transfer(
        scene
            .as_rogue_operator(std::slice::from_ref(&post))
            .unwrap()
            .remove(0),
    );
    assert_eq!(scene.world.balance(han), yuan("70"));
    // Posting again moves nothing more.
    let before = scene.world.hash();
    assert!(scene.as_rogue_operator(&[post]).unwrap()[0].is_err());
    assert_eq!(scene.world.hash(), before);
    assert_eq!(scene.world.balance(li), yuan("8930"));
    scene.world.assert_audit();
}

#[test]
fn a_rogue_operator_cannot_steer_a_holders_money_through_a_bank_binding_or_a_card() {
    let mut scene = Scene::new();
    let li = scene.li.wallet;
    let jiangnan = scene.li.operator;
    let li_key = scene.li.key.clone();
    // An account of the operator's choosing, and a card whose key the operator holds.
    let open = Command::OpenDepositAccount { operator: jiangnan };
    let Ok(Outcome::Account(own)) = scene.world.run(jiangnan, open) else {
        panic!("account refused")
    };
    let card = DeviceId(77);
    let card_key = KeyPair::from_seed(b"rogue/card");
    let steer = vec![
        // Li's deposits back and the balance of a closed wallet would follow the binding.
        Command::BindBankAccount {
            wallet: li,
            account: own,
            auth: None,
        },
        // A card bound to Li's wallet could be loaded from it and spent offline.
        Command::RegisterDevice {
            operator: jiangnan,
            device: card,
            public_key: card_key.public_key(),
            wallet: Some(li),
            caps: WalletForm::PhoneEse.default_caps(),
            auth: None,
        },
    ];
    let before = scene.world.hash();
    for result in scene.as_rogue_operator(&steer).unwrap() {
        assert_eq!(result, Err(CommandError::SignatureRequired { wallet: li }));
    }
    // Signed, but by a key that is not the wallet's: a staff member's phone, say.
    let mallory = KeyPair::from_seed(b"mallory");
    let forged: Vec<Command> = steer
        .iter()
        .map(|command| scene.signed_by(&mallory, command.clone()))
        .collect();
    for result in scene.as_rogue_operator(&forged).unwrap() {
        assert_eq!(result, Err(CommandError::SignatureInvalid));
    }
    assert_eq!(
        scene.world.hash(),
        before,
        "a refused step changed the state"
    );
    let state = scene.world.platform.state();
    assert_eq!(state.wallet(li).unwrap().bank_account(), scene.li.bank);
    assert!(state.devices().device(card).is_err());

    // Li registers the card to the wallet herself; each load from the wallet is hers to sign too.
    let register = scene.signed_by(&li_key, steer[1].clone());
    scene.as_rogue_operator(&[register]).unwrap()[0]
        .as_ref()
        .unwrap();
    let load_of = |amount: &str, auth: Option<HolderAuth>| Command::LoadDevice {
        device: card,
        load_seq: 1,
        amount: yuan(amount),
        auth,
    };
    let load = load_of("500", None);
    let before = scene.world.hash();
    assert_eq!(
        scene
            .as_rogue_operator(std::slice::from_ref(&load))
            .unwrap()[0],
        Err(CommandError::SignatureRequired { wallet: li })
    );
    // Her signature on a 5 yuan load does not carry over to 500.
    let small = scene.signed_by(&li_key, load_of("5", None));
    let raised = load_of("500", small.auth().copied());
    assert_eq!(
        scene.as_rogue_operator(&[raised]),
        Err(CommandError::SignatureInvalid)
    );
    assert_eq!(scene.world.hash(), before);
    assert_eq!(scene.world.balance(li), yuan("9000"));
    // Signed for 500 by Li, it loads 500 out of her wallet, once.
    let signed = scene.signed_by(&li_key, load);
    let first = transfer(
        scene
            .as_rogue_operator(std::slice::from_ref(&signed))
            .unwrap()
            .remove(0),
    );
    assert_eq!(
        transfer(scene.as_rogue_operator(&[signed]).unwrap().remove(0)),
        first
    );
    assert_eq!(scene.world.balance(li), yuan("8500"));

    // A visitor card holds only cash taken at the counter: no wallet, so no holder signs.
    let visitor = Command::RegisterDevice {
        operator: jiangnan,
        device: DeviceId(78),
        public_key: KeyPair::from_seed(b"visitor/card").public_key(),
        wallet: None,
        caps: WalletForm::PhoneEse.default_caps(),
        auth: None,
    };
    let vault_load = Command::LoadDevice {
        device: DeviceId(78),
        load_seq: 1,
        amount: yuan("200"),
        auth: None,
    };
    for result in scene.as_rogue_operator(&[visitor, vault_load]).unwrap() {
        result.unwrap();
    }

    // Li moves her binding to another account of hers: signed, it goes through.
    let rebind = scene.signed_by(
        &li_key,
        Command::BindBankAccount {
            wallet: li,
            account: own,
            auth: None,
        },
    );
    scene.as_rogue_operator(&[rebind]).unwrap()[0]
        .as_ref()
        .unwrap();
    let state = scene.world.platform.state();
    assert_eq!(state.wallet(li).unwrap().bank_account(), Some(own));
    scene.world.assert_audit();
}

#[test]
fn a_retry_after_the_window_closed_answers_what_was_done_and_nothing_else() {
    let mut scene = Scene::new();
    let (li, han, op) = (scene.li.wallet, scene.han.wallet, scene.li.operator);
    let li_key = scene.li.key.clone();
    let pay_of = |amount: &str, key| Command::Pay {
        payer: li,
        payee: han,
        amount: yuan(amount),
        key,
        auth: None,
    };
    let key = scene.world.key();
    let pay = scene.signed_by(&li_key, pay_of("10", key));
    let other_key = scene.world.key();
    let escrow = scene.signed_by(
        &li_key,
        Command::OpenContract {
            payer: li,
            payee: han,
            template: Template::Escrow {
                amount: yuan("20"),
                deadline_ms: support::START_MS + DAY_MS,
            },
            purpose: "a bicycle".into(),
            key: other_key,
            auth: None,
        },
    );
    // Signed now, sent only after the window: never done, so still refused.
    let never_sent = scene.world.key();
    let never_sent = scene.signed_by(&li_key, pay_of("30", never_sent));
    // The same key on another amount, signed now: not the command that was done.
    let other_amount = scene.signed_by(&li_key, pay_of("11", key));
    let paid = transfer(scene.world.run(op, pay.clone()));
    let Ok(Outcome::Contract(contract)) = scene.world.run(op, escrow.clone()) else {
        panic!("escrow refused")
    };
    // The answers were lost; the phone comes back after its signatures' window closed and
    // sends the same bytes again.
    scene.world.advance_ms(6 * 60_000);
    let before = scene.world.hash();
    assert_eq!(scene.world.run(op, pay), Ok(Outcome::Transfer(paid)));
    assert_eq!(scene.world.run(op, escrow), Ok(Outcome::Contract(contract)));
    for late in [never_sent, other_amount] {
        let refused = scene.world.run(op, late).unwrap_err();
        assert_eq!(refused.code(), "SIGNATURE_EXPIRED");
    }
    assert_eq!(scene.world.hash(), before, "a late retry moved something");
    assert_eq!(
        scene.world.balance(li),
        yuan("8990"),
        "paid once; the escrow's 20 is held, not paid"
    );
    scene.world.assert_audit();
}

#[test]
fn the_problem_code_is_mapped_and_listed_in_the_document() {
    let problem = ecny::server::problem::Problem::from(CommandError::SignatureRequired {
        wallet: WalletId(1),
    });
    assert_eq!(problem.status.as_u16(), 403);
    let document = ecny::server::openapi::document().to_string();
    assert!(document.contains("SIGNATURE_REQUIRED"));
}
