//! How a command fails: an exit code and an error that says what to do.

/// Cannot start: privileges, kernel support, arguments. Nothing was recorded.
pub const EXIT_CANNOT_START: u8 = 2;
/// Failed while running (output error); `--verify`: the chain is broken.
pub const EXIT_RUNTIME: u8 = 1;
/// `--verify`: the chain is unbroken, but records were lost or its
/// beginning is missing.
pub const EXIT_INCOMPLETE: u8 = 3;

/// A command that failed, and the exit code it ends with.
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

/// Could not start: arguments, privileges, kernel support (exit 2).
pub fn cannot_start(error: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: EXIT_CANNOT_START,
        error: error.into(),
    }
}

/// Failed while running (exit 1).
pub fn runtime(error: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: EXIT_RUNTIME,
        error: error.into(),
    }
}

/// Writing to standard output: a reader that went away (`| head`) is the
/// end of the output, not a failure.
pub fn output(r: std::io::Result<()>) -> Result<(), Failure> {
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(runtime(
            anyhow::Error::new(e).context("writing to standard output"),
        )),
        _ => Ok(()),
    }
}
