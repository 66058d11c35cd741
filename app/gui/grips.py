"""Drag-to-move and edge-resize for a frameless window.

The window manager does the work where it can (`startSystemMove`/`startSystemResize`): that is the
only way to move a window on Wayland, and it snaps like any other window. Where the platform says
no (offscreen, some X11 setups), the geometry is computed here from the mouse.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QWidget

from app.gui.qt_signals import emit

GRIP_PX = 8  # how close to an edge the mouse must be to resize rather than move

_CURSORS = {
    Qt.Edge.LeftEdge: Qt.CursorShape.SizeHorCursor,
    Qt.Edge.RightEdge: Qt.CursorShape.SizeHorCursor,
    Qt.Edge.TopEdge: Qt.CursorShape.SizeVerCursor,
    Qt.Edge.BottomEdge: Qt.CursorShape.SizeVerCursor,
}


def edges_at(pos: QPoint, size: QSize, grip_px: int = GRIP_PX) -> Qt.Edge:
    edges = Qt.Edge(0)
    if pos.x() < grip_px:
        edges |= Qt.Edge.LeftEdge
    elif pos.x() >= size.width() - grip_px:
        edges |= Qt.Edge.RightEdge
    if pos.y() < grip_px:
        edges |= Qt.Edge.TopEdge
    elif pos.y() >= size.height() - grip_px:
        edges |= Qt.Edge.BottomEdge
    return edges


def cursor_for(edges: Qt.Edge) -> Qt.CursorShape:
    diagonal_down = (Qt.Edge.LeftEdge | Qt.Edge.TopEdge, Qt.Edge.RightEdge | Qt.Edge.BottomEdge)
    diagonal_up = (Qt.Edge.RightEdge | Qt.Edge.TopEdge, Qt.Edge.LeftEdge | Qt.Edge.BottomEdge)
    if edges in diagonal_down:
        return Qt.CursorShape.SizeFDiagCursor
    if edges in diagonal_up:
        return Qt.CursorShape.SizeBDiagCursor
    return _CURSORS.get(edges, Qt.CursorShape.OpenHandCursor)


def resized(start: QRect, edges: Qt.Edge, delta: QPoint, minimum: QSize) -> QRect:
    """`start` with the grabbed edges moved by `delta`, never smaller than `minimum`."""
    left, top, right, bottom = start.left(), start.top(), start.right(), start.bottom()
    if edges & Qt.Edge.LeftEdge:
        left = min(left + delta.x(), right - minimum.width() + 1)
    if edges & Qt.Edge.RightEdge:
        right = max(right + delta.x(), left + minimum.width() - 1)
    if edges & Qt.Edge.TopEdge:
        top = min(top + delta.y(), bottom - minimum.height() + 1)
    if edges & Qt.Edge.BottomEdge:
        bottom = max(bottom + delta.y(), top + minimum.height() - 1)
    return QRect(QPoint(left, top), QPoint(right, bottom))


class WindowGrips(QObject):
    """Event filter giving `window` move and resize by mouse; reports when the user is done."""

    moved = Signal()  # a drag ended
    resized = Signal()  # a resize ended

    def __init__(self, window: QWidget):
        super().__init__(window)
        self._window = window
        self._edges = Qt.Edge(0)
        self._press_global: QPoint | None = None  # set while a manual move/resize is under way
        self._start_rect = QRect()
        window.setMouseTracking(True)  # hover cursors over the edges
        window.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton:
            return self._on_press(event)
        if kind == QEvent.Type.MouseMove:
            return self._on_move(event)
        if kind == QEvent.Type.MouseButtonRelease and event.button() == Qt.MouseButton.LeftButton:
            return self._on_release()
        return False

    def _on_press(self, event: QMouseEvent) -> bool:
        self._edges = edges_at(event.position().toPoint(), self._window.size())
        handle = self._window.windowHandle()
        system = handle is not None and (
            handle.startSystemResize(self._edges) if self._edges else handle.startSystemMove()
        )
        if system:
            # The compositor now owns the gesture and we may never see the release: report at once
            # (the move/resize events that follow keep the saved geometry up to date).
            emit(self.resized if self._edges else self.moved)
            return True
        self._press_global = event.globalPosition().toPoint()
        self._start_rect = self._window.geometry()
        return True

    def _on_move(self, event: QMouseEvent) -> bool:
        if self._press_global is None:
            self._window.setCursor(cursor_for(edges_at(event.position().toPoint(), self._window.size())))
            return False
        delta = event.globalPosition().toPoint() - self._press_global
        if self._edges:
            self._window.setGeometry(resized(self._start_rect, self._edges, delta, self._window.minimumSize()))
        else:
            self._window.move(self._start_rect.topLeft() + delta)
        return True

    def _on_release(self) -> bool:
        if self._press_global is None:
            return False
        self._press_global = None
        emit(self.resized if self._edges else self.moved)
        return True
