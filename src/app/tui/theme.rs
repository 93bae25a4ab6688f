//! Colours, styles and the glyphs that carry state as well as colour.

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use crate::node::PeerState;
use crate::protocol::NodeId;

/// Author colours (of the dark palette; [`Palette::Light`] swaps each for a dark shade):
/// none of them red (kept for errors) or dark grey (kept for secondary text).
const AUTHOR_COLORS: [Color; 10] = [
    Color::Cyan,
    Color::Green,
    Color::Yellow,
    Color::Magenta,
    Color::Blue,
    Color::LightCyan,
    Color::LightGreen,
    Color::LightYellow,
    Color::LightMagenta,
    Color::LightBlue,
];

/// A colour that stays the same for an origin on every laptop and every run.
pub(crate) fn author_color(origin: NodeId) -> Color {
    // FNV-1a over the id bytes: stable across builds, unlike `DefaultHasher`.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in origin.0.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let i = usize::try_from(h % AUTHOR_COLORS.len() as u64).unwrap_or(0);
    AUTHOR_COLORS[i]
}

/// The style of an author's name.
pub(crate) fn author_style(origin: NodeId) -> Style {
    Style::new()
        .fg(author_color(origin))
        .add_modifier(Modifier::BOLD)
}

/// Secondary text (times, ids).
pub(crate) fn dim() -> Style {
    Style::new().fg(Color::DarkGray)
}

/// Errors.
pub(crate) fn error() -> Style {
    Style::new().fg(Color::Red)
}

/// Warnings.
pub(crate) fn warning() -> Style {
    Style::new().fg(Color::Yellow)
}

/// The border of the focused panel.
pub(crate) fn border(focused: bool) -> Style {
    if focused {
        Style::new().fg(Color::Cyan)
    } else {
        Style::new().fg(Color::DarkGray)
    }
}

/// The highlighted row of a focused list.
pub(crate) fn selected() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}

/// The gutter mark of the message under the chat cursor (the colour of focus).
pub(crate) fn browsed_mark() -> Style {
    Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
}

/// A peer's state as a glyph and a colour, so it reads without colour too: `●` alive,
/// `◐` suspect, `○` offline, `◌` found but not reached yet.
pub(crate) fn state_dot(state: PeerState) -> Span<'static> {
    let (glyph, color) = match state {
        PeerState::Alive => ("●", Color::Green),
        PeerState::Suspect => ("◐", Color::Yellow),
        PeerState::Offline => ("○", Color::Red),
        PeerState::Discovered => ("◌", Color::DarkGray),
    };
    Span::styled(glyph, Style::new().fg(color))
}

/// A panel's title, marked when the panel has focus (`▶ Chat`), so focus shows without
/// colour too.
pub(crate) fn title(name: &str, focused: bool) -> Line<'static> {
    if focused {
        Line::from(vec![
            Span::styled(" ▶ ", Style::new().fg(Color::Cyan)),
            Span::styled(name.to_string(), Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(" "),
        ])
    } else {
        Line::from(format!(" {name} "))
    }
}

/// A mention of our nick.
pub(crate) fn mention() -> Style {
    Style::new()
        .fg(Color::Black)
        .bg(Color::Yellow)
        .add_modifier(Modifier::BOLD)
}

/// Text matching the search.
pub(crate) fn search_match() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}

/// A deleted message, or one this build cannot read.
pub(crate) fn gone() -> Style {
    Style::new()
        .fg(Color::DarkGray)
        .add_modifier(Modifier::ITALIC)
}

/// A `/me` action.
pub(crate) fn action() -> Style {
    Style::new().add_modifier(Modifier::ITALIC)
}

/// A URL.
pub(crate) fn link() -> Style {
    Style::new()
        .fg(Color::Blue)
        .add_modifier(Modifier::UNDERLINED)
}

/// The colours the screen is drawn in. Every panel styles itself in the dark palette's
/// colours; the others are that palette recoloured, cell by cell, once the frame is drawn,
/// so no panel can forget a case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Palette {
    /// Light and bright colours for a dark background (the terminal's named colours).
    #[default]
    Dark,
    /// Dark colours for a light background: every colour of the dark palette becomes a
    /// 256-colour one that is readable on white (contrast 4.5:1 or more).
    Light,
    /// No colours at all (`NO_COLOR`, `theme = "none"`): bold, reverse and underline stay,
    /// and glyphs and title marks carry what colour did.
    Mono,
}

impl Palette {
    /// Recolours a buffer drawn in the dark palette into this one.
    pub(crate) fn apply(self, buf: &mut ratatui::buffer::Buffer) {
        match self {
            Palette::Dark => {}
            Palette::Light => {
                for cell in buf.content.iter_mut() {
                    cell.set_fg(light_fg(cell.fg));
                    cell.set_bg(light_bg(cell.bg));
                }
            }
            Palette::Mono => {
                for cell in buf.content.iter_mut() {
                    cell.set_fg(Color::Reset);
                    cell.set_bg(Color::Reset);
                }
            }
        }
    }
}

/// A text colour of the dark palette as the light palette draws it. The named colours'
/// shades are the terminal's own, and their light variants are made for dark backgrounds
/// (light yellow on white cannot be read): the light palette picks fixed 256-colour shades
/// instead, each one distinct, so ten authors still look ten ways.
fn light_fg(c: Color) -> Color {
    match c {
        Color::Cyan => Color::Indexed(23),         // #005f5f teal
        Color::Green => Color::Indexed(28),        // #008700 green
        Color::Yellow => Color::Indexed(94),       // #875f00 brown
        Color::Magenta => Color::Indexed(127),     // #af00af magenta
        Color::Blue => Color::Indexed(19),         // #0000af blue
        Color::LightCyan => Color::Indexed(24),    // #005f87 steel blue
        Color::LightGreen => Color::Indexed(58),   // #5f5f00 olive
        Color::LightYellow => Color::Indexed(130), // #af5f00 orange
        Color::LightMagenta => Color::Indexed(90), // #870087 purple
        Color::LightBlue => Color::Indexed(55),    // #5f00af violet
        Color::Red | Color::LightRed => Color::Indexed(124), // #af0000 red
        Color::DarkGray => Color::Indexed(242),    // #6c6c6c grey
        Color::Gray | Color::White => Color::Indexed(236), // #303030 near black
        other => other,
    }
}

/// A background colour of the dark palette as the light palette draws it (only mentions
/// have one: black on yellow, which reads on both, in a yellow that stands out from white).
fn light_bg(c: Color) -> Color {
    match c {
        Color::Yellow => Color::Indexed(220), // #ffd700 gold
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn author_colours_are_stable_and_spread() {
        let a = NodeId::from_u128(1);
        assert_eq!(author_color(a), author_color(a));
        let distinct: std::collections::BTreeSet<String> = (0..50u128)
            .map(|n| format!("{:?}", author_color(NodeId::from_u128(n))))
            .collect();
        assert!(distinct.len() > 5, "{distinct:?}");
    }
}
