//! The random workload: what holders, shops and hostile parties ask of the system each step,
//! and the signed command each request becomes when it is sent.

use crate::amount::Amount;
use crate::channels::acquiring::PaymentChannel;
use crate::city::Random;
use crate::command::Command;
use crate::ids::{ContractId, IdempotencyKey, OperatorId};
use crate::programs::contracts::Template;
use crate::time::DAY_MS;

use super::world::World;

/// An escrow's deadline lies beyond any run's end: the model does not follow expiry.
const ESCROW_DEADLINE_MS: u64 = 365 * DAY_MS;

/// What someone asks for; indices are holders' and shops' places in the world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Intent {
    Pay {
        payer: usize,
        payee: usize,
        amount: Amount,
    },
    Exchange {
        holder: usize,
        amount: Amount,
    },
    DepositBack {
        holder: usize,
        amount: Amount,
    },
    PayShop {
        payer: usize,
        shop: usize,
        amount: Amount,
        channel: PaymentChannel,
    },
    OpenEscrow {
        payer: usize,
        payee: usize,
        amount: Amount,
        /// Fixed when asked: a retry must carry the same terms.
        deadline_ms: u64,
    },
    ConfirmEscrow {
        payer: usize,
        contract: ContractId,
    },
    /// A payment from `payer` signed with `signer`'s key: must be refused.
    SignedByAnother {
        payer: usize,
        signer: usize,
        payee: usize,
        amount: Amount,
    },
    /// A payment from `payer` that an operator not running its wallet submits: refused.
    ForeignOperator {
        payer: usize,
        payee: usize,
        amount: Amount,
    },
}

impl Intent {
    /// The holder whose wallet the request's idempotency key belongs to.
    pub(super) fn payer(&self) -> usize {
        match *self {
            Intent::Pay { payer, .. }
            | Intent::PayShop { payer, .. }
            | Intent::OpenEscrow { payer, .. }
            | Intent::ConfirmEscrow { payer, .. }
            | Intent::SignedByAnother { payer, .. }
            | Intent::ForeignOperator { payer, .. } => payer,
            Intent::Exchange { holder, .. } | Intent::DepositBack { holder, .. } => holder,
        }
    }

    /// Whether the system must refuse it whatever the state.
    pub(super) fn hostile(&self) -> bool {
        matches!(
            self,
            Intent::SignedByAnother { .. } | Intent::ForeignOperator { .. }
        )
    }
}

/// A request a client makes, kept until it hears an answer; every send carries the same key.
#[derive(Clone, Debug)]
pub(super) struct Request {
    pub intent: Intent,
    pub key: IdempotencyKey,
}

/// Draws the next intent; `escrows` are those open, with their payers. Amounts are drawn
/// without looking at balances, so that refusals happen and are checked to move nothing.
pub(super) fn draw(random: &mut Random, world: &World, escrows: &[(usize, ContractId)]) -> Intent {
    let holders = world.holders.len();
    let payer = random.below(holders);
    let other = |random: &mut Random| (payer + 1 + random.below(holders - 1)) % holders;
    match random.below(100) {
        0..=37 => Intent::Pay {
            payer,
            payee: other(random),
            amount: random.yuan(1, 400),
        },
        38..=49 => Intent::Exchange {
            holder: payer,
            amount: random.yuan(10, 800),
        },
        50..=57 => Intent::DepositBack {
            holder: payer,
            amount: random.yuan(1, 300),
        },
        58..=77 => Intent::PayShop {
            payer,
            shop: random.below(world.shops.len()),
            amount: random.yuan(1, 200),
            channel: if random.chance(50) {
                PaymentChannel::StaticQr
            } else {
                PaymentChannel::TapZone
            },
        },
        78..=85 => Intent::OpenEscrow {
            payer,
            payee: other(random),
            amount: random.yuan(10, 300),
            deadline_ms: world.now_ms() + ESCROW_DEADLINE_MS,
        },
        86..=93 => match escrows.len() {
            0 => Intent::Pay {
                payer,
                payee: other(random),
                amount: random.yuan(1, 50),
            },
            open => {
                let (payer, contract) = escrows[random.below(open)];
                Intent::ConfirmEscrow { payer, contract }
            }
        },
        94..=96 => Intent::SignedByAnother {
            payer,
            signer: other(random),
            payee: other(random),
            amount: random.yuan(1, 100),
        },
        _ => Intent::ForeignOperator {
            payer,
            payee: other(random),
            amount: random.yuan(1, 100),
        },
    }
}

/// The operator that submits `request` and the command, signed now as the client would.
pub(super) fn command(world: &World, request: &Request) -> (OperatorId, Command) {
    let key = request.key;
    let holder = |i: usize| &world.holders[i];
    let own = |i: usize| holder(i).operator;
    let signed = |i: usize, command: Command| world.signed(i, command);
    match request.intent {
        Intent::Pay {
            payer,
            payee,
            amount,
        } => (
            own(payer),
            signed(
                payer,
                Command::Pay {
                    payer: holder(payer).wallet,
                    payee: holder(payee).wallet,
                    amount,
                    key,
                    auth: None,
                },
            ),
        ),
        Intent::Exchange { holder: h, amount } => (
            own(h),
            signed(
                h,
                Command::Exchange {
                    wallet: holder(h).wallet,
                    amount,
                    key,
                    auth: None,
                },
            ),
        ),
        Intent::DepositBack { holder: h, amount } => (
            own(h),
            signed(
                h,
                Command::DepositBack {
                    wallet: holder(h).wallet,
                    amount,
                    key,
                    auth: None,
                },
            ),
        ),
        Intent::PayShop {
            payer,
            shop,
            amount,
            channel,
        } => (
            own(payer),
            signed(
                payer,
                Command::PayMerchant {
                    payer: holder(payer).wallet,
                    merchant: world.shops[shop].id,
                    amount,
                    channel,
                    terminal: 0,
                    order: None,
                    key,
                    auth: None,
                },
            ),
        ),
        Intent::OpenEscrow {
            payer,
            payee,
            amount,
            deadline_ms,
        } => (
            own(payer),
            signed(
                payer,
                Command::OpenContract {
                    payer: holder(payer).wallet,
                    payee: holder(payee).wallet,
                    template: Template::Escrow {
                        amount,
                        deadline_ms,
                    },
                    purpose: "goods on delivery".into(),
                    key,
                    auth: None,
                },
            ),
        ),
        Intent::ConfirmEscrow { payer, contract } => (
            own(payer),
            signed(
                payer,
                Command::ConfirmContract {
                    contract,
                    units: 1,
                    key,
                    auth: None,
                },
            ),
        ),
        Intent::SignedByAnother {
            payer,
            signer,
            payee,
            amount,
        } => {
            let command = Command::Pay {
                payer: holder(payer).wallet,
                payee: holder(payee).wallet,
                amount,
                key,
                auth: None,
            };
            (
                own(payer),
                world.signed_with(&holder(signer).key, payer, command),
            )
        }
        Intent::ForeignOperator {
            payer,
            payee,
            amount,
        } => {
            let foreign = world
                .operators
                .iter()
                .copied()
                .find(|op| *op != own(payer))
                .expect("two operators");
            let command = Command::Pay {
                payer: holder(payer).wallet,
                payee: holder(payee).wallet,
                amount,
                key,
                auth: None,
            };
            (foreign, signed(payer, command))
        }
    }
}
