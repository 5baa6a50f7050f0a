//! Queries, histograms and jobs on the wire: engines, result column types, diagnostics, query
//! ASTs, binnings, histograms, histogram specifications and job targets. What comes off the
//! wire is checked as it is converted: a histogram whose arrays do not fit its binning, or a
//! binning that is not one, is a `ConversionError`, never a panic further on.

use alyx_core::ast::{At, Diagnostic, Engine, Query, Type};
use alyx_core::histogram::{Binning, Histogram};
use alyx_core::jobs::{HistogramSpec, JobInfo, JobState, Target, Transition};

use crate::{ConversionError, v1};

impl From<Engine> for v1::Engine {
    fn from(e: Engine) -> Self {
        match e {
            Engine::Local => v1::Engine::Local,
            Engine::Postgres => v1::Engine::Postgres,
            Engine::Spark => v1::Engine::Spark,
        }
    }
}

impl From<v1::Engine> for Engine {
    fn from(e: v1::Engine) -> Self {
        match e {
            v1::Engine::Local => Engine::Local,
            v1::Engine::Postgres => Engine::Postgres,
            v1::Engine::Spark => Engine::Spark,
        }
    }
}

/// The engine a request's `engine` field names.
pub fn engine(e: i32) -> Result<Engine, ConversionError> {
    v1::Engine::try_from(e)
        .map(Engine::from)
        .map_err(|_| ConversionError::Invalid(format!("unknown engine {e}")))
}

impl From<Type> for v1::ColumnType {
    fn from(t: Type) -> Self {
        match t {
            Type::Int => v1::ColumnType::Int,
            Type::Float => v1::ColumnType::Float,
            Type::Bool => v1::ColumnType::Bool,
            Type::Text => v1::ColumnType::Text,
        }
    }
}

impl From<v1::ColumnType> for Type {
    fn from(t: v1::ColumnType) -> Self {
        match t {
            v1::ColumnType::Int => Type::Int,
            v1::ColumnType::Float => Type::Float,
            v1::ColumnType::Bool => Type::Bool,
            v1::ColumnType::Text => Type::Text,
        }
    }
}

/// Result columns: names and types.
pub fn columns(cols: &[(String, Type)]) -> Vec<v1::ResultColumn> {
    cols.iter()
        .map(|(name, t)| v1::ResultColumn {
            name: name.clone(),
            r#type: v1::ColumnType::from(*t) as i32,
        })
        .collect()
}

/// Result columns off the wire.
pub fn columns_from(cols: &[v1::ResultColumn]) -> Result<Vec<(String, Type)>, ConversionError> {
    cols.iter()
        .map(|c| {
            let t = v1::ColumnType::try_from(c.r#type).map_err(|_| {
                ConversionError::Invalid(format!(
                    "column `{}` has unknown type {}",
                    c.name, c.r#type
                ))
            })?;
            Ok((c.name.clone(), t.into()))
        })
        .collect()
}

impl From<&Diagnostic> for v1::Diagnostic {
    fn from(d: &Diagnostic) -> Self {
        Self {
            message: d.message.clone(),
            line: d.line,
            column: d.column,
        }
    }
}

impl From<v1::Diagnostic> for Diagnostic {
    fn from(d: v1::Diagnostic) -> Self {
        let at = (d.line > 0).then_some((d.line, d.column));
        Diagnostic::new(d.message, At(at))
    }
}

/// A query AST goes as JSON; SQL text goes as it is.
impl TryFrom<&Query> for v1::QueryText {
    type Error = ConversionError;

    fn try_from(q: &Query) -> Result<Self, ConversionError> {
        let json = serde_json::to_string(q)
            .map_err(|e| ConversionError::Invalid(format!("cannot encode the query: {e}")))?;
        Ok(Self {
            kind: Some(v1::query_text::Kind::QueryJson(json)),
        })
    }
}

/// SQL text as a request's query.
pub fn sql(text: &str) -> v1::QueryText {
    v1::QueryText {
        kind: Some(v1::query_text::Kind::Sql(text.to_owned())),
    }
}

/// Fixed bins as bins/lo/hi, variable ones as their edges.
impl From<&Binning> for v1::Binning {
    fn from(b: &Binning) -> Self {
        match b {
            Binning::Fixed { bins, lo, hi } => Self {
                bins: u32::try_from(*bins).unwrap_or(u32::MAX),
                lo: *lo,
                hi: *hi,
                edges: vec![],
            },
            Binning::Variable(edges) => Self {
                edges: edges.clone(),
                ..Default::default()
            },
        }
    }
}

/// A binning off the wire, validated as any binning is (bin count, finite increasing edges).
impl TryFrom<v1::Binning> for Binning {
    type Error = ConversionError;

    fn try_from(b: v1::Binning) -> Result<Self, ConversionError> {
        if b.edges.is_empty() {
            Binning::fixed(b.bins as usize, b.lo, b.hi)
        } else {
            Binning::variable(b.edges)
        }
        .map_err(|e| ConversionError::Invalid(e.to_string()))
    }
}

impl From<&Histogram> for v1::HistogramResponse {
    fn from(h: &Histogram) -> Self {
        Self {
            edges: h.binning.edges(),
            sum_w: h.sum_w.clone(),
            sum_w2: h.sum_w2.clone(),
            entries: h.entries.clone(),
            underflow: h.underflow,
            overflow: h.overflow,
            missing: h.missing,
        }
    }
}

/// The histogram of `binning` (what was asked for) that `h` carries: its arrays must hold one
/// value per bin of that binning.
pub fn histogram(binning: Binning, h: v1::HistogramResponse) -> Result<Histogram, ConversionError> {
    let mut histogram = Histogram::from_parts(binning, h.sum_w, h.sum_w2, h.entries)
        .map_err(|e| ConversionError::Invalid(e.to_string()))?;
    histogram.underflow = h.underflow;
    histogram.overflow = h.overflow;
    histogram.missing = h.missing;
    Ok(histogram)
}

impl From<&HistogramSpec> for v1::HistogramSpec {
    fn from(h: &HistogramSpec) -> Self {
        Self {
            column: h.column.clone(),
            weight: h.weight.clone().unwrap_or_default(),
            binning: Some((&h.binning).into()),
        }
    }
}

impl TryFrom<v1::HistogramSpec> for HistogramSpec {
    type Error = ConversionError;

    fn try_from(h: v1::HistogramSpec) -> Result<Self, ConversionError> {
        Ok(Self {
            column: h.column,
            weight: (!h.weight.is_empty()).then_some(h.weight),
            binning: h.binning.unwrap_or_default().try_into()?,
        })
    }
}

impl From<Target> for v1::JobTarget {
    fn from(t: Target) -> Self {
        match t {
            Target::Auto => v1::JobTarget::Auto,
            Target::Local => v1::JobTarget::Local,
            Target::Spark => v1::JobTarget::Spark,
            Target::Slurm => v1::JobTarget::Slurm,
        }
    }
}

impl From<v1::JobTarget> for Target {
    fn from(t: v1::JobTarget) -> Self {
        match t {
            v1::JobTarget::Auto => Target::Auto,
            v1::JobTarget::Local => Target::Local,
            v1::JobTarget::Spark => Target::Spark,
            v1::JobTarget::Slurm => Target::Slurm,
        }
    }
}

/// The target a message's `target` field names.
pub fn target(t: i32) -> Result<Target, ConversionError> {
    v1::JobTarget::try_from(t)
        .map(Target::from)
        .map_err(|_| ConversionError::Invalid(format!("unknown target {t}")))
}

fn job_state(s: &str) -> Result<JobState, ConversionError> {
    JobState::parse(s).ok_or_else(|| ConversionError::Invalid(format!("unknown job state `{s}`")))
}

impl TryFrom<v1::Transition> for Transition {
    type Error = ConversionError;

    fn try_from(t: v1::Transition) -> Result<Self, ConversionError> {
        Ok(Self {
            at_unix_ms: t.at_unix_ms,
            from: (!t.from.is_empty())
                .then(|| job_state(&t.from))
                .transpose()?,
            to: job_state(&t.to)?,
            reason: t.reason,
        })
    }
}

impl TryFrom<v1::Job> for JobInfo {
    type Error = ConversionError;

    fn try_from(j: v1::Job) -> Result<Self, ConversionError> {
        let time = |ms: i64| (ms != 0).then_some(ms);
        Ok(Self {
            id: j.id,
            state: job_state(&j.state)?,
            target: target(j.target)?,
            history: j
                .history
                .into_iter()
                .map(Transition::try_from)
                .collect::<Result<_, _>>()?,
            histograms: j
                .histograms
                .into_iter()
                .map(HistogramSpec::try_from)
                .collect::<Result<_, _>>()?,
            owner: j.owner,
            name: j.name,
            dataset: j.dataset,
            reason: j.reason,
            priority: j.priority,
            cores: j.cores,
            memory_mb: j.memory_mb,
            tasks_total: j.tasks_total,
            tasks_done: j.tasks_done,
            tasks_running: j.tasks_running,
            tasks_failed: j.tasks_failed,
            events_total: j.events_total,
            events_done: j.events_done,
            estimated_seconds_left: j.estimated_seconds_left,
            submitted_unix_ms: j.submitted_unix_ms,
            started_unix_ms: time(j.started_unix_ms),
            finished_unix_ms: time(j.finished_unix_ms),
            sql: j.sql,
            running_on: j.running_on.into_iter().collect(),
            readers: j.readers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_and_binnings_survive_the_wire_and_bad_shapes_are_refused() {
        for binning in [
            Binning::fixed(4, 0.0, 2.0).expect("fixed"),
            Binning::variable(vec![0.0, 1.0, 10.0]).expect("variable"),
        ] {
            let back = Binning::try_from(v1::Binning::from(&binning)).expect("binning");
            assert_eq!(back, binning);
            let mut h = Histogram::new(binning.clone());
            h.fill(0.5, 2.0);
            h.fill(-1.0, 1.0);
            let wire = v1::HistogramResponse::from(&h);
            assert_eq!(histogram(binning.clone(), wire.clone()).expect("fits"), h);
            let mut short = wire;
            short.sum_w.pop();
            assert!(histogram(binning, short).is_err());
        }
        assert!(Binning::try_from(v1::Binning::default()).is_err(), "0 bins");
        for t in Target::ALL {
            assert_eq!(target(v1::JobTarget::from(t) as i32).expect("target"), t);
        }
        for e in Engine::ALL {
            assert_eq!(engine(v1::Engine::from(e) as i32).expect("engine"), e);
        }
        assert!(engine(99).is_err());
    }
}
