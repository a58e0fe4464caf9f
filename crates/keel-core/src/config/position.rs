//! Byte offsets (what `toml_edit` spans give) turned into the 1-based line and column a
//! person looks for in their editor.

/// A place in the config file. Line 0 means "not in the file" (an environment variable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    /// The place of things that come from the environment rather than the file.
    pub const ENV: Pos = Pos { line: 0, column: 0 };
}

/// Start offsets of every line, so each lookup is a binary search rather than a rescan.
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    /// The line and column of a byte offset. Columns count characters, not bytes, so a
    /// Japanese component name before an error does not push the caret off to the right.
    pub fn pos(&self, offset: usize) -> Pos {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        Pos { line, column }
    }

    /// The start of a span, or the given fallback when the span is unknown.
    pub fn span_pos(&self, span: Option<std::ops::Range<usize>>, fallback: Pos) -> Pos {
        span.map_or(fallback, |s| self.pos(s.start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_one_based_lines_and_columns() {
        let idx = LineIndex::new("ab\ncd\n\nxé y");
        assert_eq!(idx.pos(0), Pos { line: 1, column: 1 });
        assert_eq!(idx.pos(1), Pos { line: 1, column: 2 });
        assert_eq!(idx.pos(2), Pos { line: 1, column: 3 });
        assert_eq!(idx.pos(3), Pos { line: 2, column: 1 });
        assert_eq!(idx.pos(6), Pos { line: 3, column: 1 });
        // "é" is two bytes but one column.
        assert_eq!(idx.pos(11), Pos { line: 4, column: 4 });
        // Past the end clamps rather than panics.
        assert_eq!(idx.pos(999), Pos { line: 4, column: 5 });
    }

    #[test]
    fn an_offset_inside_a_character_does_not_panic() {
        let idx = LineIndex::new("é");
        let _ = idx.pos(1);
    }
}
