//! Why a LiveStore request failed, typed, and encoded into `@livestore/sync-cf`'s error objects
//! in one place (at the edge of the component, when the `Exit` frame is built).

use crate::encode;
use crate::host::PushRejection;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The payload violates the schema: the request dies (`Cause.Die`).
    Invalid(String),
    StoreMismatch {
        named: String,
        store: String,
    },
    BatchTooLarge {
        size: usize,
        limit: usize,
    },
    BackendIdMismatch {
        expected: String,
        received: String,
    },
    ServerAhead {
        head: i64,
        provided: i64,
    },
    InvalidBatch(String),
    /// A connection already runs as many pulls as one may.
    TooManyPulls {
        limit: usize,
    },
    /// An on-push or on-pull hook refused the request.
    HookRejected {
        message: String,
        stage: &'static str,
    },
    /// Storage failed at `stage` (`insert`, `count`, `select`).
    Storage {
        message: String,
        stage: &'static str,
    },
}

impl RequestError {
    /// The `Exit` frame that fails `request_id`.
    pub fn exit(&self, request_id: &str) -> String {
        match self {
            RequestError::Invalid(message) => encode::exit_die(request_id, message),
            failed => encode::exit_fail(request_id, &failed.error_object()),
        }
    }

    /// The encoded error object (`Cause.Fail`'s `error`).
    fn error_object(&self) -> String {
        match self {
            RequestError::Invalid(message) => encode::unknown_error("Error", message, "validate"),
            RequestError::StoreMismatch { named, store } => encode::unknown_error(
                self.name(),
                &format!("request names store {named:?} but this connection belongs to store {store:?}"),
                "validate",
            ),
            RequestError::BatchTooLarge { size, limit } => encode::unknown_error(
                self.name(),
                &format!("a push of {size} events exceeds this server's limit of {limit}"),
                "validate",
            ),
            RequestError::BackendIdMismatch { expected, received } => {
                encode::backend_id_mismatch_error(expected, received)
            }
            RequestError::ServerAhead { head, provided } => encode::server_ahead_error(*head, *provided),
            RequestError::InvalidBatch(message) => encode::unknown_error(self.name(), message, "validate"),
            RequestError::TooManyPulls { limit } => encode::unknown_error(
                self.name(),
                &format!("this connection already runs {limit} pulls, the most one may; interrupt one first"),
                "validate",
            ),
            RequestError::HookRejected { message, stage } => encode::unknown_error(self.name(), message, stage),
            RequestError::Storage { message, stage } => encode::unknown_error(self.name(), message, stage),
        }
    }

    /// The error's name in logs (the cause's name for an `UnknownError`).
    pub fn name(&self) -> &'static str {
        match self {
            RequestError::Invalid(_) => "invalid",
            RequestError::StoreMismatch { .. } => "StoreMismatchError",
            RequestError::BatchTooLarge { .. } => "BatchTooLargeError",
            RequestError::BackendIdMismatch { .. } => "BackendIdMismatchError",
            RequestError::ServerAhead { .. } => "ServerAheadError",
            RequestError::InvalidBatch(_) => "InvalidBatchError",
            RequestError::TooManyPulls { .. } => "TooManyPullsError",
            RequestError::HookRejected { .. } => "HookRejected",
            RequestError::Storage { .. } => "StorageError",
        }
    }

    /// The metric label of a rejected push.
    pub fn push_rejection(&self) -> PushRejection {
        match self {
            RequestError::Invalid(_) => PushRejection::InvalidPayload,
            RequestError::StoreMismatch { .. } => PushRejection::StoreMismatch,
            RequestError::BatchTooLarge { .. } => PushRejection::TooManyEvents,
            RequestError::BackendIdMismatch { .. } => PushRejection::BackendIdMismatch,
            RequestError::ServerAhead { .. } => PushRejection::ServerAhead,
            RequestError::InvalidBatch(_) => PushRejection::InvalidBatch,
            RequestError::TooManyPulls { .. } => PushRejection::InvalidPayload,
            RequestError::HookRejected { .. } => PushRejection::Hook,
            RequestError::Storage { .. } => PushRejection::StorageError,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_encode_as_the_livestore_client_decodes_them() {
        assert_eq!(
            RequestError::ServerAhead { head: 3, provided: 1 }.exit("2"),
            r#"{"_tag":"Exit","requestId":"2","exit":{"_tag":"Failure","cause":{"_tag":"Fail","error":{"minimumExpectedNum":3,"providedNum":1,"_tag":"ServerAheadError"}}}}"#
        );
        assert_eq!(
            RequestError::Invalid("bad".into()).exit("1"),
            r#"{"_tag":"Exit","requestId":"1","exit":{"_tag":"Failure","cause":{"_tag":"Die","defect":"bad"}}}"#
        );
        let hook = RequestError::HookRejected { message: "no".into(), stage: "onPush" }.exit("3");
        assert!(
            hook.contains(
                r#""cause":{"name":"HookRejected","message":"no"},"payload":{"stage":"onPush"},"_tag":"UnknownError""#
            ),
            "{hook}"
        );
    }
}
