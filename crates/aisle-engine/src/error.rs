//! What can go wrong with a request, in terms a front end can map to its own codes (the HTTP
//! layer to a status, the CLI to a message and an exit code).

use std::fmt;

/// The kind of a refusal or failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or breaks a documented rule.
    BadRequest,
    /// The caller may not do this.
    Forbidden,
    /// Something the request names does not exist.
    NotFound,
    /// An idempotency key was reused with a different request.
    KeyReused,
    /// A part of the engine the request needs is not set up (search without an index, a
    /// prediction without enough data).
    Unavailable,
    /// The writer's queue is full, or it is stopping: retry shortly.
    Busy,
    /// The privacy budget of this window is spent: exact figures need an admin key.
    BudgetSpent,
    /// A fault of ours; the details are logged, not sent.
    Internal,
}

/// A refusal or failure, with a message a person can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineError {
    /// What kind.
    pub kind: ErrorKind,
    /// What went wrong, for a person.
    pub message: String,
}

impl EngineError {
    fn new(kind: ErrorKind, message: impl Into<String>) -> EngineError {
        EngineError {
            kind,
            message: message.into(),
        }
    }

    /// A malformed request.
    pub fn bad_request(message: impl Into<String>) -> EngineError {
        EngineError::new(ErrorKind::BadRequest, message)
    }

    /// A request the caller's role may not make.
    pub fn forbidden(message: impl Into<String>) -> EngineError {
        EngineError::new(ErrorKind::Forbidden, message)
    }

    /// Something named that does not exist.
    pub fn not_found(message: impl Into<String>) -> EngineError {
        EngineError::new(ErrorKind::NotFound, message)
    }

    /// A part of the engine that is not set up.
    pub fn unavailable(message: impl Into<String>) -> EngineError {
        EngineError::new(ErrorKind::Unavailable, message)
    }

    /// The writer cannot take the request now.
    pub fn busy(message: impl Into<String>) -> EngineError {
        EngineError::new(ErrorKind::Busy, message)
    }

    /// The privacy budget is spent.
    pub fn budget_spent(message: impl Into<String>) -> EngineError {
        EngineError::new(ErrorKind::BudgetSpent, message)
    }

    /// An idempotency key reused with another request.
    pub fn key_reused(message: impl Into<String>) -> EngineError {
        EngineError::new(ErrorKind::KeyReused, message)
    }

    /// A fault of ours: `detail` goes to the log, the message says where to look.
    pub fn internal(context: &str, detail: impl fmt::Display) -> EngineError {
        tracing::error!(%detail, "{context}");
        EngineError::new(
            ErrorKind::Internal,
            format!("{context} failed; the server log has the details"),
        )
    }
}

impl EngineError {
    /// A write the store did not take: `Busy` (503, retry) when its database could not be
    /// reached, so a client knows nothing was stored and may send it again; internal
    /// otherwise.
    pub fn storing(e: &aisle_store::Error) -> EngineError {
        if e.is_unavailable() {
            tracing::warn!(%e, "the store's database is unreachable");
            EngineError::new(
                ErrorKind::Busy,
                "the database is unreachable, so nothing was stored: send the same request again shortly",
            )
        } else {
            EngineError::internal("storing the change", e)
        }
    }

    /// Whether the request was at fault (as opposed to the engine's state or a bug).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::BadRequest
                | ErrorKind::Forbidden
                | ErrorKind::NotFound
                | ErrorKind::KeyReused
        )
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EngineError {}

/// Results of the engine.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
