"""The transcript as it grows: final words only, a time stamp at the start of each paragraph.

Append-only like the overlay, since final words never change. A pause longer than the export's
paragraph gap starts a new paragraph, so what you see is laid out like the text export. It only
scrolls to follow new words when you are already at the bottom, so reading back is not interrupted.
Before any word arrives it shows a short explanation instead of a blank box.

A QTextEdit rather than a QPlainTextEdit: only its layout honours block margins, which give each
paragraph a hanging indent so the text lines up to the right of its time stamp.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetricsF, QPalette, QTextBlockFormat, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QFrame, QLabel, QStackedWidget, QTextEdit, QVBoxLayout, QWidget

from app.export import PARAGRAPH_GAP_S
from core.words import Word

PARAGRAPH_SPACING_PX = 10
STAMP_GAP = "  "  # between a paragraph's time stamp and its first word


def clock(seconds: float) -> str:
    """12:05, or 1:02:05 past the hour."""
    whole = max(0, int(seconds))
    hours, minutes, secs = whole // 3600, whole // 60 % 60, whole % 60
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class _EmptyState(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        self.title.setFont(font)
        self.hint = QLabel(alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.setAutoFillBackground(True)
        self.setBackgroundRole(QPalette.ColorRole.Base)  # same surface as the transcript it stands for
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        layout.addWidget(self.title)
        layout.addSpacing(6)
        layout.addWidget(self.hint)
        layout.addStretch(3)


class TranscriptView(QStackedWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._empty = _EmptyState()
        self._text = QTextEdit(readOnly=True)
        self._text.setAccessibleName("Transcript")
        self._text.setFrameShape(QFrame.Shape.NoFrame)
        self._text.setUndoRedoEnabled(False)  # append-only: an undo stack would only grow
        self._text.document().setDocumentMargin(16)
        font = self._text.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self._text.setFont(font)
        self.addWidget(self._empty)
        self.addWidget(self._text)
        self._last_end: float | None = None  # end of the last word; None: the next opens a paragraph
        self._speaker = ""  # who the paragraph being written is by ("" when nobody is named)
        self._speaker_format = QTextCharFormat()
        self._speaker_format.setFontWeight(QFont.Weight.Bold)
        self._stamp_format = QTextCharFormat()
        self._stamp_format.setForeground(self.palette().color(QPalette.ColorRole.PlaceholderText))
        self._word_format = QTextCharFormat()
        self._note_format = QTextCharFormat()
        self._note_format.setForeground(self.palette().color(QPalette.ColorRole.PlaceholderText))
        self._note_format.setFontItalic(True)
        self.set_empty_message("Press Start to caption your microphone",
                               "Words appear here as they are spoken. Every session is saved "
                               "automatically; find past ones in History.")

    def set_empty_message(self, title: str, hint: str = "") -> None:
        self._empty.title.setText(title)
        self._empty.hint.setText(hint)

    @property
    def is_empty(self) -> bool:
        return self._text.document().isEmpty()

    def plain_text(self) -> str:
        return self._text.toPlainText()

    def clear(self) -> None:
        self._text.clear()
        self._last_end, self._speaker = None, ""
        self.setCurrentWidget(self._empty)

    def set_words(self, words: Sequence[Word]) -> None:
        self.clear()
        self.append_words(words)
        self._text.moveCursor(QTextCursor.MoveOperation.Start)

    def append_words(self, words: Sequence[Word]) -> None:
        if not words:
            return
        follow = self._at_bottom()
        cursor = self._end_cursor()
        for word in words:
            if (self._last_end is None or word.start - self._last_end > PARAGRAPH_GAP_S
                    or word.speaker != self._speaker):
                self._start_paragraph(cursor, word.start)
                if word.speaker:  # a turn in a call: who speaks opens it, in bold
                    cursor.insertText(f"{word.speaker}: ", self._speaker_format)
            else:
                cursor.insertText(" ", self._word_format)
            cursor.insertText(word.text, self._word_format)
            self._last_end, self._speaker = word.end, word.speaker
        self._show_text(follow)

    def add_note(self, text: str) -> None:
        """A line that is not speech (skipped audio, pause): italic and muted, its own paragraph."""
        follow = self._at_bottom()
        cursor = self._end_cursor()
        block = QTextBlockFormat()
        block.setTopMargin(PARAGRAPH_SPACING_PX)
        if self._text.document().isEmpty():
            cursor.setBlockFormat(block)
        else:
            cursor.insertBlock(block)
        cursor.insertText(text, self._note_format)
        self._last_end = None
        self._show_text(follow)

    def _start_paragraph(self, cursor: QTextCursor, start_s: float) -> None:
        stamp = f"{clock(start_s)}{STAMP_GAP}"
        indent = QFontMetricsF(self._text.font()).horizontalAdvance(stamp)
        block = QTextBlockFormat()
        block.setLeftMargin(indent)
        block.setTextIndent(-indent)  # hanging: wrapped lines start under the first word, not the stamp
        if self._text.document().isEmpty():
            cursor.setBlockFormat(block)
        else:
            block.setTopMargin(PARAGRAPH_SPACING_PX)
            cursor.insertBlock(block)
        cursor.insertText(stamp, self._stamp_format)

    def _end_cursor(self) -> QTextCursor:
        cursor = QTextCursor(self._text.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        return cursor

    def _at_bottom(self) -> bool:
        bar = self._text.verticalScrollBar()
        return bar.value() >= bar.maximum() - 4

    def _show_text(self, follow: bool) -> None:
        self.setCurrentWidget(self._text)
        if follow:
            bar = self._text.verticalScrollBar()
            bar.setValue(bar.maximum())

    def scroll_to_time(self, seconds: float) -> None:
        """Bring the paragraph holding `seconds` into view (search hits in History)."""
        document = self._text.document()
        block, best = document.firstBlock(), None
        while block.isValid():
            stamp = block.text().split(STAMP_GAP, 1)[0]
            if stamp and stamp.replace(":", "").isdigit():
                if _seconds(stamp) <= seconds:
                    best = block
            block = block.next()
        if best is not None:
            self._text.setTextCursor(QTextCursor(best))
            bar = self._text.verticalScrollBar()  # the paragraph at the top, not just somewhere in view
            bar.setValue(bar.value() + self._text.cursorRect().top() - PARAGRAPH_SPACING_PX)


def _seconds(stamp: str) -> int:
    total = 0
    for part in stamp.split(":"):
        total = total * 60 + int(part)
    return total
