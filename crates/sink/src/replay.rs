//! How a viewer steers a replay and learns where it stands (the replay
//! itself runs in the pipeline).

/// A viewer's request to a running replay (the keys of `netwho top -r`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ReplayCmd {
    /// Pause, or go on.
    Pause,
    /// Twice the speed.
    Faster,
    /// Half the speed.
    Slower,
    /// Jump this many recorded ns forward (negative: back).
    Seek(i64),
    /// Stop the replay.
    Quit,
}

/// Where a replay stands, for the viewer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReplayPos {
    /// Recorded wall time of the latest item.
    pub at_unix_ns: i128,
    /// Recorded seconds per second; None: as fast as it reads.
    pub speed: Option<f64>,
    /// Waiting for the viewer to go on.
    pub paused: bool,
    /// Going to this recorded wall time without showing the way.
    pub seeking: Option<i128>,
    /// The recording has ended here (a viewer may still seek back).
    pub ended: bool,
}
