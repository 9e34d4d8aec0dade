//! Assertion macros for checks: each returns a [`crate::Failure`] with a message that says
//! what was expected and what the runtime did, instead of panicking.

/// Fail the check with a formatted message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err($crate::Failure::Fail(format!($($arg)+)));
        }
    };
}

/// Fail the check unless `left == right`, showing both.
macro_rules! ensure_eq {
    ($left:expr, $right:expr, $($arg:tt)+) => {
        match (&$left, &$right) {
            (l, r) => {
                if l != r {
                    return Err($crate::Failure::Fail(format!(
                        "{}: got {:?}, expected {:?}", format!($($arg)+), l, r
                    )));
                }
            }
        }
    };
}

/// Fail the check with a formatted message.
macro_rules! fail {
    ($($arg:tt)+) => {
        return Err($crate::Failure::Fail(format!($($arg)+)))
    };
}
