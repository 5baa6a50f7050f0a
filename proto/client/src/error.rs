//! The one error of the client: each case is something a user can act on, and its message
//! (Display) is what they read. gRPC codes, transport errors and malformed answers are folded
//! into these cases here, so no caller matches on a `tonic::Status`.

use alyx_proto::ConversionError;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The backend URL is not a URL.
    #[error("invalid backend URL `{url}`: {reason}")]
    BadUrl { url: String, reason: String },
    /// alyxd cannot be reached (not running, wrong address, network down).
    #[error("cannot reach alyxd at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    /// alyxd refused the token: it is wrong, revoked or missing.
    #[error("alyxd at {url} refused the token ({detail}); check --token or ALYX_TOKEN")]
    Unauthenticated { url: String, detail: String },
    /// The token's role does not allow the call.
    #[error("not allowed: {0}")]
    PermissionDenied(String),
    /// The dataset, event, job, notebook or user named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request itself is wrong (an invalid query or binning, a job that already ended);
    /// the message says what to change.
    #[error("{0}")]
    Invalid(String),
    /// alyxd is busy or a service behind it is down (a full queue, no Spark cluster); trying
    /// again later may work.
    #[error("{0}")]
    Busy(String),
    /// alyxd answered with something this client cannot read (a different version?).
    #[error("alyxd's answer is unreadable: {0}")]
    Malformed(String),
    /// alyxd failed on its side; its log says more.
    #[error("alyxd failed: {0}")]
    Server(String),
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

impl ClientError {
    /// The case a status from `url` belongs to.
    pub(crate) fn from_status(url: &str, s: tonic::Status) -> Self {
        use tonic::Code;
        let message = s.message().to_owned();
        match s.code() {
            // A transport failure carries its cause; a service alyxd lacks does not.
            Code::Unavailable if std::error::Error::source(&s).is_some() || message.is_empty() => {
                Self::Unreachable {
                    url: url.to_owned(),
                    detail: if message.is_empty() {
                        "no answer".into()
                    } else {
                        message
                    },
                }
            }
            Code::Unavailable
            | Code::ResourceExhausted
            | Code::DeadlineExceeded
            | Code::Aborted => Self::Busy(message),
            Code::Unauthenticated => Self::Unauthenticated {
                url: url.to_owned(),
                detail: message,
            },
            Code::PermissionDenied => Self::PermissionDenied(message),
            Code::NotFound => Self::NotFound(message),
            Code::InvalidArgument
            | Code::FailedPrecondition
            | Code::AlreadyExists
            | Code::OutOfRange
            | Code::Cancelled => Self::Invalid(message),
            Code::Unimplemented => {
                Self::Malformed(format!("alyxd does not offer this call: {message}"))
            }
            Code::Ok | Code::Unknown | Code::Internal | Code::DataLoss => Self::Server(message),
        }
    }
}

impl From<ConversionError> for ClientError {
    fn from(e: ConversionError) -> Self {
        Self::Malformed(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::{Code, Status};

    #[test]
    fn each_code_is_one_case_with_a_message_for_people() {
        let url = "http://alyxd:50051";
        let case = |code, message: &str| ClientError::from_status(url, Status::new(code, message));
        assert!(matches!(
            case(Code::Unauthenticated, "bad token"),
            ClientError::Unauthenticated { .. }
        ));
        let e = case(Code::Unauthenticated, "bad token").to_string();
        assert!(e.contains(url) && e.contains("--token"), "{e}");
        assert!(
            matches!(case(Code::NotFound, "no job 7"), ClientError::NotFound(m) if m == "no job 7")
        );
        assert!(matches!(
            case(Code::InvalidArgument, "x"),
            ClientError::Invalid(_)
        ));
        assert!(matches!(
            case(Code::FailedPrecondition, "x"),
            ClientError::Invalid(_)
        ));
        assert!(matches!(
            case(Code::PermissionDenied, "x"),
            ClientError::PermissionDenied(_)
        ));
        assert!(matches!(
            case(Code::ResourceExhausted, "x"),
            ClientError::Busy(_)
        ));
        // A service alyxd lacks is not an unreachable alyxd.
        assert!(matches!(
            case(Code::Unavailable, "no Spark cluster is configured"),
            ClientError::Busy(_)
        ));
        assert!(matches!(
            case(Code::Unavailable, ""),
            ClientError::Unreachable { .. }
        ));
        assert!(matches!(case(Code::Internal, "x"), ClientError::Server(_)));
        assert!(matches!(case(Code::DataLoss, "x"), ClientError::Server(_)));
    }
}
