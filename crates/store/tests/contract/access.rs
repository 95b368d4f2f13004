//! People, memberships, sessions, token secrets, key rotation and the audit log.

use feedloop_core::auth::{KeyRole, UserRole};
use feedloop_store::access::{NewSession, NewUser};
use feedloop_store::coordination::ChangeTopic;
use feedloop_store::{NewKey, Store, StoreError};
use std::sync::Arc;

use super::fixtures::*;

fn user(email: &str) -> NewUser {
    NewUser {
        email: email.into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        is_admin: false,
    }
}

pub async fn users_are_unique_by_email_and_members_have_one_role(store: Arc<dyn Store>) {
    assert_eq!(store.count_users().await.unwrap(), 0);
    let alpha = new_project(store.as_ref(), "alpha").await;
    let beta = new_project(store.as_ref(), "beta").await;
    let ann = store
        .create_user(user("ann@example.com"), at(1))
        .await
        .unwrap();
    let error = store
        .create_user(user("ann@example.com"), at(2))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Conflict { ref field, .. } if field == "email"));
    assert_eq!(store.count_users().await.unwrap(), 1);
    assert_eq!(
        store.user_by_email("ann@example.com").await.unwrap(),
        Some(ann.clone())
    );
    assert_eq!(store.user(ann.id).await.unwrap(), Some(ann.clone()));

    store
        .set_membership(alpha, ann.id, UserRole::Viewer, at(3))
        .await
        .unwrap();
    // Setting again changes the role: one membership per project.
    let changed = store
        .set_membership(alpha, ann.id, UserRole::Reviewer, at(4))
        .await
        .unwrap();
    assert_eq!(changed.role, UserRole::Reviewer);
    assert_eq!(changed.project_name, "alpha");
    store
        .set_membership(beta, ann.id, UserRole::Admin, at(5))
        .await
        .unwrap();
    let roles: Vec<(String, UserRole)> = store
        .memberships_of_user(ann.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.project_name, m.role))
        .collect();
    assert_eq!(
        roles,
        [
            ("alpha".to_owned(), UserRole::Reviewer),
            ("beta".to_owned(), UserRole::Admin)
        ]
    );
    store.remove_membership(alpha, ann.id).await.unwrap();
    assert!(store.project_members(alpha).await.unwrap().is_empty());
    assert_eq!(store.project_members(beta).await.unwrap().len(), 1);
    assert!(matches!(
        store.remove_membership(alpha, ann.id).await.unwrap_err(),
        StoreError::NotFound { what: "member", .. }
    ));
    assert!(matches!(
        store
            .set_membership(alpha, ann.id + 100, UserRole::Viewer, at(6))
            .await
            .unwrap_err(),
        StoreError::NotFound { what: "user", .. }
    ));
}

pub async fn sessions_are_found_by_hash_touched_and_deleted(store: Arc<dyn Store>) {
    let ann = store
        .create_user(user("ann@example.com"), at(1))
        .await
        .unwrap();
    store
        .create_session(
            NewSession {
                hash: [9; 32],
                user_id: ann.id,
                csrf_token: "csrf".into(),
                expires_at: at(100),
            },
            at(2),
        )
        .await
        .unwrap();
    let session = store.session_by_hash([9; 32]).await.unwrap().unwrap();
    assert_eq!(session.user_id, ann.id);
    assert_eq!(session.csrf_token, "csrf");
    assert_eq!(session.last_seen_at, at(2));
    assert_eq!(session.expires_at, at(100));
    store.touch_session(session.id, at(7)).await.unwrap();
    let touched = store.session_by_hash([9; 32]).await.unwrap().unwrap();
    assert_eq!(touched.last_seen_at, at(7));
    assert_eq!(store.session_by_hash([8; 32]).await.unwrap(), None);
    store.delete_session([9; 32]).await.unwrap();
    store.delete_session([9; 32]).await.unwrap();
    assert_eq!(store.session_by_hash([9; 32]).await.unwrap(), None);
}

pub async fn the_first_token_secret_stays(store: Arc<dyn Store>) {
    let alpha = new_project(store.as_ref(), "alpha").await;
    let beta = new_project(store.as_ref(), "beta").await;
    assert_eq!(
        store.token_secret(alpha, [1; 32], at(1)).await.unwrap(),
        [1; 32]
    );
    assert_eq!(
        store.token_secret(alpha, [2; 32], at(2)).await.unwrap(),
        [1; 32]
    );
    assert_eq!(
        store.token_secret(beta, [3; 32], at(3)).await.unwrap(),
        [3; 32]
    );
}

pub async fn rotation_revokes_and_replaces_a_key_in_one_change(store: Arc<dyn Store>) {
    let alpha = new_project(store.as_ref(), "alpha").await;
    let public = store
        .create_key(
            alpha,
            NewKey {
                name: "web".into(),
                role: KeyRole::Public,
                hash: [1; 32],
                prefix: "fl_pk_aaaa".into(),
                allowed_origins: vec!["https://app.example.com".into()],
            },
            at(1),
        )
        .await
        .unwrap();
    let before = store.latest_change().await.unwrap();
    let successor = NewKey {
        name: "ignored".into(),
        role: KeyRole::Admin,
        hash: [2; 32],
        prefix: "fl_pk_bbbb".into(),
        allowed_origins: Vec::new(),
    };
    let rotated = store
        .rotate_key(alpha, public.id, successor.clone(), at(2))
        .await
        .unwrap();
    // The successor keeps the name, role and origins; only the secret is new.
    assert_eq!(rotated.name, "web");
    assert_eq!(rotated.role, KeyRole::Public);
    assert_eq!(rotated.allowed_origins, ["https://app.example.com"]);
    assert_eq!(rotated.prefix, "fl_pk_bbbb");
    let old = store.key_by_hash([1; 32]).await.unwrap().unwrap();
    assert_eq!(old.revoked_at, Some(at(2)));
    assert_eq!(store.key_by_hash([2; 32]).await.unwrap(), Some(rotated));
    let changes = store.changes_since(before, 10).await.unwrap();
    assert!(!changes.is_empty());
    assert!(changes.iter().all(|c| c.topic == ChangeTopic::Keys));
    // A revoked key cannot be rotated, an unknown one is not found.
    let again = NewKey {
        hash: [3; 32],
        ..successor.clone()
    };
    assert!(matches!(
        store
            .rotate_key(alpha, public.id, again.clone(), at(3))
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        store.rotate_key(alpha, 9_999, again, at(3)).await,
        Err(StoreError::NotFound { what: "key", .. })
    ));
}

pub async fn the_audit_log_pages_newest_first_per_project(store: Arc<dyn Store>) {
    let alpha = new_project(store.as_ref(), "alpha").await;
    let beta = new_project(store.as_ref(), "beta").await;
    for i in 0..5 {
        store
            .record_audit(
                alpha,
                "key 1",
                "key.create",
                &i.to_string(),
                &serde_json::json!({"i": i}),
                at(i),
            )
            .await
            .unwrap();
    }
    store
        .record_audit(
            beta,
            "user 2",
            "member.add",
            "x",
            &serde_json::json!({}),
            at(9),
        )
        .await
        .unwrap();
    let first = store.list_audit(alpha, None, 3).await.unwrap();
    let targets: Vec<&str> = first.iter().map(|e| e.target.as_str()).collect();
    assert_eq!(targets, ["4", "3", "2"]);
    assert_eq!(first[0].details, serde_json::json!({"i": 4}));
    assert_eq!(first[0].at, at(4));
    let rest = store
        .list_audit(alpha, Some(first[2].seq), 3)
        .await
        .unwrap();
    let targets: Vec<&str> = rest.iter().map(|e| e.target.as_str()).collect();
    assert_eq!(targets, ["1", "0"]);
    assert_eq!(store.list_audit(beta, None, 10).await.unwrap().len(), 1);
}
