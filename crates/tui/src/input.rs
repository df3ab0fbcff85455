//! Keys (and the mouse) to [`Action`]s. Which keys mean what depends on
//! whether the filter bar is open and whether a recording is replayed.

use crate::state::ViewKind;
use crate::state::ui::Action;
use ratatui::crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEventKind,
};

/// What the keys steer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mode {
    /// The filter bar has the keys.
    pub bar: bool,
    /// A replay is steered (space, +/-, arrows seek).
    pub replay: bool,
}

/// The action a terminal event means here, if any.
pub fn action(ev: &Event, mode: Mode) -> Option<Action> {
    match ev {
        Event::Key(k) if k.kind != KeyEventKind::Release => key(k, mode),
        Event::Mouse(m) => match m.kind {
            MouseEventKind::ScrollDown => Some(Action::Scroll(3)),
            MouseEventKind::ScrollUp => Some(Action::Scroll(-3)),
            MouseEventKind::Down(MouseButton::Left) => Some(Action::Click(m.column, m.row)),
            _ => None,
        },
        _ => None,
    }
}

fn key(k: &KeyEvent, mode: Mode) -> Option<Action> {
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && k.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    if mode.bar {
        return Some(match k.code {
            KeyCode::Enter => Action::Apply,
            KeyCode::Esc => Action::Cancel,
            KeyCode::Backspace => Action::Backspace,
            KeyCode::Delete => Action::Delete,
            KeyCode::Left => Action::Left,
            KeyCode::Right => Action::Right,
            KeyCode::Home => Action::LineStart,
            KeyCode::End => Action::LineEnd,
            KeyCode::Char('a') if ctrl => Action::LineStart,
            KeyCode::Char('e') if ctrl => Action::LineEnd,
            KeyCode::Char(c) if !ctrl => Action::Char(c),
            _ => return None,
        });
    }
    Some(match k.code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Char(c @ '1'..='7') => Action::View(ViewKind::ALL[(c as u8 - b'1') as usize]),
        KeyCode::Tab => Action::NextView,
        KeyCode::BackTab => Action::PrevView,
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Home | KeyCode::Char('g') => Action::Home,
        KeyCode::End | KeyCode::Char('G') => Action::End,
        KeyCode::Enter | KeyCode::Right | KeyCode::Char('l') => Action::Enter,
        KeyCode::Esc | KeyCode::Backspace | KeyCode::Left | KeyCode::Char('h') => Action::Back,
        KeyCode::Char('>') | KeyCode::Char('.') => Action::SortNext,
        KeyCode::Char('<') | KeyCode::Char(',') => Action::SortPrev,
        KeyCode::Char('r') => Action::Reverse,
        KeyCode::Char(' ') if mode.replay => Action::ReplayPause,
        KeyCode::Char(' ') | KeyCode::Char('p') => Action::Freeze,
        KeyCode::Char('z') => Action::Reset,
        KeyCode::Char('b') => Action::Bits,
        KeyCode::Char('?') | KeyCode::F(1) => Action::Help,
        KeyCode::Char('/') => Action::OpenFilter,
        KeyCode::Char('\\') => Action::ClearFilter,
        KeyCode::Char('+') | KeyCode::Char('=') if mode.replay => Action::ReplayFaster,
        KeyCode::Char('-') if mode.replay => Action::ReplaySlower,
        KeyCode::Char('[') if mode.replay => Action::ReplaySeek(-10),
        KeyCode::Char(']') if mode.replay => Action::ReplaySeek(10),
        KeyCode::Char('{') if mode.replay => Action::ReplaySeek(-60),
        KeyCode::Char('}') if mode.replay => Action::ReplaySeek(60),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(code: KeyCode) -> Event {
        Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    #[test]
    fn keys_mean_different_things_in_the_bar_and_in_a_replay() {
        let live = Mode {
            bar: false,
            replay: false,
        };
        let bar = Mode {
            bar: true,
            replay: false,
        };
        let replay = Mode {
            bar: false,
            replay: true,
        };
        assert_eq!(action(&k(KeyCode::Char('q')), live), Some(Action::Quit));
        assert_eq!(action(&k(KeyCode::Char('q')), bar), Some(Action::Char('q')));
        assert_eq!(action(&k(KeyCode::Char(' ')), live), Some(Action::Freeze));
        assert_eq!(
            action(&k(KeyCode::Char(' ')), replay),
            Some(Action::ReplayPause)
        );
        assert_eq!(action(&k(KeyCode::Char('[')), live), None);
        assert_eq!(
            action(&k(KeyCode::Char('[')), replay),
            Some(Action::ReplaySeek(-10))
        );
        assert_eq!(
            action(&k(KeyCode::Char('5')), live),
            Some(Action::View(ViewKind::Remotes))
        );
        let ctrl_c = Event::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
        assert_eq!(action(&ctrl_c, bar), Some(Action::Quit));
    }
}
