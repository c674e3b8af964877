//! Account statements for one wallet over a range of China-time days, and their ISO 20022 form:
//! camt.053.001.08 (BankToCustomerStatementV08), amounts in CNY with two decimals, each entry
//! booked with its credit/debit indicator, opening and closing booked balances. Built from the
//! account's history chain in the ledger and the pseudonymous directory: counterparties appear as
//! wallet ids and merchants as merchant ids with category and region, never as names.

use std::fmt::Write as _;

use thiserror::Error;

use crate::amount::Amount;
use crate::analytics::statistics::{channel_name, Tally};
use crate::analytics::{classify, Directory, Flow};
use crate::ids::{EventId, OperatorId, WalletId};
use crate::ledger::TransferKind;
use crate::state_machine::StateMachine;
use crate::time::{china_day, china_time, format_day};

/// The camt.053 version written: the one CBPR+ and most banks exchange today.
pub const CAMT053_NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08";
/// Days one statement may cover: a year, so one request cannot walk a wallet's whole life.
pub const STATEMENT_DAYS_MAX: u32 = 366;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum StatementError {
    #[error("no wallet {0}")]
    UnknownWallet(WalletId),
    #[error("the statement ends ({to}) before it starts ({from})")]
    DaysReversed { from: String, to: String },
    #[error("a statement covers at most {STATEMENT_DAYS_MAX} days; ask for several")]
    TooLong,
}

impl StatementError {
    pub fn code(&self) -> &'static str {
        match self {
            StatementError::UnknownWallet(_) => "UNKNOWN_WALLET",
            StatementError::DaysReversed { .. } => "STATEMENT_DAYS_REVERSED",
            StatementError::TooLong => "STATEMENT_TOO_LONG",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatementEntry {
    pub event: EventId,
    pub at_ms: u64,
    pub amount: Amount,
    pub credit: bool,
    pub flow: Flow,
    /// The other wallet, for payments and refunds.
    pub counterparty: Option<WalletId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub wallet: WalletId,
    pub operator: OperatorId,
    pub from_day: u32,
    pub to_day: u32,
    /// Balance at the start of `from_day` and at the end of `to_day`, China time.
    pub opening: Amount,
    pub closing: Amount,
    /// Oldest first.
    pub entries: Vec<StatementEntry>,
}

impl Statement {
    pub fn credits(&self) -> Tally {
        self.tally(true)
    }

    pub fn debits(&self) -> Tally {
        self.tally(false)
    }

    fn tally(&self, credit: bool) -> Tally {
        let mine = self.entries.iter().filter(|e| e.credit == credit);
        Tally {
            count: mine.clone().count() as u64,
            amount: mine.map(|e| e.amount).sum(),
        }
    }
}

/// Whether a statement may cover these days: in order, at most [`STATEMENT_DAYS_MAX`]. Checked
/// before anything is read.
pub fn check_days(from_day: u32, to_day: u32) -> Result<(), StatementError> {
    if to_day < from_day {
        return Err(StatementError::DaysReversed {
            from: format_day(from_day),
            to: format_day(to_day),
        });
    }
    if to_day - from_day >= STATEMENT_DAYS_MAX {
        return Err(StatementError::TooLong);
    }
    Ok(())
}

/// The statement of `wallet` from the start of `from_day` to the end of `to_day`.
pub fn statement(
    state: &StateMachine,
    directory: &Directory,
    wallet: WalletId,
    (from_day, to_day): (u32, u32),
) -> Result<Statement, StatementError> {
    check_days(from_day, to_day)?;
    let (Some(account), Some(operator)) = (
        directory.account_of(wallet),
        directory.wallet_operator(wallet),
    ) else {
        return Err(StatementError::UnknownWallet(wallet));
    };
    let ledger = state.ledger();
    let now = ledger
        .account(account)
        .map_err(|_| StatementError::UnknownWallet(wallet))?
        .balance;
    // Walk back from today's balance: undo what came after the range, collect what is in it.
    let (mut closing, mut entries) = (now.fen(), Vec::new());
    let mut opening = now.fen();
    let history = ledger
        .history(account)
        .map_err(|_| StatementError::UnknownWallet(wallet))?;
    for (event, transfer) in history {
        // Holds and voids move nothing until posted.
        if matches!(
            transfer.kind,
            TransferKind::PendingHold | TransferKind::PendingVoid
        ) {
            continue;
        }
        let day = china_day(transfer.timestamp_ms);
        if day < from_day {
            break;
        }
        let credit = transfer.credit == account;
        let signed = if credit {
            transfer.amount.fen()
        } else {
            -transfer.amount.fen()
        };
        opening -= signed;
        if day > to_day {
            closing -= signed;
            continue;
        }
        let movement = classify(event, transfer, directory);
        let counterparty = if credit {
            movement.payer
        } else {
            movement.payee
        };
        entries.push(StatementEntry {
            event,
            at_ms: transfer.timestamp_ms,
            amount: transfer.amount,
            credit,
            flow: movement.flow,
            counterparty,
        });
    }
    entries.reverse();
    Ok(Statement {
        wallet,
        operator,
        from_day,
        to_day,
        opening: Amount::from_fen(opening),
        closing: Amount::from_fen(closing),
        entries,
    })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn indicator(credit: bool) -> &'static str {
    if credit {
        "CRDT"
    } else {
        "DBIT"
    }
}

fn compact_day(day: u32) -> String {
    format_day(day).replace('-', "")
}

/// What an entry was, in words, from the pseudonymous directory.
fn entry_information(entry: &StatementEntry, directory: &Directory) -> String {
    match entry.flow {
        Flow::Merchant { merchant, channel } => match directory.merchant(merchant) {
            Some(m) => format!(
                "payment to merchant {merchant} (MCC {}, region {:06}) by {}",
                m.mcc,
                m.region,
                channel.as_str()
            ),
            None => format!("payment to merchant {merchant} by {}", channel.as_str()),
        },
        flow => channel_name(flow).replace('_', " "),
    }
}

/// The statement as camt.053.001.08 XML; `created_ms` is when it was made.
pub fn camt053(statement: &Statement, directory: &Directory, created_ms: u64) -> String {
    let id = format!(
        "STMT-{}-{}-{}",
        statement.wallet,
        compact_day(statement.from_day),
        compact_day(statement.to_day)
    );
    debug_assert!(id.len() <= 35, "Max35Text");
    let mut x = String::with_capacity(1024 + statement.entries.len() * 900);
    let _ = write!(
        x,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document xmlns=\"{CAMT053_NAMESPACE}\">\n<BkToCstmrStmt>\n<GrpHdr><MsgId>{id}</MsgId><CreDtTm>{created}</CreDtTm></GrpHdr>\n<Stmt>\n<Id>{id}</Id><CreDtTm>{created}</CreDtTm>\n<FrToDt><FrDtTm>{from}T00:00:00.000+08:00</FrDtTm><ToDtTm>{to}T23:59:59.999+08:00</ToDtTm></FrToDt>\n",
        created = china_time(created_ms),
        from = format_day(statement.from_day),
        to = format_day(statement.to_day),
    );
    let _ = writeln!(
        x,
        "<Acct><Id><Othr><Id>{}</Id><SchmeNm><Prtry>ECNY-WALLET</Prtry></SchmeNm></Othr></Id><Ccy>CNY</Ccy><Svcr><FinInstnId><Othr><Id>{}</Id></Othr></FinInstnId></Svcr></Acct>",
        statement.wallet, statement.operator
    );
    for (code, amount, day) in [
        ("OPBD", statement.opening, statement.from_day),
        ("CLBD", statement.closing, statement.to_day),
    ] {
        let _ = writeln!(
            x,
            "<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"CNY\">{}</Amt><CdtDbtInd>{}</CdtDbtInd><Dt><Dt>{}</Dt></Dt></Bal>",
            Amount::from_fen(amount.fen().abs()),
            indicator(!amount.is_negative()),
            format_day(day)
        );
    }
    let (credits, debits) = (statement.credits(), statement.debits());
    let net = credits.amount.fen() - debits.amount.fen();
    let _ = writeln!(
        x,
        "<TxsSummry><TtlNtries><NbOfNtries>{}</NbOfNtries><Sum>{}</Sum><TtlNetNtry><Amt>{}</Amt><CdtDbtInd>{}</CdtDbtInd></TtlNetNtry></TtlNtries><TtlCdtNtries><NbOfNtries>{}</NbOfNtries><Sum>{}</Sum></TtlCdtNtries><TtlDbtNtries><NbOfNtries>{}</NbOfNtries><Sum>{}</Sum></TtlDbtNtries></TxsSummry>",
        credits.count + debits.count,
        Amount::from_fen(credits.amount.fen() + debits.amount.fen()),
        Amount::from_fen(net.abs()),
        indicator(net >= 0),
        credits.count,
        credits.amount,
        debits.count,
        debits.amount,
    );
    for entry in &statement.entries {
        write_entry(&mut x, entry, directory);
    }
    x.push_str("</Stmt>\n</BkToCstmrStmt>\n</Document>\n");
    x
}

fn write_entry(x: &mut String, entry: &StatementEntry, directory: &Directory) {
    let (ind, amount) = (indicator(entry.credit), entry.amount);
    let _ = write!(
        x,
        "<Ntry><NtryRef>{event}</NtryRef><Amt Ccy=\"CNY\">{amount}</Amt><CdtDbtInd>{ind}</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts><BookgDt><DtTm>{at}</DtTm></BookgDt><ValDt><Dt>{day}</Dt></ValDt><AcctSvcrRef>{event}</AcctSvcrRef><BkTxCd><Prtry><Cd>{code}</Cd><Issr>ECNY</Issr></Prtry></BkTxCd>",
        event = entry.event,
        at = china_time(entry.at_ms),
        day = format_day(china_day(entry.at_ms)),
        code = channel_name(entry.flow).to_uppercase(),
    );
    let _ = write!(
        x,
        "<NtryDtls><TxDtls><Refs><AcctSvcrRef>{}</AcctSvcrRef></Refs><Amt Ccy=\"CNY\">{amount}</Amt><CdtDbtInd>{ind}</CdtDbtInd>",
        entry.event
    );
    if let Some(other) = entry.counterparty {
        let role = if entry.credit { "DbtrAcct" } else { "CdtrAcct" };
        let _ = write!(
            x,
            "<RltdPties><{role}><Id><Othr><Id>{other}</Id><SchmeNm><Prtry>ECNY-WALLET</Prtry></SchmeNm></Othr></Id></{role}></RltdPties>"
        );
    }
    let _ = writeln!(
        x,
        "<AddtlTxInf>{}</AddtlTxInf></TxDtls></NtryDtls></Ntry>",
        escape(&entry_information(entry, directory))
    );
}
