//! How well the analysis center's rules find what the city staged: precision and recall per rule
//! against the labels.

use super::*;

/// How one rule did against the labels, counted by wallet: a wallet the rule flagged is a true
/// positive when it carries the rule's own pattern.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleScore {
    pub rule: Rule,
    pub alerts: usize,
    pub flagged_wallets: usize,
    pub true_positives: usize,
    /// Flagged wallets that carry another pattern's label: suspicious, just not this way.
    pub flagged_with_other_label: usize,
    pub labelled_wallets: usize,
}

impl RuleScore {
    pub fn precision(&self) -> Option<f64> {
        (self.flagged_wallets > 0).then(|| self.true_positives as f64 / self.flagged_wallets as f64)
    }

    pub fn recall(&self) -> Option<f64> {
        (self.labelled_wallets > 0)
            .then(|| self.true_positives as f64 / self.labelled_wallets as f64)
    }
}

/// Precision and recall of each rule against the generator's labels.
pub fn evaluate(alerts: &AlertBook, labels: &[Label]) -> Vec<RuleScore> {
    use std::collections::BTreeSet;
    Rule::ALL
        .into_iter()
        .map(|rule| {
            let flagged: BTreeSet<WalletId> = alerts
                .all()
                .iter()
                .filter(|a| a.rule == rule)
                .filter_map(|a| a.wallet)
                .collect();
            let labelled: BTreeSet<WalletId> = labels
                .iter()
                .filter(|l| l.pattern.rule() == rule)
                .map(|l| l.wallet)
                .collect();
            let any_label: BTreeSet<WalletId> = labels.iter().map(|l| l.wallet).collect();
            let true_positives = flagged.intersection(&labelled).count();
            RuleScore {
                rule,
                alerts: alerts.count_by_rule(rule),
                flagged_wallets: flagged.len(),
                true_positives,
                flagged_with_other_label: flagged
                    .iter()
                    .filter(|w| !labelled.contains(w) && any_label.contains(w))
                    .count(),
                labelled_wallets: labelled.len(),
            }
        })
        .collect()
}
