//! What the user asked for: the view, sort, selection, drill-down, the
//! filter bar, the help overlay. [`Ui::act`] applies one [`Action`].

use super::columns::{ColKind, columns};
use super::model::Model;
use super::{GroupKey, ViewKind};
use netwho_query::Filter;

/// How rows are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    /// Sent + received per second (then total).
    Rate,
    /// Sent + received since start.
    Total,
    /// A column.
    Col(ColKind),
}

/// The filter being typed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilterBar {
    /// The text typed.
    pub input: String,
    /// Cursor, in chars.
    pub cursor: usize,
    /// The parse error of the input: (column in chars, message).
    pub error: Option<(usize, usize, String)>,
}

/// A user's intent, from a key (see `input`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Quit.
    Quit,
    /// Show a view.
    View(ViewKind),
    /// The next view.
    NextView,
    /// The previous view.
    PrevView,
    /// Select the row above.
    Up,
    /// Select the row below.
    Down,
    /// A page up.
    PageUp,
    /// A page down.
    PageDown,
    /// The first row.
    Home,
    /// The last row.
    End,
    /// Open the selected row's detail.
    Enter,
    /// Back from the detail (or close the help).
    Back,
    /// Sort by the next column.
    SortNext,
    /// Sort by the previous column.
    SortPrev,
    /// Reverse the order.
    Reverse,
    /// Freeze or unfreeze the display.
    Freeze,
    /// Reset the totals.
    Reset,
    /// Bits or bytes.
    Bits,
    /// The help.
    Help,
    /// Open the filter bar.
    OpenFilter,
    /// Clear the filter.
    ClearFilter,
    // in the filter bar
    /// Type a character.
    Char(char),
    /// Delete before the cursor.
    Backspace,
    /// Delete at the cursor.
    Delete,
    /// Cursor left.
    Left,
    /// Cursor right.
    Right,
    /// Cursor to the start.
    LineStart,
    /// Cursor to the end.
    LineEnd,
    /// Apply the filter.
    Apply,
    /// Close the bar without applying.
    Cancel,
    // a replay
    /// Pause or go on.
    ReplayPause,
    /// Twice the speed.
    ReplayFaster,
    /// Half the speed.
    ReplaySlower,
    /// Seconds back (negative) or on.
    ReplaySeek(i32),
    /// A mouse wheel: rows.
    Scroll(i32),
    /// A mouse click on a screen row (0 = the tab bar).
    Click(u16, u16),
}

/// What the caller must do after an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Nothing.
    None,
    /// End the view.
    Quit,
    /// The user stopped (or restarted) the display: hold batches.
    Freeze(bool),
    /// Pause or resume the replay.
    ReplayPause,
    /// Faster (true) or slower.
    ReplaySpeed(bool),
    /// Seek this many steps (negative: back).
    ReplaySeek(i32),
}

#[derive(Clone, Debug)]
/// What the user chose: view, sort, selection, detail, filter bar, toggles.
pub struct Ui {
    /// The view shown.
    pub view: ViewKind,
    /// Each view's sort key.
    pub sort: [SortKey; 7],
    /// Each view's order.
    pub reverse: [bool; 7],
    /// The selected row, by key (kept across resorting) and by index.
    selected_key: [Option<GroupKey>; 7],
    selected: [usize; 7],
    /// Each view's first row shown.
    pub offset: [usize; 7],
    /// The row whose detail is open.
    pub detail: Option<(ViewKind, GroupKey)>,
    /// The selected flow in the detail.
    pub detail_sel: usize,
    /// The detail's first flow shown.
    pub detail_offset: usize,
    /// The filter bar, when open.
    pub bar: Option<FilterBar>,
    /// The help is shown.
    pub help: bool,
    /// The display is frozen.
    pub frozen: bool,
    /// Rates in bits.
    pub bits: bool,
    /// Colors.
    pub color: bool,
    /// Rows of the body (for paging and scrolling).
    pub page: usize,
    /// Coverage, from the collector's status records.
    pub coverage: Option<f64>,
    /// A replay's position.
    pub replay: Option<String>,
    /// A passing message.
    pub message: Option<String>,
    /// The keys of the rows last shown (for moving the selection).
    pub shown: Vec<GroupKey>,
    /// Flows that fit in the detail.
    pub detail_rows: usize,
}

impl Ui {
    /// The start: the processes view, sorted by rate.
    pub fn new(color: bool, bits: bool) -> Self {
        Ui {
            view: ViewKind::Processes,
            sort: [SortKey::Rate; 7],
            reverse: [false; 7],
            selected_key: Default::default(),
            selected: [0; 7],
            offset: [0; 7],
            detail: None,
            detail_sel: 0,
            detail_offset: 0,
            bar: None,
            help: false,
            frozen: false,
            bits,
            color,
            page: 10,
            coverage: None,
            replay: None,
            message: None,
            shown: Vec::new(),
            detail_rows: 0,
        }
    }

    /// The selected row of the current view: its key and index.
    pub fn selection(&self) -> (Option<&GroupKey>, usize) {
        let v = self.view.index();
        (self.selected_key[v].as_ref(), self.selected[v])
    }

    /// Remember what the last frame showed (the selection follows keys).
    pub fn shown(&mut self, keys: Vec<GroupKey>, detail_rows: usize) {
        let v = self.view.index();
        if let Some(k) = &self.selected_key[v]
            && let Some(i) = keys.iter().position(|x| x == k)
        {
            self.selected[v] = i;
        }
        self.selected[v] = self.selected[v].min(keys.len().saturating_sub(1));
        self.selected_key[v] = keys.get(self.selected[v]).cloned();
        self.shown = keys;
        self.detail_rows = detail_rows;
        self.detail_sel = self.detail_sel.min(detail_rows.saturating_sub(1));
    }

    fn move_to(&mut self, i: isize) {
        let page = self.page.max(1);
        if self.detail.is_some() {
            let n = self.detail_rows;
            let i = i.clamp(0, n.saturating_sub(1) as isize) as usize;
            self.detail_sel = i;
            self.detail_offset = scroll(self.detail_offset, i, page);
            return;
        }
        let v = self.view.index();
        let n = self.shown.len();
        let i = i.clamp(0, n.saturating_sub(1) as isize) as usize;
        self.selected[v] = i;
        self.selected_key[v] = self.shown.get(i).cloned();
        self.offset[v] = scroll(self.offset[v], i, page);
    }

    fn current(&self) -> isize {
        match self.detail {
            Some(_) => self.detail_sel as isize,
            None => self.selected[self.view.index()] as isize,
        }
    }

    fn sort_step(&mut self, reset: bool, forward: bool) {
        let v = self.view.index();
        let mut keys = vec![SortKey::Rate, SortKey::Total];
        keys.extend(
            columns(self.view, reset)
                .iter()
                .filter(|c| c.kind != ColKind::History)
                .map(|c| SortKey::Col(c.kind)),
        );
        let at = keys.iter().position(|k| *k == self.sort[v]).unwrap_or(0);
        let n = keys.len();
        let next = if forward {
            (at + 1) % n
        } else {
            (at + n - 1) % n
        };
        self.sort[v] = keys[next];
    }

    fn set_view(&mut self, v: ViewKind) {
        self.view = v;
        self.detail = None;
        self.shown.clear();
    }

    /// Apply one action; the model is changed by filter and reset only.
    pub fn act(&mut self, a: Action, m: &mut Model) -> Effect {
        self.message = None;
        if a == Action::Quit {
            return Effect::Quit;
        }
        if self.help && !matches!(a, Action::Quit) {
            // any key closes the help
            self.help = false;
            return Effect::None;
        }
        if self.bar.is_some() {
            match self.bar.as_mut().and_then(|b| bar_act(b, a)) {
                Some(apply) => self.finish_bar(apply, m),
                None => self.check_bar(),
            }
            return Effect::None;
        }
        let page = self.page.max(1) as isize;
        match a {
            Action::Quit => return Effect::Quit,
            Action::View(v) => self.set_view(v),
            Action::NextView | Action::PrevView => {
                let n = ViewKind::ALL.len();
                let i = self.view.index();
                let j = if a == Action::NextView {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                self.set_view(ViewKind::ALL[j]);
            }
            Action::Up => self.move_to(self.current() - 1),
            Action::Down => self.move_to(self.current() + 1),
            Action::PageUp => self.move_to(self.current() - page),
            Action::PageDown => self.move_to(self.current() + page),
            Action::Home => self.move_to(0),
            Action::End => self.move_to(isize::MAX / 2),
            Action::Scroll(n) => self.move_to(self.current() + n as isize),
            Action::Enter => {
                if self.detail.is_none()
                    && let Some(k) = self.shown.get(self.selected[self.view.index()])
                {
                    self.detail = Some((self.view, k.clone()));
                    self.detail_sel = 0;
                    self.detail_offset = 0;
                }
            }
            Action::Back => self.detail = None,
            Action::SortNext => self.sort_step(m.reset_at.is_some(), true),
            Action::SortPrev => self.sort_step(m.reset_at.is_some(), false),
            Action::Reverse => {
                let v = self.view.index();
                self.reverse[v] = !self.reverse[v];
            }
            Action::Freeze => {
                self.frozen = !self.frozen;
                return Effect::Freeze(self.frozen);
            }
            Action::Reset => {
                m.reset(m.now);
                self.message = Some("totals since reset start now: SENT(R), RECV(R)".into());
            }
            Action::Bits => self.bits = !self.bits,
            Action::Help => self.help = true,
            Action::OpenFilter => {
                let input = m.filter().map(|f| f.to_string()).unwrap_or_default();
                let cursor = input.chars().count();
                self.bar = Some(FilterBar {
                    input,
                    cursor,
                    error: None,
                });
            }
            Action::ClearFilter => {
                if m.filter().is_some() {
                    m.set_filter(None);
                    self.message = Some("filter cleared".into());
                }
            }
            Action::ReplayPause => return Effect::ReplayPause,
            Action::ReplayFaster => return Effect::ReplaySpeed(true),
            Action::ReplaySlower => return Effect::ReplaySpeed(false),
            Action::ReplaySeek(s) => return Effect::ReplaySeek(s),
            Action::Click(_, row) => {
                if row == 0 {
                    return Effect::None;
                }
                // body rows start below the tab bar, summary and header
                let i = (row as isize) - 3;
                if i >= 0 {
                    let base = match self.detail {
                        Some(_) => self.detail_offset,
                        None => self.offset[self.view.index()],
                    };
                    self.move_to(base as isize + i);
                }
            }
            Action::Char(_)
            | Action::Backspace
            | Action::Delete
            | Action::Left
            | Action::Right
            | Action::LineStart
            | Action::LineEnd
            | Action::Apply
            | Action::Cancel => {}
        }
        Effect::None
    }

    fn finish_bar(&mut self, apply: bool, m: &mut Model) {
        let Some(bar) = self.bar.take() else { return };
        if !apply {
            return;
        }
        let text = bar.input.trim().to_string();
        let text = text.as_str();
        if text.is_empty() {
            m.set_filter(None);
            self.message = Some("filter cleared".into());
            return;
        }
        match Filter::parse(text) {
            Ok(f) => {
                m.set_filter(Some(f));
                self.message = Some(
                    "filter applied to the flows held now (closed ones for the keep time)".into(),
                );
                self.detail = None;
            }
            Err(e) => {
                // stays open with the error shown
                let mut bar = bar;
                bar.error = Some(error_at(text, &e));
                self.bar = Some(bar);
            }
        }
    }

    /// Show a filter's parse error under the input as it is typed.
    fn check_bar(&mut self) {
        if let Some(bar) = &mut self.bar {
            let t = bar.input.trim_end();
            bar.error = if t.trim().is_empty() {
                None
            } else {
                Filter::parse(t).err().map(|e| error_at(t, &e))
            };
        }
    }
}

/// Keep row `i` within a window of `page` rows starting at `offset`.
pub fn scroll(offset: usize, i: usize, page: usize) -> usize {
    if i < offset {
        i
    } else if i >= offset + page {
        i + 1 - page
    } else {
        offset
    }
}

/// (start column, end column, message) of a filter error, in chars.
fn error_at(text: &str, e: &netwho_query::FilterError) -> (usize, usize, String) {
    let chars = |b: usize| {
        text.get(..b.min(text.len()))
            .map_or(0, |s| s.chars().count())
    };
    (
        chars(e.span.start),
        chars(e.span.end).max(chars(e.span.start) + 1),
        e.message.clone(),
    )
}

/// Edit the bar; Some(apply?) when it closes.
fn bar_act(bar: &mut FilterBar, a: Action) -> Option<bool> {
    let byte = |s: &str, c: usize| s.char_indices().nth(c).map_or(s.len(), |(i, _)| i);
    match a {
        Action::Char(c) => {
            let at = byte(&bar.input, bar.cursor);
            bar.input.insert(at, c);
            bar.cursor += 1;
        }
        Action::Backspace if bar.cursor > 0 => {
            bar.cursor -= 1;
            let at = byte(&bar.input, bar.cursor);
            bar.input.remove(at);
        }
        Action::Delete if bar.cursor < bar.input.chars().count() => {
            let at = byte(&bar.input, bar.cursor);
            bar.input.remove(at);
        }
        Action::Left => bar.cursor = bar.cursor.saturating_sub(1),
        Action::Right => bar.cursor = (bar.cursor + 1).min(bar.input.chars().count()),
        Action::LineStart => bar.cursor = 0,
        Action::LineEnd => bar.cursor = bar.input.chars().count(),
        Action::Apply => return Some(true),
        Action::Cancel | Action::Quit => return Some(false),
        _ => {}
    }
    None
}
