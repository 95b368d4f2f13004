//! A queue item's life: pending → in progress (reserved by one reviewer until its lock
//! expires) → resolved or dismissed. [`apply`] is the one transition function; the store calls
//! it inside the transaction that reads and writes the item, so every backend follows the same
//! rules and two reviewers can never both hold an item.
//!
//! An expired lock needs no job to undo it: an item in progress whose lock has passed reads as
//! pending ([`ReviewItem::state_at`]) and anyone may reserve it.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

use crate::TraceId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    Pending,
    InProgress,
    Resolved,
    Dismissed,
}

impl ItemState {
    pub const ALL: [ItemState; 4] = [
        Self::Pending,
        Self::InProgress,
        Self::Resolved,
        Self::Dismissed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InProgress => "in_progress",
            Self::Resolved => "resolved",
            Self::Dismissed => "dismissed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// Resolved and dismissed items take no more actions.
    pub fn is_closed(self) -> bool {
        matches!(self, Self::Resolved | Self::Dismissed)
    }
}

/// One reviewer's verdict on an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Verdict {
    pub reviewer: String,
    /// The reviewer's label; required where several reviewers judge an item, so that they can
    /// agree or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub at: Timestamp,
}

/// How an item was closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Resolution {
    /// Who closed it (the last reviewer to give a verdict, or who dismissed it).
    pub by: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub at: Timestamp,
    /// The label most verdicts gave (ties: the smallest label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The share of verdicts that gave `label`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<f64>,
    /// Why it was dismissed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A trace in a queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewItem {
    /// Assigned by the store.
    pub id: i64,
    pub queue: String,
    pub trace_id: TraceId,
    /// As last written; see [`ReviewItem::state_at`] for the state at a time.
    pub state: ItemState,
    /// Triage priority, 0..=1, higher first; see [`super::priority`].
    pub priority: f64,
    /// The person the item is meant for; only they may reserve or decide it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_until: Option<Timestamp>,
    /// Verdicts needed, from the queue when the item was enqueued.
    pub reviewers_required: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verdicts: Vec<Verdict>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub tags: BTreeSet<String>,
    /// A reviewer marked it as a product/UX problem rather than the model's.
    #[serde(default)]
    pub ux_issue: bool,
    pub enqueued_at: Timestamp,
    pub updated_at: Timestamp,
}

impl ReviewItem {
    /// A new pending item.
    pub fn new(queue: &str, trace_id: TraceId, reviewers_required: u32, now: Timestamp) -> Self {
        Self {
            id: 0,
            queue: queue.to_owned(),
            trace_id,
            state: ItemState::Pending,
            priority: 0.0,
            assignee: None,
            reserved_by: None,
            lock_until: None,
            reviewers_required: reviewers_required.max(1),
            verdicts: Vec::new(),
            resolution: None,
            tags: BTreeSet::new(),
            ux_issue: false,
            enqueued_at: now,
            updated_at: now,
        }
    }

    /// The state at `now`: in progress only while the lock holds.
    pub fn state_at(&self, now: Timestamp) -> ItemState {
        match self.state {
            ItemState::InProgress if self.holder_at(now).is_none() => ItemState::Pending,
            state => state,
        }
    }

    /// Who holds the item at `now`, if anyone.
    pub fn holder_at(&self, now: Timestamp) -> Option<&str> {
        match (self.state, &self.reserved_by, self.lock_until) {
            (ItemState::InProgress, Some(reviewer), Some(until)) if now < until => Some(reviewer),
            _ => None,
        }
    }

    /// Whether `reviewer` may work on or decide the item now.
    fn check_may_act(&self, reviewer: &str, now: Timestamp) -> Result<(), TransitionError> {
        if self.state.is_closed() {
            return Err(TransitionError::Closed { state: self.state });
        }
        if let Some(holder) = self.holder_at(now)
            && holder != reviewer
        {
            return Err(TransitionError::ReservedByOther {
                reviewer: holder.to_owned(),
            });
        }
        if let Some(assignee) = &self.assignee
            && assignee != reviewer
        {
            return Err(TransitionError::AssignedToOther {
                assignee: assignee.clone(),
            });
        }
        Ok(())
    }

    fn release(&mut self) {
        self.reserved_by = None;
        self.lock_until = None;
    }
}

/// What someone does to an item.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemAction {
    /// Takes the item for `lock` (again, to extend one's own reservation).
    Reserve {
        reviewer: String,
        lock: SignedDuration,
    },
    /// Gives a reservation back.
    Release {
        reviewer: String,
    },
    /// Meant for `assignee` from now on (`None`: for anyone). Assigning oneself is
    /// self-assignment.
    Assign {
        by: String,
        assignee: Option<String>,
    },
    /// A verdict: resolves the item once enough reviewers agree or all have voted.
    Resolve {
        reviewer: String,
        label: Option<String>,
    },
    Dismiss {
        reviewer: String,
        reason: String,
    },
    Tag {
        reviewer: String,
        tags: Vec<String>,
    },
    MarkUxIssue {
        reviewer: String,
    },
    /// Work recorded elsewhere (feedback, a lesson, a dataset request) that leaves the item as
    /// it is but must respect the reservation.
    Work {
        reviewer: String,
    },
}

/// Why an action does not apply to the item as it is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TransitionError {
    #[error("the item is {} and takes no more actions", state.as_str())]
    Closed { state: ItemState },
    #[error("the item is reserved by {reviewer:?}")]
    ReservedByOther { reviewer: String },
    #[error("the item is not reserved by {reviewer:?}")]
    NotReservedBy { reviewer: String },
    #[error("the item is assigned to {assignee:?}")]
    AssignedToOther { assignee: String },
    #[error("{reviewer:?} has already given a verdict on this item")]
    AlreadyVoted { reviewer: String },
    /// Several reviewers judge this item: each verdict needs a label to compare.
    #[error("a label is required: this item needs several reviewers' verdicts")]
    LabelRequired,
}

/// The item after `action` at `now`, or why the action does not apply.
pub fn apply(
    mut item: ReviewItem,
    action: &ItemAction,
    now: Timestamp,
) -> Result<ReviewItem, TransitionError> {
    match action {
        ItemAction::Reserve { reviewer, lock } => {
            item.check_may_act(reviewer, now)?;
            if item.verdicts.iter().any(|v| &v.reviewer == reviewer) {
                return Err(TransitionError::AlreadyVoted {
                    reviewer: reviewer.clone(),
                });
            }
            item.state = ItemState::InProgress;
            item.reserved_by = Some(reviewer.clone());
            item.lock_until = Some(now.saturating_add(*lock).unwrap_or(now));
        }
        ItemAction::Release { reviewer } => {
            if item.state.is_closed() {
                return Err(TransitionError::Closed { state: item.state });
            }
            if item.holder_at(now) != Some(reviewer.as_str()) {
                return Err(TransitionError::NotReservedBy {
                    reviewer: reviewer.clone(),
                });
            }
            item.state = ItemState::Pending;
            item.release();
        }
        ItemAction::Assign { assignee, .. } => {
            if item.state.is_closed() {
                return Err(TransitionError::Closed { state: item.state });
            }
            item.assignee = assignee.clone();
        }
        ItemAction::Resolve { reviewer, label } => {
            item.check_may_act(reviewer, now)?;
            if item.verdicts.iter().any(|v| &v.reviewer == reviewer) {
                return Err(TransitionError::AlreadyVoted {
                    reviewer: reviewer.clone(),
                });
            }
            if item.reviewers_required > 1 && label.is_none() {
                return Err(TransitionError::LabelRequired);
            }
            item.verdicts.push(Verdict {
                reviewer: reviewer.clone(),
                label: label.clone(),
                at: now,
            });
            item.release();
            item.state = ItemState::Pending;
            if let Some(resolution) = decide(&item, reviewer, now) {
                item.state = ItemState::Resolved;
                item.resolution = Some(resolution);
            }
        }
        ItemAction::Dismiss { reviewer, reason } => {
            item.check_may_act(reviewer, now)?;
            item.release();
            item.state = ItemState::Dismissed;
            item.resolution = Some(Resolution {
                by: reviewer.clone(),
                at: now,
                label: None,
                agreement: None,
                reason: Some(reason.clone()),
            });
        }
        ItemAction::Tag { reviewer, tags } => {
            item.check_may_act(reviewer, now)?;
            item.tags.extend(tags.iter().cloned());
        }
        ItemAction::MarkUxIssue { reviewer } => {
            item.check_may_act(reviewer, now)?;
            item.ux_issue = true;
        }
        ItemAction::Work { reviewer } => item.check_may_act(reviewer, now)?,
    }
    item.updated_at = now;
    Ok(item)
}

/// The resolution once the verdicts decide the item: a label that a majority of the required
/// reviewers gave (more than half of them), or every required reviewer has voted. `None` while
/// undecided.
fn decide(item: &ReviewItem, last: &str, now: Timestamp) -> Option<Resolution> {
    let required = item.reviewers_required.max(1) as usize;
    let (label, count) = super::agreement::modal_label(&item.verdicts);
    let majority = required / 2 + 1;
    if count < majority && item.verdicts.len() < required {
        return None;
    }
    let agreement = label
        .as_ref()
        .map(|_| count as f64 / item.verdicts.len() as f64);
    Some(Resolution {
        by: last.to_owned(),
        at: now,
        label,
        agreement,
        reason: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_767_225_600 + secs).unwrap()
    }

    fn item(required: u32) -> ReviewItem {
        ReviewItem::new("q", TraceId::parse("id", "t1").unwrap(), required, at(0))
    }

    fn reserve(who: &str) -> ItemAction {
        ItemAction::Reserve {
            reviewer: who.into(),
            lock: SignedDuration::from_mins(10),
        }
    }

    fn resolve(who: &str, label: Option<&str>) -> ItemAction {
        ItemAction::Resolve {
            reviewer: who.into(),
            label: label.map(str::to_owned),
        }
    }

    #[test]
    fn a_reservation_excludes_others_until_it_expires() {
        let held = apply(item(1), &reserve("ann"), at(0)).unwrap();
        assert_eq!(held.state_at(at(1)), ItemState::InProgress);
        assert_eq!(
            apply(held.clone(), &reserve("bob"), at(1)).unwrap_err(),
            TransitionError::ReservedByOther {
                reviewer: "ann".into()
            }
        );
        // Ten minutes later the lock has run out: the item is pending and bob may take it.
        assert_eq!(held.state_at(at(600)), ItemState::Pending);
        let taken = apply(held.clone(), &reserve("bob"), at(600)).unwrap();
        assert_eq!(taken.holder_at(at(601)), Some("bob"));
        // ann's release after expiry is refused: she no longer holds it.
        assert!(matches!(
            apply(
                held,
                &ItemAction::Release {
                    reviewer: "ann".into()
                },
                at(700)
            ),
            Err(TransitionError::NotReservedBy { .. })
        ));
    }

    #[test]
    fn closed_items_take_no_actions() {
        let done = apply(item(1), &resolve("ann", None), at(0)).unwrap();
        assert_eq!(done.state, ItemState::Resolved);
        for action in [reserve("ann"), resolve("bob", None)] {
            assert_eq!(
                apply(done.clone(), &action, at(1)).unwrap_err(),
                TransitionError::Closed {
                    state: ItemState::Resolved
                }
            );
        }
        let dismissed = apply(
            item(1),
            &ItemAction::Dismiss {
                reviewer: "ann".into(),
                reason: "spam".into(),
            },
            at(0),
        )
        .unwrap();
        assert_eq!(
            dismissed.resolution.unwrap().reason.as_deref(),
            Some("spam")
        );
    }

    #[test]
    fn assignment_reserves_the_item_for_the_assignee() {
        let assigned = apply(
            item(1),
            &ItemAction::Assign {
                by: "lead".into(),
                assignee: Some("bob".into()),
            },
            at(0),
        )
        .unwrap();
        assert!(matches!(
            apply(assigned.clone(), &reserve("ann"), at(1)),
            Err(TransitionError::AssignedToOther { .. })
        ));
        assert!(apply(assigned, &reserve("bob"), at(1)).is_ok());
    }

    #[test]
    fn several_reviewers_resolve_on_a_majority_or_when_all_voted() {
        let one = apply(item(3), &resolve("ann", Some("wrong")), at(0)).unwrap();
        assert_eq!(one.state, ItemState::Pending);
        assert_eq!(
            apply(one.clone(), &resolve("ann", Some("wrong")), at(1)).unwrap_err(),
            TransitionError::AlreadyVoted {
                reviewer: "ann".into()
            }
        );
        assert_eq!(
            apply(one.clone(), &resolve("bob", None), at(1)).unwrap_err(),
            TransitionError::LabelRequired
        );
        // Two of three agree: a majority, resolved without the third.
        let agreed = apply(one.clone(), &resolve("bob", Some("wrong")), at(1)).unwrap();
        assert_eq!(agreed.state, ItemState::Resolved);
        let resolution = agreed.resolution.unwrap();
        assert_eq!(resolution.label.as_deref(), Some("wrong"));
        assert_eq!(resolution.agreement, Some(1.0));
        // Three different labels: resolved once all three voted, with a third agreeing.
        let split = apply(one, &resolve("bob", Some("fine")), at(1)).unwrap();
        assert_eq!(split.state, ItemState::Pending);
        let split = apply(split, &resolve("cy", Some("unclear")), at(2)).unwrap();
        assert_eq!(split.state, ItemState::Resolved);
        let resolution = split.resolution.unwrap();
        assert_eq!(resolution.label.as_deref(), Some("fine"));
        assert!((resolution.agreement.unwrap() - 1.0 / 3.0).abs() < 1e-12);
    }
}
