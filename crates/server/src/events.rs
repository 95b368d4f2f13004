//! Announcing events to the project's webhooks. [`emit`] is the one way in for every part of
//! feedloop that has something to announce (proposed lessons, review items, clusters): it
//! writes the event to the outbox with a delivery per subscribed endpoint, and the
//! `deliver_webhooks` job sends them (see `analytics::webhooks`).
//!
//! Where the store writes what raised an event itself, it writes the event in the same
//! transaction (alerts: `Analytics::raise_alert` with [`outbox_event`]); [`emit`] is its own
//! transaction, right after the write it announces.

use feedloop_core::ProjectId;
use feedloop_core::events::{Event, EventPayload};
use feedloop_store::webhooks::NewEvent;
use feedloop_store::{Store, StoreError};

use crate::ops::new_id;

/// The outbox row of `event`: a new event id and the exact JSON body endpoints receive.
pub fn outbox_event(project: ProjectId, event: &Event) -> NewEvent {
    let id = new_id("evt_", event.created_at.as_microsecond());
    let payload = EventPayload::new(id.clone(), project, event);
    NewEvent {
        event_id: id,
        event_type: event.event_type.as_str().to_owned(),
        payload: serde_json::to_string(&payload).expect("an event payload serialises"),
    }
}

/// Queues `event` for every endpoint of the project subscribed to its type; returns how many
/// deliveries were queued (0 when nobody listens).
pub async fn emit(store: &dyn Store, project: ProjectId, event: Event) -> Result<u64, StoreError> {
    let new = outbox_event(project, &event);
    store.emit_event(project, &new, event.created_at).await
}
