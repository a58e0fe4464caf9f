//! SVG status badges (`/badge.svg`, `/badge/{component}.svg`) in the flat style READMEs use,
//! so a project can show its live status anywhere an image goes.
//!
//! Widths come from an estimate of each character's width in 11 px Verdana (CJK counts
//! double); `textLength` then makes the renderer fit the text to exactly that width, so a
//! wrong guess squeezes or stretches the text a little instead of spilling out of the badge.

use std::fmt::Write as _;

use super::feed::escape_into;
use super::i18n::{self, Key};
use super::model::{ComponentStatus, Indicator, PublicComponent, Snapshot};

/// Badge colours, dark enough for white text to meet WCAG AA (4.5:1) on every one of them.
pub mod color {
    pub const OPERATIONAL: &str = "#2e7d32";
    pub const DEGRADED: &str = "#8a5a00";
    pub const PARTIAL: &str = "#b54708";
    pub const MAJOR: &str = "#b42318";
    pub const MAINTENANCE: &str = "#1d5fb4";
    pub const LABEL: &str = "#555555";
    pub const UNKNOWN: &str = "#6b6b6b";
}

pub fn status_color(status: ComponentStatus) -> &'static str {
    match status {
        ComponentStatus::Operational => color::OPERATIONAL,
        ComponentStatus::DegradedPerformance => color::DEGRADED,
        ComponentStatus::PartialOutage => color::PARTIAL,
        ComponentStatus::MajorOutage => color::MAJOR,
        ComponentStatus::UnderMaintenance => color::MAINTENANCE,
    }
}

pub fn indicator_color(indicator: Indicator) -> &'static str {
    match indicator {
        Indicator::None => color::OPERATIONAL,
        Indicator::Minor => color::DEGRADED,
        Indicator::Major => color::PARTIAL,
        Indicator::Critical => color::MAJOR,
        Indicator::Maintenance => color::MAINTENANCE,
    }
}

/// Approximate advance of `c` in 11 px Verdana, in tenths of a pixel.
fn char_width(c: char) -> u32 {
    match c {
        ' ' => 39,
        'i' | 'l' | 'j' | '.' | ',' | ':' | ';' | '!' | '|' | '\'' | 'I' => 35,
        'f' | 't' | 'r' | '(' | ')' | '[' | ']' | '-' => 48,
        'm' | 'w' | 'M' | 'W' | '%' => 105,
        'A'..='Z' => 80,
        c if c.is_ascii() => 68,
        // CJK ideographs, kana, full-width forms and the like take a full em.
        c if is_wide(c) => 110,
        _ => 75,
    }
}

fn is_wide(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF | 0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x20000..=0x3FFFD)
}

/// The estimated width of `s` in whole pixels.
fn text_width(s: &str) -> u32 {
    s.chars().map(char_width).sum::<u32>().div_ceil(10)
}

/// `#abc` or `#aabbcc`; anything else is not used as a colour (it would be pasted into an
/// attribute) and the badge falls back to grey.
fn valid_color(c: &str) -> bool {
    c.strip_prefix('#')
        .is_some_and(|h| matches!(h.len(), 3 | 6) && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A flat badge: `label` on grey, `status_text` on `color` (`#rgb` or `#rrggbb`). Both texts
/// are escaped; the SVG carries a `<title>` and `aria-label` for screen readers.
pub fn badge(label: &str, status_text: &str, color: &str) -> String {
    let color = if valid_color(color) {
        color
    } else {
        color::UNKNOWN
    };
    const PAD: u32 = 6;
    let (lt, rt) = (text_width(label), text_width(status_text));
    let (lw, rw) = (lt + 2 * PAD, rt + 2 * PAD);
    let w = lw + rw;
    let mut full = String::with_capacity(label.len() + status_text.len() + 2);
    full.push_str(label);
    full.push_str(": ");
    full.push_str(status_text);

    let mut s = String::with_capacity(1200);
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"20\" role=\"img\" aria-label=\""
    );
    escape_into(&mut s, &full);
    s.push_str("\"><title>");
    escape_into(&mut s, &full);
    let _ = write!(
        s,
        "</title><linearGradient id=\"s\" x2=\"0\" y2=\"100%\"><stop offset=\"0\" stop-color=\"#bbb\" \
         stop-opacity=\".1\"/><stop offset=\"1\" stop-opacity=\".1\"/></linearGradient>\
         <clipPath id=\"r\"><rect width=\"{w}\" height=\"20\" rx=\"3\" fill=\"#fff\"/></clipPath>\
         <g clip-path=\"url(#r)\"><rect width=\"{lw}\" height=\"20\" fill=\"{label_color}\"/>\
         <rect x=\"{lw}\" width=\"{rw}\" height=\"20\" fill=\"{color}\"/>\
         <rect width=\"{w}\" height=\"20\" fill=\"url(#s)\"/></g>\
         <g fill=\"#fff\" text-anchor=\"middle\" \
         font-family=\"Verdana,Geneva,DejaVu Sans,'Hiragino Sans','Noto Sans CJK JP',sans-serif\" \
         font-size=\"11\">",
        label_color = color::LABEL,
    );
    for (text, center, len) in [(label, lw / 2, lt), (status_text, lw + rw / 2, rt)] {
        // A one-pixel shadow under the text, as shields does, for legibility.
        for (y, extra) in [(15, " fill=\"#010101\" fill-opacity=\".3\""), (14, "")] {
            let _ = write!(
                s,
                "<text x=\"{center}\" y=\"{y}\" textLength=\"{len}\" lengthAdjust=\"spacingAndGlyphs\"{extra}>"
            );
            escape_into(&mut s, text);
            s.push_str("</text>");
        }
    }
    s.push_str("</g></svg>");
    s
}

/// The whole page's badge: "Status | All systems operational" in `locale`.
pub fn overall(snap: &Snapshot, locale: &str) -> String {
    badge(
        i18n::t(locale, Key::BadgeStatus),
        i18n::overall(locale, snap.indicator),
        indicator_color(snap.indicator),
    )
}

/// One public component's badge: "Search | Operational". The server renders one per public
/// component of the snapshot, so an internal component never gets one.
pub fn component(component: &PublicComponent, locale: &str) -> String {
    badge(
        component.name.get(locale),
        i18n::component_status(locale, component.status),
        status_color(component.status),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_grow_with_text_and_cjk_counts_wide() {
        assert!(text_width("Operational") < text_width("Degraded performance"));
        assert!(text_width("正常稼働") > text_width("abcd"));
        assert_eq!(text_width(""), 0);
    }

    #[test]
    fn bad_colours_fall_back() {
        assert!(valid_color("#abc") && valid_color("#A1B2C3"));
        for bad in ["red", "#abcd", "#ggg", "\"/><script>", ""] {
            assert!(!valid_color(bad), "{bad}");
        }
        let svg = badge("a", "b", "\"><script>");
        assert!(svg.contains(color::UNKNOWN) && !svg.contains("<script>"));
    }
}
