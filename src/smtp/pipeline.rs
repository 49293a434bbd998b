//! Commands awaiting their replies, in order (PIPELINING).
//!
//! Runs of the same command are stored once with a count: a client may pipeline thousands of RCPT
//! or NOOP commands, and a bounded queue must never forget the *oldest* command, because that is
//! the one the next reply answers. When even the runs exceed the bound, the newest command is the
//! one not remembered: its reply then reads as unsolicited, at the tail, where it harms least.

use std::collections::VecDeque;

/// A queue of pending items with consecutive equal items stored as one run.
#[derive(Debug)]
pub struct Pipeline<T> {
    runs: VecDeque<(T, u32)>,
    max_runs: usize,
}

impl<T: Copy + PartialEq> Pipeline<T> {
    /// An empty queue holding at most `max_runs` runs.
    pub fn new(max_runs: usize) -> Self {
        Self { runs: VecDeque::new(), max_runs }
    }

    /// Appends `item`; `false` when the queue is full and the item was not remembered.
    pub fn push(&mut self, item: T) -> bool {
        if let Some((last, n)) = self.runs.back_mut() {
            if *last == item && *n < u32::MAX {
                *n += 1;
                return true;
            }
        }
        if self.runs.len() >= self.max_runs {
            return false;
        }
        self.runs.push_back((item, 1));
        true
    }

    /// The oldest item, the one the next reply answers.
    pub fn front(&self) -> Option<T> {
        self.runs.front().map(|&(item, _)| item)
    }

    /// Forgets the oldest item.
    pub fn pop_front(&mut self) {
        if let Some((_, n)) = self.runs.front_mut() {
            *n -= 1;
            if *n == 0 {
                self.runs.pop_front();
            }
        }
    }

    /// Whether nothing awaits a reply.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_equal_items_are_answered_one_by_one_in_order() {
        let mut q = Pipeline::new(2);
        for item in [1, 2, 2, 2] {
            assert!(q.push(item));
        }
        let mut out = Vec::new();
        while let Some(x) = q.front() {
            out.push(x);
            q.pop_front();
        }
        assert_eq!(out, [1, 2, 2, 2]);
    }

    #[test]
    fn a_full_queue_keeps_its_oldest_item_and_refuses_the_newest() {
        let mut q = Pipeline::new(2);
        assert!(q.push(1));
        assert!(q.push(2));
        assert!(!q.push(3));
        assert!(q.push(2), "a repeat of the last run still fits");
        assert_eq!(q.front(), Some(1));
    }

    #[test]
    fn many_thousand_repeats_take_one_run() {
        let mut q = Pipeline::new(1);
        for _ in 0..100_000 {
            assert!(q.push(7));
        }
        for _ in 0..100_000 {
            assert_eq!(q.front(), Some(7));
            q.pop_front();
        }
        assert!(q.is_empty());
    }
}
