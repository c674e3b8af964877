//! Many clients on many threads share one node: each validates its own submission, commits are
//! grouped, everyone hears back only after the write is durable, and a restart shows it all.

use std::sync::Arc;
use std::thread;

use ecny::amount::Amount;
use ecny::audit::audit;
use ecny::bench::{holder_key, populate, with_holders};
use ecny::certs::KeyPair;
use ecny::command::{Command, Origin, Outcome, Submission};
use ecny::ids::{IdempotencyKey, OperatorId, WalletId};
use ecny::node::{Node, NodeHandle, SystemClock};
use ecny::platform::Platform;

#[test]
fn concurrent_clients_are_group_committed_and_all_durable() {
    let dir = tempfile::tempdir().unwrap();
    let (mut platform, _) =
        Platform::open_seeded(dir.path(), "handle", Box::new(SystemClock)).unwrap();
    let holders: Vec<KeyPair> = (0..200).map(holder_key).collect();
    let wallets = populate(&mut platform, &holders).unwrap();
    // Each payment carries its holder's signature: the center books none without.
    let wallets: Vec<(WalletId, OperatorId, KeyPair)> =
        with_holders(platform.state(), &wallets, &holders)
            .into_iter()
            .map(|(wallet, op, key)| (wallet, op, key.clone()))
            .collect();
    let contexts = [OperatorId(1), OperatorId(2)].map(|op| platform.state().signing_context(op));
    let not_after_ms = platform.node_mut().now_ms() + ecny::signing::SIGNATURE_WINDOW_MS_CLIENT;
    let node = platform.into_node();
    let (handle, thread) = NodeHandle::spawn(node);
    let operator_keys: Arc<Vec<KeyPair>> = Arc::new(
        (1..=2)
            .map(|id| KeyPair::from_seed(format!("handle/{}", OperatorId(id)).as_bytes()))
            .collect(),
    );
    let wallets = Arc::new(wallets);
    let clients: Vec<_> = (0..8u128)
        .map(|client| {
            let (handle, keys, wallets) = (handle.clone(), operator_keys.clone(), wallets.clone());
            thread::spawn(move || {
                let mut done = Vec::new();
                for n in 0..25u128 {
                    let (payer, op, holder) =
                        &wallets[((client * 25 + n) % wallets.len() as u128) as usize];
                    let (payer, op) = (*payer, *op);
                    let payee: WalletId =
                        wallets[((client * 7 + n * 3 + 1) % wallets.len() as u128) as usize].0;
                    let key = IdempotencyKey(client << 32 | n);
                    let pay = Command::Pay {
                        payer,
                        payee,
                        amount: Amount::from_fen(1),
                        key,
                        auth: None,
                    }
                    .sign(holder, &contexts[op.0 as usize - 1], not_after_ms);
                    let submission =
                        Submission::new(Origin::Operator(op), &[pay], &keys[op.0 as usize - 1]);
                    let results = handle.submit(submission).unwrap().unwrap();
                    if let Ok(Outcome::Transfer(event)) = results[0] {
                        done.push(event);
                    } else if payer != payee {
                        panic!("payment refused: {:?}", results[0]);
                    }
                }
                done
            })
        })
        .collect();
    let acknowledged: Vec<_> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert!(acknowledged.len() > 150);
    let stranger = Submission::new(
        Origin::Operator(OperatorId(1)),
        &[],
        &KeyPair::from_seed(b"stranger"),
    );
    assert_eq!(
        handle.submit(stranger).unwrap().unwrap_err().code(),
        "BATCH_SIGNATURE_INVALID"
    );
    let events = handle.query(|state| state.ledger().events().len()).unwrap();
    drop(handle);
    let node = thread.join().unwrap();
    let hash = node.state().state_hash();
    drop(node);
    let (node, _) = Node::open(dir.path()).unwrap();
    assert_eq!(node.state().state_hash(), hash);
    assert_eq!(node.state().ledger().events().len(), events);
    for event in acknowledged {
        assert!(node.state().ledger().event(event).is_some());
    }
    assert!(audit(node.state()).is_clean());
}
