//! The Jobs window's calls to alyxd's JobService; the answers come back as [`JobsReply`]
//! messages.

use alyx_analysis::jobs::{Analysis, Target};
use alyx_client::{JobOutcome, JobSubmission};
use alyx_core::jobs::JobInfo;
use bevy::prelude::*;

use crate::remote::Remote;

/// What JobService answered (errors as messages for the user).
#[derive(Message, Debug)]
pub enum JobsReply {
    Jobs(Result<Vec<JobInfo>, String>),
    Result(Result<JobOutcome, String>),
    /// A job was submitted, cancelled or reprioritised (what happened), or why not.
    Done(Result<String, String>),
}

/// The caller's jobs, or everyone's.
pub(super) fn list(remote: &Remote, all: bool) {
    // "@me": the caller, whoever the token belongs to.
    let owner = if all { "" } else { "@me" };
    remote.call(move |c| async move {
        JobsReply::Jobs(c.jobs(owner, "", 100).await.map_err(|e| e.to_string()))
    });
}

pub(super) fn submit(
    remote: &Remote,
    dataset: String,
    name: String,
    analysis: Analysis,
    priority: i32,
    target: Target,
) {
    let job = JobSubmission {
        priority,
        target,
        ..JobSubmission::new(name, dataset, analysis)
    };
    remote.call(move |c| async move {
        JobsReply::Done(
            c.submit(&job)
                .await
                .map(|(id, seconds)| format!("job #{id} submitted; about {seconds:.0} s"))
                .map_err(|e| e.to_string()),
        )
    });
}

pub(super) fn cancel(remote: &Remote, id: u64) {
    remote.call(move |c| async move {
        JobsReply::Done(
            c.cancel(id, "from the desktop")
                .await
                .map(|j| format!("job #{id} {}", j.state))
                .map_err(|e| e.to_string()),
        )
    });
}

pub(super) fn set_priority(remote: &Remote, id: u64, priority: i32) {
    remote.call(move |c| async move {
        JobsReply::Done(
            c.set_priority(id, priority)
                .await
                .map(|j| format!("job #{id} priority {}", j.priority))
                .map_err(|e| e.to_string()),
        )
    });
}

/// A job's histograms merged so far.
pub(super) fn result(remote: &Remote, id: u64) {
    remote.call(move |c| async move {
        JobsReply::Result(c.job_result(id).await.map_err(|e| e.to_string()))
    });
}
