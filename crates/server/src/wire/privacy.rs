//! Bodies of the privacy routes: erasure requests and receipts.

use feedloop_store::privacy::{DeletedRows, ErasureReceipt};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/erasure`: whose data to erase.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasureBody {
    /// The end user's id, as traces carry it in `user_id` and feedback in `author`.
    pub user_id: String,
}

/// What an erasure deleted. The stored receipt keeps the SHA-256 of the user id, never the id:
/// `user_id` is only in the answer to the erasure request itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErasureReceiptBody {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub user_id_sha256: String,
    /// RFC 3339.
    pub requested_at: String,
    /// RFC 3339.
    pub completed_at: String,
    /// Rows deleted, by table (every table looked at is listed, with 0 when nothing was there).
    pub counts: DeletedRows,
    /// Lessons whose provenance cited the user's feedback: their text may quote the user and
    /// needs a person to review it.
    pub lessons_to_review: Vec<String>,
}

impl ErasureReceiptBody {
    pub fn new(receipt: ErasureReceipt, user_id: Option<String>) -> Self {
        Self {
            id: receipt.id,
            user_id,
            user_id_sha256: receipt.user_id_sha256,
            requested_at: receipt.requested_at.to_string(),
            completed_at: receipt.completed_at.to_string(),
            counts: receipt.deleted,
            lessons_to_review: receipt.lessons_to_review,
        }
    }
}

/// `GET /api/v1/erasure`: the project's receipts, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErasureReceiptList {
    pub receipts: Vec<ErasureReceiptBody>,
}
