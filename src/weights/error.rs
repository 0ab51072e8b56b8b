//! How reading or fitting a checkpoint fails: every problem named with the checkpoint's own keys.

use std::fmt;

/// How many problems an error message lists before summarising the rest.
const LISTED_PROBLEMS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("cannot read checkpoint {source_name}: {detail}")]
    Unreadable { source_name: String, detail: String },
    #[error(
        "checkpoint {source_name} holds {held} values and its config asks for far more (past \
         `{key}` {expected:?}): the config describes another, larger model; nothing was built"
    )]
    Oversized {
        source_name: String,
        held: u64,
        key: String,
        expected: Vec<usize>,
    },
    #[error("checkpoint {source_name} does not fit the {model} model: {}", describe(.problems))]
    Mismatch {
        source_name: String,
        model: String,
        problems: Vec<Problem>,
    },
}

/// One thing wrong between a checkpoint and the model that wants to load it.
#[derive(Clone, Debug, PartialEq)]
pub enum Problem {
    Missing {
        key: String,
        expected: Vec<usize>,
    },
    Shape {
        key: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    NotFloat {
        key: String,
        dtype: String,
    },
    NotFinite {
        key: String,
        count: usize,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing { key, expected } => write!(f, "`{key}` {expected:?} is missing"),
            Problem::Shape {
                key,
                expected,
                found,
            } => {
                write!(
                    f,
                    "`{key}` has shape {found:?}, the config needs {expected:?}"
                )
            }
            Problem::NotFloat { key, dtype } => write!(f, "`{key}` is {dtype}, not a float tensor"),
            Problem::NotFinite { key, count } => {
                write!(f, "`{key}` holds {count} NaN or infinite values")
            }
        }
    }
}

fn describe(problems: &[Problem]) -> String {
    let mut text: Vec<String> = problems
        .iter()
        .take(LISTED_PROBLEMS)
        .map(ToString::to_string)
        .collect();
    if problems.len() > LISTED_PROBLEMS {
        text.push(format!("and {} more", problems.len() - LISTED_PROBLEMS));
    }
    text.join("; ")
}

pub(super) fn unreadable(source_name: &str, detail: impl fmt::Display) -> WeightsError {
    WeightsError::Unreadable {
        source_name: source_name.to_string(),
        detail: detail.to_string(),
    }
}
