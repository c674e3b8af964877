//! A secure element's persistent memory with Java Card-style atomic transactions.
//!
//! Every persistent write happens between `begin` and `commit`. Before the first write of a
//! transaction the journal saves the pre-transaction image (a real card journals only the bytes
//! it overwrites, to the same effect); `commit` drops the journal in one atomic step. If power is
//! cut anywhere in between, the journal survives in persistent memory and the next `power_up`
//! restores the pre-transaction image. A [`TearingPlan`] cuts power deterministically after the
//! N-th persistent write (the commit counts as a write), so tests can tear every write.

/// Field writes one transaction may make; a real card's commit buffer is bounded the same way.
pub const TRANSACTION_WRITES_MAX: u32 = 16;

/// When to cut the card's power, counted in persistent writes since the plan was armed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TearingPlan {
    cut_after_writes: Option<u32>,
}

impl TearingPlan {
    /// Never cut.
    pub const NONE: TearingPlan = TearingPlan {
        cut_after_writes: None,
    };

    /// Cut power right after the `writes`-th persistent write (1 = after the first one).
    pub fn after_writes(writes: u32) -> TearingPlan {
        assert!(
            writes >= 1,
            "a cut before any write is a cut at the APDU boundary"
        );
        TearingPlan {
            cut_after_writes: Some(writes),
        }
    }
}

/// The card lost power; nothing more runs until the next power-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PowerLost;

/// Persistent memory holding an image of type `T` and its transaction journal.
#[derive(Clone, Debug)]
pub struct Nvm<T> {
    image: T,
    journal: Option<T>,
    in_transaction: bool,
    writes_in_transaction: u32,
    writes_since_armed: u32,
    plan: TearingPlan,
    powered: bool,
}

impl<T: Clone> Nvm<T> {
    pub fn new(image: T) -> Nvm<T> {
        Nvm {
            image,
            journal: None,
            in_transaction: false,
            writes_in_transaction: 0,
            writes_since_armed: 0,
            plan: TearingPlan::NONE,
            powered: true,
        }
    }

    /// The committed-or-in-progress image, as a probe on the chip would read it.
    pub fn image(&self) -> &T {
        &self.image
    }

    pub fn is_powered(&self) -> bool {
        self.powered
    }

    /// Persistent writes since the tearing plan was last armed (commits included).
    pub fn writes_since_armed(&self) -> u32 {
        self.writes_since_armed
    }

    /// Installs a fault plan and restarts the write count it is measured against.
    pub fn arm(&mut self, plan: TearingPlan) {
        self.plan = plan;
        self.writes_since_armed = 0;
    }

    pub fn begin(&mut self) {
        assert!(self.powered, "a card without power runs nothing");
        assert!(!self.in_transaction, "transactions do not nest");
        assert!(
            self.journal.is_none(),
            "a journal left open must be rolled back at power-up"
        );
        self.in_transaction = true;
        self.writes_in_transaction = 0;
    }

    /// One persistent field write inside the open transaction.
    pub fn write(&mut self, update: impl FnOnce(&mut T)) -> Result<(), PowerLost> {
        assert!(
            self.in_transaction,
            "persistent write outside a transaction"
        );
        if self.journal.is_none() {
            self.journal = Some(self.image.clone());
        }
        update(&mut self.image);
        self.count_write()
    }

    /// Makes the transaction's writes permanent, atomically.
    pub fn commit(&mut self) -> Result<(), PowerLost> {
        assert!(self.in_transaction, "commit without a transaction");
        self.journal = None;
        self.in_transaction = false;
        self.count_write()
    }

    /// Restores the pre-transaction image, as the next power-up would.
    pub fn abort(&mut self) {
        assert!(self.in_transaction, "abort without a transaction");
        self.roll_back();
        self.in_transaction = false;
    }

    /// Power returns: an open journal means a torn transaction, so it is rolled back.
    pub fn power_up(&mut self) {
        self.roll_back();
        self.in_transaction = false;
        self.powered = true;
    }

    fn roll_back(&mut self) {
        if let Some(pre_image) = self.journal.take() {
            self.image = pre_image;
        }
    }

    fn count_write(&mut self) -> Result<(), PowerLost> {
        self.writes_in_transaction += 1;
        self.writes_since_armed += 1;
        assert!(
            self.writes_in_transaction <= TRANSACTION_WRITES_MAX,
            "transaction exceeds the commit buffer"
        );
        if self.plan.cut_after_writes == Some(self.writes_since_armed) {
            self.plan = TearingPlan::NONE;
            self.powered = false;
            return Err(PowerLost);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq, Eq)]
    struct Purse {
        balance: i64,
        counter: u32,
    }

    fn pay(nvm: &mut Nvm<Purse>, amount: i64) -> Result<(), PowerLost> {
        nvm.begin();
        nvm.write(|purse| purse.balance -= amount)?;
        nvm.write(|purse| purse.counter += 1)?;
        nvm.commit()
    }

    #[test]
    fn a_committed_transaction_survives_power_loss() {
        let mut nvm = Nvm::new(Purse {
            balance: 100,
            counter: 0,
        });
        pay(&mut nvm, 30).unwrap();
        nvm.power_up();
        assert_eq!(
            nvm.image(),
            &Purse {
                balance: 70,
                counter: 1
            }
        );
        assert_eq!(nvm.writes_since_armed(), 3);
    }

    #[test]
    fn tearing_before_commit_rolls_back_and_after_commit_keeps() {
        let before = Purse {
            balance: 100,
            counter: 0,
        };
        for cut in 1..=3 {
            let mut nvm = Nvm::new(before.clone());
            nvm.arm(TearingPlan::after_writes(cut));
            assert_eq!(pay(&mut nvm, 30), Err(PowerLost));
            assert!(!nvm.is_powered());
            nvm.power_up();
            let expected = if cut == 3 {
                Purse {
                    balance: 70,
                    counter: 1,
                }
            } else {
                before.clone()
            };
            assert_eq!(nvm.image(), &expected, "cut after write {cut}");
        }
    }

    #[test]
    fn abort_restores_the_pre_image() {
        let mut nvm = Nvm::new(Purse {
            balance: 5,
            counter: 9,
        });
        nvm.begin();
        nvm.write(|purse| purse.balance = 0).unwrap();
        nvm.abort();
        assert_eq!(nvm.image().balance, 5);
    }

    #[test]
    #[should_panic(expected = "persistent write outside a transaction")]
    fn writes_outside_a_transaction_are_a_bug() {
        let mut nvm = Nvm::new(Purse {
            balance: 5,
            counter: 9,
        });
        let _ = nvm.write(|purse| purse.balance = 0);
    }
}
