//! An in-process server speaking the GitHub REST shapes the github source reads.
