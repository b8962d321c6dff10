//! The bounded queue of mirror jobs, ordered per team.
//!
//! Jobs are keyed by the primary's team id. A worker takes the oldest job whose key no other
//! worker holds, and holds that key until the job is done (its retries included), so the jobs
//! of one team are replayed one after the other in the order the primary answered them, while
//! jobs of different teams run in parallel. When the queue is full, the newest job is refused
//! (the caller counts it as dropped): the jobs already waiting keep their order.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use prometheus::IntGauge;
use tokio::sync::Notify;

use crate::canonical::{CanonicalRequest, CanonicalResponse};

/// A write the primary answered, to repeat on the mirror.
pub(super) struct Job {
    /// The primary's team id: jobs of one key run in order.
    pub key: String,
    /// The canonical request as the primary ran it.
    pub request: CanonicalRequest,
    /// The primary's canonical answer.
    pub answer: CanonicalResponse,
}

pub(super) struct Queue {
    state: Mutex<State>,
    changed: Notify,
    capacity: usize,
    /// `teamgate_mirror_queue_depth` of this queue, set under the lock so it never lags.
    gauge: Option<IntGauge>,
}

#[derive(Default)]
struct State {
    waiting: VecDeque<Job>,
    /// Keys of the jobs being replayed.
    busy: HashSet<String>,
    /// Given up at shutdown: no job is handed out any more, and none is counted again.
    closed: bool,
}

impl Queue {
    pub fn new(capacity: usize, gauge: Option<IntGauge>) -> Queue {
        Queue {
            state: Mutex::new(State::default()),
            changed: Notify::new(),
            capacity: capacity.max(1),
            gauge,
        }
    }

    fn show(&self, state: &State) {
        if let Some(gauge) = &self.gauge {
            gauge.set((state.waiting.len() + state.busy.len()) as i64);
        }
    }

    /// Adds a job; false (and the job dropped) when `capacity` jobs are already waiting.
    pub fn push(&self, job: Job) -> bool {
        {
            let mut state = self.state.lock().expect("queue");
            if state.waiting.len() >= self.capacity {
                return false;
            }
            state.waiting.push_back(job);
            self.show(&state);
        }
        self.changed.notify_waiters();
        true
    }

    /// The oldest job whose team no worker holds; its key is held until [`Queue::done`].
    /// `None` once the queue is closed.
    pub async fn next(&self) -> Option<Job> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before looking, so a push or a `done` in between is not missed.
            changed.as_mut().enable();
            if self.is_closed() {
                return None;
            }
            if let Some(job) = self.take() {
                return Some(job);
            }
            changed.await;
        }
    }

    pub fn is_closed(&self) -> bool {
        self.state.lock().expect("queue").closed
    }

    fn take(&self) -> Option<Job> {
        let mut state = self.state.lock().expect("queue");
        let State { waiting, busy, .. } = &mut *state;
        let at = waiting.iter().position(|job| !busy.contains(&job.key))?;
        let job = waiting.remove(at)?;
        busy.insert(job.key.clone());
        Some(job)
    }

    /// The job of `key` is done: its team's next job may run.
    pub fn done(&self, key: &str) {
        {
            let mut state = self.state.lock().expect("queue");
            state.busy.remove(key);
            self.show(&state);
        }
        self.changed.notify_waiters();
    }

    /// Jobs waiting or being replayed.
    pub fn depth(&self) -> usize {
        let state = self.state.lock().expect("queue");
        state.waiting.len() + state.busy.len()
    }

    /// Whether a job of `key` is waiting or being replayed (the mirror lags on that team).
    pub fn pending_for(&self, key: &str) -> bool {
        let state = self.state.lock().expect("queue");
        state.busy.contains(key) || state.waiting.iter().any(|job| job.key == key)
    }

    /// Gives up the jobs still waiting and being replayed (at shutdown) and closes the
    /// queue; returns how many jobs were given up.
    pub fn abandon(&self) -> usize {
        let n = {
            let mut state = self.state.lock().expect("queue");
            let n = state.waiting.len() + state.busy.len();
            state.waiting.clear();
            state.closed = true;
            self.show(&state);
            n
        };
        self.changed.notify_waiters();
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::Operation;

    fn job(key: &str) -> Job {
        Job {
            key: key.into(),
            request: CanonicalRequest::new(Operation::UpdateTeam),
            answer: CanonicalResponse::no_content(),
        }
    }

    #[tokio::test]
    async fn jobs_of_one_team_wait_for_each_other_and_a_full_queue_refuses_the_newest() {
        let q = Queue::new(3, None);
        assert!(q.push(job("a")) && q.push(job("a")) && q.push(job("b")));
        assert!(!q.push(job("c")), "full: the newest is refused");
        let first = q.next().await.unwrap();
        assert_eq!(first.key, "a");
        // The second job of `a` waits while the first is replayed; `b` may run.
        let second = q.next().await.unwrap();
        assert_eq!(second.key, "b");
        assert!(q.take().is_none(), "a is held");
        assert!(q.pending_for("a") && q.pending_for("b") && !q.pending_for("c"));
        assert_eq!(q.depth(), 3);
        q.done("a");
        assert_eq!(q.next().await.unwrap().key, "a");
        q.done("a");
        q.done("b");
        assert_eq!(q.depth(), 0);
        assert!(q.push(job("c")));
        assert_eq!(q.abandon(), 1);
        assert_eq!(q.depth(), 0);
        assert!(q.next().await.is_none(), "closed");
    }
}
